package policy

import (
	"fmt"
	"net/netip"
	"testing"

	"github.com/podnet/podnet/store"
)

// scaleInput is B15/B17's setting: n policies, each selecting one app and
// allowing another, n labelled containers, 20 of them local targets.
func scaleInput(n int) Input {
	var pols []store.NetworkPolicy
	for i := range n {
		pols = append(pols, store.NetworkPolicy{Name: fmt.Sprintf("p%d", i),
			PodSelector: store.LabelSelector{MatchLabels: map[string]string{"app": fmt.Sprintf("a%d", i)}},
			PolicyTypes: []string{store.PolicyIngress},
			Ingress: []store.PolicyRule{{Peers: []store.PolicyPeer{{PodSelector: &store.LabelSelector{
				MatchLabels: map[string]string{"app": fmt.Sprintf("a%d", (i+1)%n)}}}},
				Ports: []store.PolicyPort{{Protocol: "TCP", Port: 80}}}}})
	}
	addrOf := func(i int) netip.Addr { return netip.AddrFrom4([4]byte{10, 1, byte(i >> 8), byte(i)}) }
	var targets []Target
	for i := range 20 {
		targets = append(targets, Target{ID: fmt.Sprint(i), Known: true, Labels: map[string]string{"app": fmt.Sprintf("a%d", i)},
			Addrs: []netip.Addr{addrOf(i)}})
	}
	return Input{Policies: pols, Targets: targets, Selected: func(key string) []netip.Addr {
		var i int
		fmt.Sscanf(key, "app=a%d", &i)
		return []netip.Addr{addrOf(i)}
	}}
}

// BenchmarkCompile1000 is one pass of a host's agent with the policies
// indexed once (as the agent keeps them).
func BenchmarkCompile1000(b *testing.B) {
	in := scaleInput(1000)
	in.Index = NewIndex(in.Policies)
	b.ReportAllocs()
	for b.Loop() {
		Compile(in)
	}
}
