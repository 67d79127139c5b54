package driver

import (
	"net/netip"

	"github.com/podnet/podnet/store"
)

func parsePrefix(s string) (netip.Prefix, error) {
	p, err := netip.ParsePrefix(s)
	return p.Masked(), err
}

// firstPool is the pool a network's logical definition is keyed by: its
// first IPv4 subnet, else its first IPv6 subnet.
func firstPool(n *store.Network) netip.Prefix {
	var s string
	if len(n.IPv4) > 0 {
		s = n.IPv4[0].Pool
	} else if len(n.IPv6) > 0 {
		s = n.IPv6[0].Pool
	}
	p, _ := parsePrefix(s)
	return p
}

func subnetList(n *store.Network) []string {
	var out []string
	for _, s := range n.IPv4 {
		out = append(out, s.Pool)
	}
	for _, s := range n.IPv6 {
		out = append(out, s.Pool)
	}
	return out
}
