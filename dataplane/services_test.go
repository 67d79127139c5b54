package dataplane

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
)

// svcEngine is a fake engine with one bridge network and one multi-host
// network (with a tunnel address), services set to svcs.
func svcEngine(t *testing.T, svcs ...Service) *fakeEngine {
	t.Helper()
	e := newFakeEngine(t)
	if err := e.AddNetwork(ctx, testNetwork("net1", "pn-web", "10.200.1.0/24")); err != nil {
		t.Fatal(err)
	}
	multi := testNetwork("net2", "pn-pods", "10.244.0.0/16")
	multi.Uplink, multi.TunnelAddrs = "pnx4242", []netip.Addr{netip.MustParseAddr("10.244.1.1")}
	if err := e.AddNetwork(ctx, multi); err != nil {
		t.Fatal(err)
	}
	if err := setServices(e, svcs); err != nil {
		t.Fatal(err)
	}
	return e
}

// TestServiceSectionText compares the whole generated table with every
// shape of service (testServices) with testdata/services.nft, reviewed by
// hand; the kernel test checks that nft prints and compiles the same text.
// After an intended change, review the new text and write it there.
func TestServiceSectionText(t *testing.T) {
	e := svcEngine(t, testServices()...)
	want, err := os.ReadFile("testdata/services.nft")
	if err != nil {
		t.Fatal(err)
	}
	if got := withoutPolicy(e.nft.lastRuleset).String(); got != string(want) {
		t.Fatalf("ruleset:\n%s\nwant (testdata/services.nft):\n%s", got, want)
	}
	for _, s := range testServices() {
		if err := e.ServiceStatus(s.Name); err != nil {
			t.Errorf("ServiceStatus(%s) = %v", s.Name, err)
		}
	}
}

// TestUpsertIsOneSmallBatch: changing one endpoint of one service among
// 1000 is one batch of one element out and one in; nothing else is
// rewritten and no process runs (the fake iptables counts its execs).
func TestUpsertIsOneSmallBatch(t *testing.T) {
	var svcs []Service
	for i := 0; i < 1000; i++ {
		svcs = append(svcs, Service{Name: fmt.Sprintf("s%d", i), ClusterIP: netip.AddrFrom4([4]byte{10, 96, byte(i >> 8), byte(i)}),
			Ports:     []ServicePort{{Proto: TCP, Port: 80, TargetPort: 8080}},
			Endpoints: []ServiceEndpoint{{Addr: netip.MustParseAddr("10.200.1.2")}, {Addr: netip.MustParseAddr("10.200.1.3")}}})
	}
	e := svcEngine(t, svcs...)
	tables, ensures, deltas := e.nft.tables, e.ipt.ensures, len(e.nft.deltas)
	s := svcs[500]
	s.Endpoints = []ServiceEndpoint{{Addr: netip.MustParseAddr("10.200.1.2")}, {Addr: netip.MustParseAddr("10.200.1.9")}}
	if err := upsertService(e, s); err != nil {
		t.Fatal(err)
	}
	if e.nft.tables != tables || e.ipt.ensures != ensures || len(e.nft.deltas) != deltas+1 {
		t.Fatalf("upsert: %d table syncs, %d iptables ensures, %d batches; want 0, 0, 1",
			e.nft.tables-tables, e.ipt.ensures-ensures, len(e.nft.deltas)-deltas)
	}
	d := e.nft.deltas[len(e.nft.deltas)-1]
	if len(d.delElems) != 1 || len(d.addElems) != 1 || d.addElems[0].text != "10.96.1.244 . tcp . 80 : 10.200.1.9 . 8080" ||
		len(d.addSets)+len(d.addChains)+len(d.flushChains)+len(d.rules)+len(d.delChains)+len(d.delSets) != 0 {
		t.Fatalf("upsert batch: %+v, want the second bucket's element replaced only", d)
	}
}

