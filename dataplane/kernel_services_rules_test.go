package dataplane

import (
	"net/netip"
	"testing"
	"time"
)

// testServices is one service of every shape: node port and external IP,
// UDP, affinity, externalTrafficPolicy Local, no endpoints, IPv6,
// headless.
func testServices() []Service {
	a := netip.MustParseAddr
	ep := func(addr string, local bool) ServiceEndpoint { return ServiceEndpoint{Addr: a(addr), Local: local} }
	return []Service{
		{Name: "web", ClusterIP: a("10.96.0.10"), ExternalIPs: []netip.Addr{a("192.0.2.50")},
			Ports: []ServicePort{
				{Name: "http", Proto: TCP, Port: 80, TargetPort: 8080, NodePort: 30080},
				{Name: "dns", Proto: UDP, Port: 53, TargetPort: 5353},
			},
			Endpoints: []ServiceEndpoint{ep("10.200.1.2", true), ep("10.200.1.3", true), ep("10.244.3.7", false)}},
		{Name: "sticky", ClusterIP: a("10.96.0.11"), Affinity: 3 * time.Hour,
			Ports:     []ServicePort{{Proto: TCP, Port: 80, TargetPort: 80, NodePort: 30081}},
			Endpoints: []ServiceEndpoint{ep("10.200.1.2", true), ep("10.244.3.7", false)}},
		{Name: "local", ClusterIP: a("10.96.0.12"), ExternalIPs: []netip.Addr{a("192.0.2.51")}, LocalOnly: true,
			Ports:     []ServicePort{{Proto: TCP, Port: 443, TargetPort: 8443, NodePort: 30443}},
			Endpoints: []ServiceEndpoint{ep("10.200.1.3", true), ep("10.244.3.8", false)}},
		{Name: "none", ClusterIP: a("10.96.0.13"), Ports: []ServicePort{{Proto: SCTP, Port: 9, TargetPort: 9}}},
		{Name: "six", ClusterIP: a("fd00:96::10"), Ports: []ServicePort{{Proto: TCP, Port: 80, TargetPort: 80}},
			Endpoints: []ServiceEndpoint{ep("fd00:1::2", true), ep("fd00:1::3", true), ep("10.200.1.2", true)}},
		{Name: "headless", Ports: []ServicePort{{Proto: TCP, Port: 80}}},
		{Name: "many", ClusterIP: a("10.96.0.15"), Ports: []ServicePort{{Proto: TCP, Port: 80, TargetPort: 80}},
			Endpoints: many(12)},
	}
}

// many is n remote endpoints 10.244.4.1, .2, ….
func many(n int) []ServiceEndpoint {
	var out []ServiceEndpoint
	for i := 1; i <= n; i++ {
		out = append(out, ServiceEndpoint{Addr: netip.AddrFrom4([4]byte{10, 244, 4, byte(i)})})
	}
	return out
}

// TestKernelServiceTableMatchesNft loads every shape of service rule and
// checks the kernel's table against the ruleset's text and nft's own
// compilation of it (see checkTable), after the first SetServices (a full
// rewrite) and after incremental changes.
func TestKernelServiceTableMatchesNft(t *testing.T) {
	t.Parallel()
	l := newLab(t)
	web := l.bridge(1)
	multi := l.bridge(2)
	multi.Uplink = "pnx4242"
	multi.Subnets = append(multi.Subnets, netip.MustParsePrefix("10.244.0.0/16"))
	multi.TunnelAddrs = []netip.Addr{netip.MustParseAddr("10.244.1.1")}
	l.addNetwork(web)
	l.addNetwork(multi)
	svcs := testServices()
	l.do(func() error { return l.eng.SetServices(l.ctx, svcs) })
	l.checkTable(l.currentRuleset())

	// Incremental: one endpoint less, a new service, one deleted.
	svcs[0].Endpoints = svcs[0].Endpoints[1:]
	l.do(func() error { return l.eng.UpsertService(l.ctx, svcs[0]) })
	l.do(func() error {
		return l.eng.UpsertService(l.ctx, Service{Name: "new", ClusterIP: netip.MustParseAddr("10.96.0.14"),
			Ports:     []ServicePort{{Proto: TCP, Port: 80, TargetPort: 80}},
			Endpoints: svcs[0].Endpoints})
	})
	l.do(func() error { return l.eng.DeleteService(l.ctx, "sticky") })
	l.checkTable(l.currentRuleset())
}

// currentRuleset is the engine's whole table as data.
func (l *lab) currentRuleset() *ruleset {
	var rs *ruleset
	l.do(func() error {
		l.eng.mu.Lock()
		defer l.eng.mu.Unlock()
		rs = buildRuleset(rulesetInput{table: "podnet", bridgePrefix: "pn-", nets: l.eng.nets, eps: l.eng.eps,
			services: l.eng.svc})
		return nil
	})
	return rs
}
