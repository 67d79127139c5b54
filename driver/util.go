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