// TestChangeSetIsOneBatch: a change set of many services (endpoint
// changes, new services, removals) is one batch holding only their
// elements, whatever the table's size; nothing else is rewritten.
func TestChangeSetIsOneBatch(t *testing.T) {
	svc := func(i int, eps ...string) Service {
		s := Service{Name: fmt.Sprintf("s%d", i), ClusterIP: netip.AddrFrom4([4]byte{10, 96, byte(i >> 8), byte(i)}),
			Ports: []ServicePort{{Proto: TCP, Port: 80, TargetPort: 8080}}}
		for _, a := range eps {
			s.Endpoints = append(s.Endpoints, ServiceEndpoint{Addr: netip.MustParseAddr(a)})
		}
		return s
	}
	var svcs []Service
	for i := range 1000 {
		svcs = append(svcs, svc(i, "10.200.1.2", "10.200.1.3"))
	}
	e := svcEngine(t, svcs...)
	tables, ensures, deltas := e.nft.tables, e.ipt.ensures, len(e.nft.deltas)
	var c Change
	for i := range 100 {
		c.Services.Upsert = append(c.Services.Upsert, svc(i, "10.200.1.2", "10.200.1.9"))
	}
	for i := 1000; i < 1005; i++ {
		c.Services.Upsert = append(c.Services.Upsert, svc(i, "10.200.1.4"))
	}
	for i := 900; i < 910; i++ {
		c.Services.Remove = append(c.Services.Remove, fmt.Sprintf("s%d", i))
	}
	res, err := e.Apply(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	if e.nft.tables != tables || e.ipt.ensures != ensures || len(e.nft.deltas) != deltas+1 {
		t.Fatalf("change set: %d table syncs, %d iptables ensures, %d batches; want 0, 0, 1",
			e.nft.tables-tables, e.ipt.ensures-ensures, len(e.nft.deltas)-deltas)
	}
	d := e.nft.deltas[len(e.nft.deltas)-1]
	// 100 bucket elements replaced (one out, one in); 5 new services with a
	// dispatch and a bucket element each; 10 removed with three each.
	if len(d.delElems) != 100+30 || len(d.addElems) != 100+10 || res.Kernel != 240 {
		t.Fatalf("batch: %d deletes, %d adds, Result.Kernel %d; want 130, 110, 240", len(d.delElems), len(d.addElems), res.Kernel)
	}
	if len(res.Services) != 105 || res.Programmed != 995 || res.Failing != 0 {
		t.Fatalf("result: %d services reported, %d programmed, %d failing", len(res.Services), res.Programmed, res.Failing)
	}
	// A change set that changes nothing sends nothing.
	if res, err = e.Apply(ctx, c); err != nil || res.Kernel != 0 || len(e.nft.deltas) != deltas+1 {
		t.Fatalf("the same change again: %v, %d kernel changes, %d batches", err, res.Kernel, len(e.nft.deltas)-deltas)
	}
}

// TestConflictRetriedWhenFreed: a service that lost its address to
// another is programmed by the change that frees the address, and the
// Result says so.
func TestConflictRetriedWhenFreed(t *testing.T) {
	a := netip.MustParseAddr
	first := Service{Name: "first", ClusterIP: a("10.96.0.1"), Ports: []ServicePort{{Proto: TCP, Port: 80}},
		Endpoints: []ServiceEndpoint{{Addr: a("10.200.1.2")}}}
	second := Service{Name: "second", ClusterIP: a("10.96.0.1"), Ports: []ServicePort{{Proto: TCP, Port: 80}},
		Endpoints: []ServiceEndpoint{{Addr: a("10.200.1.3")}}}
	e := svcEngine(t, first, second)
	if err := e.ServiceStatus("second"); !errors.Is(err, ErrServiceConflict) {
		t.Fatalf("second: %v, want a conflict", err)
	}
	res, err := e.Apply(ctx, Change{Services: ServiceChanges{Remove: []string{"first"}}})
	if err != nil {
		t.Fatal(err)
	}
	if err, ok := res.Services["second"]; !ok || err != nil {
		t.Fatalf("Result after first's removal: %v; want second reported programmed", res.Services)
	}
	if got := svcElements(e); !got["svc-ip4-b0: 10.96.0.1 . tcp . 80 : 10.200.1.3 . 80"] {
		t.Fatalf("elements %v: want second's endpoint", got)
	}
}

// TestServicesReportedByName: services that cannot be programmed are
// reported by name, with a cause callers can test, and do not stop the
// others; a conflict costs only the conflicting element (samenodeport
// keeps its VIP).
func TestServicesReportedByName(t *testing.T) {
	a := netip.MustParseAddr
	good := Service{Name: "good", ClusterIP: a("10.96.0.1"), Ports: []ServicePort{{Proto: TCP, Port: 80, NodePort: 30001}},
		Endpoints: []ServiceEndpoint{{Addr: a("10.200.1.2")}}}
	bad := []Service{
		{Name: "samevip", ClusterIP: a("10.96.0.1"), Ports: []ServicePort{{Proto: TCP, Port: 80}}},
		{Name: "samenodeport", ClusterIP: a("10.96.0.6"), Ports: []ServicePort{{Proto: TCP, Port: 81, NodePort: 30001}}},
	}
	e := svcEngine(t, append(bad, good)...)
	if err := e.ServiceStatus("good"); err != nil {
		t.Fatalf("good: %v", err)
	}
	for _, s := range bad {
		if err := e.ServiceStatus(s.Name); !errors.Is(err, ErrServiceConflict) || !strings.Contains(err.Error(), "is already served by service good") {
			t.Errorf("ServiceStatus(%q) = %v, want ErrServiceConflict naming good", s.Name, err)
		}
	}
	if err := e.ServiceStatus("nosuch"); !errors.Is(err, ErrServiceUnknown) {
		t.Errorf("unknown service: %v", err)
	}
	got := svcElements(e)
	if !got[`svc-ip4: 10.96.0.1 . tcp . 80 : goto svc-ip4-b0`] || !got[`svc-ip4: 10.96.0.6 . tcp . 81 : goto svc-reject`] || len(got) != 5 {
		t.Fatalf("elements %v: want good's dispatch, node port and two buckets, and samenodeport's VIP", got)
	}
	// good goes: samenodeport takes its NodePort, samevip its VIP port.
	if err := deleteService(e, "good"); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"samevip", "samenodeport"} {
		if err := e.ServiceStatus(n); err != nil {
			t.Errorf("%s after good was deleted: %v", n, err)
		}
	}
	if got := svcElements(e); !got[`svc-np: tcp . 30001 : goto svc-reject`] || !got[`svc-ip4: 10.96.0.1 . tcp . 80 : goto svc-reject`] {
		t.Fatalf("elements after good was deleted: %v", got)
	}
}

