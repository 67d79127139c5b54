package dataplane

import (
	"net/netip"
	"os/exec"
	"slices"
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
// compilation of it (see checkTable), after the first Replace (a full
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
	l.do(func() error { return setServices(l.eng, svcs) })
	l.checkTable(l.currentRuleset())

	// Incremental: one endpoint less, a new service, one deleted.
	svcs[0].Endpoints = svcs[0].Endpoints[1:]
	l.do(func() error { return upsertService(l.eng, svcs[0]) })
	l.do(func() error {
		return upsertService(l.eng, Service{Name: "new", ClusterIP: netip.MustParseAddr("10.96.0.14"),
			Ports:     []ServicePort{{Proto: TCP, Port: 80, TargetPort: 80}},
			Endpoints: svcs[0].Endpoints})
	})
	l.do(func() error { return deleteService(l.eng, "sticky") })
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

// TestKernelRestartReplaceKeepsRules: a new engine's first Replace over
// the rules a previous one left (podnetd restarting) compares them with
// the kernel's and changes nothing when they are right; a Replace that
// differs in one endpoint changes exactly that endpoint's elements; the
// table then matches nft's compilation of its text as after a cold load.
func TestKernelRestartReplaceKeepsRules(t *testing.T) {
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
	l.do(func() error { return setServices(l.eng, svcs) })
	before := l.nftList()

	// The restart: a new engine with the same networks, its Sync, its
	// first Replace.
	old := l.eng
	l.eng = New(Options{Logger: old.log})
	l.eng.Restore([]Network{web, multi}, nil)
	l.do(func() error { return l.eng.Sync(l.ctx) })
	var res Result
	l.do(func() (err error) {
		res, err = l.eng.Apply(l.ctx, Change{Services: ServiceChanges{Replace: true, Upsert: svcs}})
		return err
	})
	if res.Kernel != 0 {
		t.Errorf("first Replace after a restart changed %d kernel objects, want 0", res.Kernel)
	}
	for name, err := range res.Services {
		if err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	if after := l.nftList(); after != before {
		t.Errorf("table changed by the restart:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	l.checkTable(l.currentRuleset())

	// One endpoint of service many (one port, no external IP or NodePort)
	// replaced: its bucket element is deleted and added with the new value.
	i := slices.IndexFunc(svcs, func(s Service) bool { return s.Name == "many" })
	svcs[i].Endpoints[3].Addr = netip.MustParseAddr("10.244.9.9")
	l.do(func() (err error) {
		res, err = l.eng.Apply(l.ctx, Change{Services: ServiceChanges{Replace: true, Upsert: svcs}})
		return err
	})
	if res.Kernel != 2 {
		t.Errorf("a Replace changing one endpoint of many changed %d kernel objects, want 2", res.Kernel)
	}
	l.checkTable(l.currentRuleset())
}

// nftList is `nft list table inet podnet`.
func (l *lab) nftList() string {
	var out []byte
	l.do(func() (err error) {
		out, err = exec.Command("nft", "list", "table", "inet", "podnet").CombinedOutput()
		return err
	})
	return string(out)
}
