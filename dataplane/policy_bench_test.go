package dataplane

import (
	"context"
	"fmt"
	"net/netip"
	"testing"
)

// scalePolicy is a host's state with n policies, n peer sets of one
// address each and 20 local endpoints, each isolated by its own group.
func scalePolicy(n int) Policy {
	p := Policy{AddrSets: map[string][]netip.Addr{}, RangeSets: map[string][]AddrRange{}}
	for i := range n {
		p.Policies = append(p.Policies, fmt.Sprintf("p%d", i))
		p.AddrSets[fmt.Sprintf("s%d", i)] = []netip.Addr{netip.AddrFrom4([4]byte{10, 1, byte(i >> 8), byte(i)})}
	}
	for i := range 20 {
		id := fmt.Sprintf("g%d", i)
		p.Groups = append(p.Groups, PolicyGroup{ID: id, Policies: []string{fmt.Sprintf("p%d", i)},
			Rules: []PolicyRule{{Peers: []string{fmt.Sprintf("s%d", i+1)}, Ports: []PolicyPorts{{Proto: TCP, First: 80, Last: 80}}}}})
		p.Endpoints = append(p.Endpoints, PolicyEndpoint{Addrs: []netip.Addr{netip.AddrFrom4([4]byte{10, 9, 0, byte(i)})}, Ingress: id})
	}
	return p
}

// BenchmarkSetPolicyOneEndpoint is what a container start costs the data
// plane with 1000 policies: the whole state built and diffed, one
// element pair programmed (here into the fake kernel).
func BenchmarkSetPolicyOneEndpoint(b *testing.B) {
	e := newFakeEngine(&testing.T{})
	ctx := context.Background()
	p := scalePolicy(1000)
	if err := e.SetPolicy(ctx, p); err != nil {
		b.Fatal(err)
	}
	extra := PolicyEndpoint{Addrs: []netip.Addr{netip.MustParseAddr("10.9.1.1")}, Ingress: PolicyPending}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		q := p
		if i%2 == 0 {
			q.Endpoints = append(append([]PolicyEndpoint{}, p.Endpoints...), extra)
		}
		if err := e.SetPolicy(ctx, q); err != nil {
			b.Fatal(err)
		}
	}
}