// TestKernelRefusalIsolatesService: when the kernel refuses the whole
// set, the engine programs services one batch each and reports only the
// refused one.
func TestKernelRefusalIsolatesService(t *testing.T) {
	a := netip.MustParseAddr
	svcs := []Service{
		{Name: "a", ClusterIP: a("10.96.0.1"), Ports: []ServicePort{{Proto: TCP, Port: 80}}, Endpoints: []ServiceEndpoint{{Addr: a("10.200.1.2")}}},
		{Name: "poison", ClusterIP: a("10.96.0.2"), Ports: []ServicePort{{Proto: TCP, Port: 80}}, Endpoints: []ServiceEndpoint{{Addr: a("10.200.1.3")}}},
		{Name: "z", ClusterIP: a("10.96.0.3"), Ports: []ServicePort{{Proto: TCP, Port: 80}}, Endpoints: []ServiceEndpoint{{Addr: a("10.200.1.4")}}},
	}
	e := svcEngine(t)
	e.nft.failSync = func(rs *ruleset) error {
		if strings.Contains(rs.String(), `"poison"`) {
			return errors.New("fake: kernel refuses poison")
		}
		return nil
	}
	e.nft.failDelta = func(d *tableDelta) error {
		for _, el := range d.addElems {
			if el.comment == "poison" {
				return errors.New("fake: kernel refuses poison")
			}
		}
		return nil
	}
	if err := setServices(e, svcs); err != nil {
		t.Fatal(err)
	}
	if err := e.ServiceStatus("poison"); !errors.Is(err, ErrServiceNotProgrammed) {
		t.Fatalf("poison: %v, want ErrServiceNotProgrammed", err)
	}
	for _, n := range []string{"a", "z"} {
		if err := e.ServiceStatus(n); err != nil {
			t.Fatalf("%s: %v", n, err)
		}
	}
	got := svcElements(e)
	if !got["svc-ip4: 10.96.0.1 . tcp . 80 : goto svc-ip4-b0"] || !got["svc-ip4: 10.96.0.3 . tcp . 80 : goto svc-ip4-b0"] ||
		got["svc-ip4: 10.96.0.2 . tcp . 80 : goto svc-ip4-b0"] {
		t.Fatalf("elements after isolating poison: %v", got)
	}
}

