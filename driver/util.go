package driver

import (
	"net/netip"

	"github.com/podnet/podnet/store"
)

func parsePrefix(s string) (netip.Prefix, error) {
	p, err := netip.ParsePrefix(s)
	return p.Masked(), err
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

// pools are the network's IPv4 and IPv6 pools.
func pools(n *store.Network) []netip.Prefix {
	var out []netip.Prefix
	for _, s := range append(append([]store.Subnet{}, n.IPv4...), n.IPv6...) {
		if p, err := parsePrefix(s.Pool); err == nil {
			out = append(out, p)
		}
	}
	return out
}