// TestServicesBeforeReplace: until the first Replace, single changes are
// refused and Sync leaves the service section (the previous podnetd's
// rules) as it is.
func TestServicesBeforeReplace(t *testing.T) {
	e := newFakeEngine(t)
	s := Service{Name: "a", ClusterIP: netip.MustParseAddr("10.96.0.1"), Ports: []ServicePort{{Proto: TCP, Port: 80}}}
	if err := upsertService(e, s); !errors.Is(err, ErrServicesNotSet) {
		t.Fatalf("upsert before the first Replace: %v", err)
	}
	if err := deleteService(e, "a"); !errors.Is(err, ErrServicesNotSet) {
		t.Fatalf("delete before the first Replace: %v", err)
	}
	if err := e.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if e.nft.lastRewrite(mapSvcIP4) || e.nft.lastRewrite(chainServices) || !e.nft.lastRewrite(chainPrerouting) {
		t.Fatal("Sync before the first Replace rewrites the service section, or not the rest")
	}
	if err := setServices(e, []Service{s}); err != nil {
		t.Fatal(err)
	}
	if !e.nft.lastRewrite(mapSvcIP4) {
		t.Fatal("the first Replace did not rewrite the service section")
	}
	if err := deleteService(e, "nosuch"); err != nil {
		t.Fatalf("deleting an unknown service: %v", err)
	}
}

func TestAssignSlots(t *testing.T) {
	a := func(s ...string) []netip.Addr {
		var out []netip.Addr
		for _, x := range s {
			out = append(out, netip.MustParseAddr("10.0.0."+x))
		}
		return out
	}
	for _, tc := range []struct{ prev, want, got []netip.Addr }{
		{nil, a("1", "2", "3"), a("1", "2", "3")},
		{a("1", "2", "3"), a("1", "3"), a("1", "3")},                // last moves into the hole
		{a("1", "2", "3", "4"), a("1", "2", "4"), a("1", "2", "4")}, // 3 gone: 4 takes slot 2
		{a("1", "2", "3"), a("1", "2", "3", "9"), a("1", "2", "3", "9")},
		{a("1", "2", "3"), a("1", "3", "9"), a("1", "9", "3")}, // 9 takes 2's slot
		{a("1", "2"), nil, nil},
	} {
		if got := assignSlots(tc.prev, tc.want); !slices.Equal(got, tc.got) {
			t.Errorf("assignSlots(%v, %v) = %v, want %v", tc.prev, tc.want, got, tc.got)
		}
	}
}

// TestServiceConntrackCleanup: when an endpoint leaves, its UDP flows
// through the service are deleted (not its TCP flows, not other
// endpoints', not flows that bypassed the service); when a service
// appears, UDP flows to its address that no service rule NATed go.
func TestServiceConntrackCleanup(t *testing.T) {
	a := netip.MustParseAddr
	svc := Service{Name: "dns", ClusterIP: a("10.96.0.10"),
		Ports:     []ServicePort{{Proto: UDP, Port: 53, TargetPort: 5353}, {Proto: TCP, Port: 53, TargetPort: 5353}},
		Endpoints: []ServiceEndpoint{{Addr: a("10.200.1.2")}, {Addr: a("10.200.1.3")}}}
	flow := func(proto uint8, dst, replySrc string, mark uint32) *netlink.ConntrackFlow {
		f := &netlink.ConntrackFlow{Mark: mark}
		f.Forward.Protocol, f.Forward.SrcIP, f.Forward.DstIP, f.Forward.SrcPort, f.Forward.DstPort = proto, ip("10.200.2.5"), ip(dst), 40000, 53
		f.Reverse.Protocol, f.Reverse.SrcIP, f.Reverse.DstIP, f.Reverse.SrcPort, f.Reverse.DstPort = proto, ip(replySrc), ip("10.200.2.5"), 5353, 40000
		return f
	}
	e := svcEngine(t)
	stale := flow(17, "10.96.0.10", "10.96.0.10", 0) // sent before the service existed
	e.ct.flows = []*netlink.ConntrackFlow{stale}
	if err := upsertService(e, svc); err != nil {
		t.Fatal(err)
	}
	if e.ct.count() != 0 {
		t.Fatal("UDP flow to the new service's VIP that no rule NATed was kept")
	}
	keepTCP := flow(6, "10.96.0.10", "10.200.1.3", ctMarkService)
	keepOther := flow(17, "10.96.0.10", "10.200.1.2", ctMarkService)
	gone := flow(17, "10.96.0.10", "10.200.1.3", ctMarkService)
	direct := flow(17, "10.200.1.3", "10.200.1.3", 0) // straight to the container
	e.ct.flows = []*netlink.ConntrackFlow{keepTCP, keepOther, gone, direct}
	svc.Endpoints = svc.Endpoints[:1]
	if err := upsertService(e, svc); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(e.ct.flows, []*netlink.ConntrackFlow{keepTCP, keepOther, direct}) {
		t.Fatalf("flows after 10.200.1.3 left: %d left, want the TCP one, the other endpoint's and the direct one", e.ct.count())
	}
	if err := deleteService(e, "dns"); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(e.ct.flows, []*netlink.ConntrackFlow{keepTCP, direct}) {
		t.Fatalf("flows after the service went: %d left", e.ct.count())
	}
}

func TestNormalizeService(t *testing.T) {
	a := netip.MustParseAddr
	s, ignored := normalizeService(Service{Name: "x", ClusterIP: a("::ffff:10.96.0.1"),
		ExternalIPs: []netip.Addr{a("192.0.2.9"), a("fd00::1"), a("192.0.2.9")},
		Ports:       []ServicePort{{Proto: UDP, Port: 53}},
		Endpoints:   []ServiceEndpoint{{Addr: a("10.1.0.3")}, {Addr: a("fd00::2")}, {Addr: a("10.1.0.2")}, {Addr: a("10.1.0.3")}},
		Affinity:    time.Minute + 300*time.Millisecond})
	if s.ClusterIP != a("10.96.0.1") || len(s.ExternalIPs) != 1 || s.Ports[0].TargetPort != 53 ||
		len(s.Endpoints) != 2 || s.Endpoints[0].Addr != a("10.1.0.2") || len(ignored) != 2 || s.Affinity != time.Minute {
		t.Fatalf("normalized %+v, ignored %v", s, ignored)
	}
}

// svcElements are the programmed elements of the service section.
func svcElements(e *fakeEngine) map[string]bool {
	out := map[string]bool{}
	for text := range e.nft.elementTexts() {
		if strings.HasPrefix(text, svcPrefix) && !strings.HasPrefix(text, setSvcSums+":") {
			out[text] = true
		}
	}
	return out
}

// TestServiceConntrackAfterRestart: the first Replace deletes the
// UDP flows the previous podnetd's rules sent to an endpoint that has
// left since (not TCP ones, not those to current endpoints).
func TestServiceConntrackAfterRestart(t *testing.T) {
	a := netip.MustParseAddr
	flow := func(proto uint8, dport uint16, replySrc string) *netlink.ConntrackFlow {
		f := &netlink.ConntrackFlow{Mark: ctMarkService}
		f.Forward.Protocol, f.Forward.DstIP, f.Forward.DstPort = proto, ip("10.96.0.10"), dport
		f.Reverse.Protocol, f.Reverse.SrcIP, f.Reverse.SrcPort = proto, ip(replySrc), 5353
		return f
	}
	left, live, tcp := flow(17, 53, "10.200.1.9"), flow(17, 53, "10.200.1.2"), flow(6, 53, "10.200.1.9")
	e := newFakeEngine(t)
	e.ct.flows = []*netlink.ConntrackFlow{left, live, tcp}
	svc := Service{Name: "dns", ClusterIP: a("10.96.0.10"), Ports: []ServicePort{{Proto: UDP, Port: 53, TargetPort: 5353},
		{Proto: TCP, Port: 53, TargetPort: 5353}}, Endpoints: []ServiceEndpoint{{Addr: a("10.200.1.2")}}}
	if err := setServices(e, []Service{svc}); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(e.ct.flows, []*netlink.ConntrackFlow{live, tcp}) {
		t.Fatalf("%d flows left after the first Replace, want the live endpoint's and the TCP one", e.ct.count())
	}
}

// applier is an Engine (or a fake engine embedding one).
type applier interface {
	Apply(context.Context, Change) (Result, error)
}

// setServices is a Replace of svcs.
func setServices(a applier, svcs []Service) error {
	_, err := a.Apply(ctx, Change{Services: ServiceChanges{Replace: true, Upsert: svcs}})
	return err
}

// upsertService is a change of one service; its failure is the error.
func upsertService(a applier, s Service) error {
	res, err := a.Apply(ctx, Change{Services: ServiceChanges{Upsert: []Service{s}}})
	if err != nil {
		return err
	}
	return res.Services[s.Name]
}

// deleteService is a change removing one service.
func deleteService(a applier, name string) error {
	_, err := a.Apply(ctx, Change{Services: ServiceChanges{Remove: []string{name}}})
	return err
}

// TestNodePortsAndPublishedPortsShareThePorts: a port a container
// publishes here, or a process of the host holds, keeps its traffic: the
// NodePort on it is left out on this host (and reported), the rest of the
// service is programmed; a new -p on a NodePort is refused naming the
// service; once the -p is gone, the next full set takes the NodePort.
func TestNodePortsAndPublishedPortsShareThePorts(t *testing.T) {
	a := netip.MustParseAddr
	e := svcEngine(t)
	if _, err := e.Publish(ctx, ep1, "net1", c1IP4, noAddr, []Binding{tcp(30600, 0, 80)}); err != nil {
		t.Fatal(err)
	}
	e.inUse["tcp/30700"] = true
	np := func(name, vip string, port uint16) Service {
		return Service{Name: name, ClusterIP: a(vip), Ports: []ServicePort{{Proto: TCP, Port: 80, NodePort: port}},
			Endpoints: []ServiceEndpoint{{Addr: a("10.200.1.2")}}}
	}
	svcs := []Service{np("pub", "10.96.0.11", 30600), np("listen", "10.96.0.12", 30700), np("free", "10.96.0.13", 30800)}
	if err := setServices(e, svcs); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{
		"pub":    "node port 30600/tcp is published on this host by endpoint " + ep1[:12] + " (docker run -p), which keeps it",
		"listen": "node port 30700/tcp is held by a process of this host, which keeps its traffic",
	} {
		if err := e.ServiceStatus(name); !errors.Is(err, ErrServiceConflict) || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", name, err, want)
		}
	}
	got := svcElements(e)
	if got["svc-np: tcp . 30600 : goto svc-np4-b0"] || got["svc-np: tcp . 30700 : goto svc-np4-b0"] ||
		!got["svc-np: tcp . 30800 : goto svc-np4-b0"] || !got["svc-ip4: 10.96.0.11 . tcp . 80 : goto svc-ip4-b0"] {
		t.Fatalf("elements %v: want only free's NodePort, and every VIP", got)
	}
	_, err := e.Publish(ctx, "ep-new", "net1", c1IP4, noAddr, []Binding{tcp(30800, 0, 80)})
	var pc *PortConflictError
	if !errors.As(err, &pc) || pc.Service != "free" || !strings.Contains(err.Error(), "host port 30800/tcp is NodePort 30800 of service free") {
		t.Fatalf("publishing a NodePort: %v", err)
	}
	if _, err := e.Publish(ctx, "ep-lo", "net1", c1IP4, noAddr, []Binding{{Proto: TCP, HostIP: a("127.0.0.1"), HostPort: 30800, ContainerPort: 80}}); err != nil {
		t.Fatalf("on loopback, where NodePorts do not answer: %v", err)
	}
	if err := e.Unpublish(ctx, ep1); err != nil {
		t.Fatal(err)
	}
	delete(e.inUse, "tcp/30700")
	if err := setServices(e, svcs); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"pub", "listen"} {
		if err := e.ServiceStatus(n); err != nil {
			t.Errorf("%s once its port is free: %v", n, err)
		}
	}
}

// TestPickChainsReachEveryBucketOnce: the range chains of a service with
// n endpoints lead to each of its n buckets by exactly one path, with one
// rule per chain while a constant map can hold the choice (n ≤
// maxPickVmap) and a split into such chains beyond.
func TestPickChainsReachEveryBucketOnce(t *testing.T) {
	k := keyspace{fam: ipv4}
	gotoRE := regexp.MustCompile(`goto (\S+?)[,}]?(\s|$)`)
	for _, n := range []int{2, 10, maxPickVmap, maxPickVmap + 1, 1000} {
		chains := map[string][]ruleDef{}
		for _, id := range rangeIDs(k, 0, n) {
			_, cs, rules := sharedObjects(id)
			chains[cs[0].name] = rules
		}
		reached := map[string]int{}
		var walk func(chain string)
		walk = func(chain string) {
			rules, ok := chains[chain]
			if !ok {
				reached[chain]++
				return
			}
			if flatPick(n) && len(rules) != 1 {
				t.Errorf("n=%d: chain %s has %d rules, want one numgen vmap", n, chain, len(rules))
			}
			for _, r := range rules {
				for _, m := range gotoRE.FindAllStringSubmatch(r.text, -1) {
					walk(m[1])
				}
			}
		}
		walk(rangeName(k, 0, n))
		if len(reached) != n {
			t.Errorf("n=%d: %d buckets reached, want %d", n, len(reached), n)
		}
		for i := 0; i < n; i++ {
			if b := bucketName(k, i); reached[b] != 1 {
				t.Errorf("n=%d: bucket %s reached by %d paths, want 1", n, b, reached[b])
			}
		}
	}
}
