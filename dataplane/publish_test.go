package dataplane

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"
)

var (
	ctx    = context.Background()
	c1IP4  = netip.MustParseAddr("10.1.0.2")
	c1IP6  = netip.MustParseAddr("fd00:1::2")
	c2IP4  = netip.MustParseAddr("10.1.0.3")
	hostA  = netip.MustParseAddr("192.0.2.10")
	hostB  = netip.MustParseAddr("192.0.2.11")
	noAddr = netip.Addr{}
)

const (
	ep1 = "3f2a1b4c5d6e7f8091a2b3c4d5e6f708"
	ep2 = "aa2a1b4c5d6e7f8091a2b3c4d5e6f708"
	ep3 = "bb2a1b4c5d6e7f8091a2b3c4d5e6f708"
)

func tcp(host, end, ctr uint16) Binding {
	return Binding{Proto: TCP, HostPort: host, HostPortEnd: end, ContainerPort: ctr}
}

func mustPublish(t *testing.T, e *fakeEngine, ep string, ip4, ip6 netip.Addr, bs ...Binding) []Mapping {
	t.Helper()
	ms, err := e.Publish(ctx, ep, "net1", ip4, ip6, bs)
	if err != nil {
		t.Fatalf("publish %s: %v", ep, err)
	}
	return ms
}

func hostPorts(ms []Mapping) []uint16 {
	var out []uint16
	for _, m := range ms {
		out = append(out, m.HostPort)
	}
	return out
}

func TestPublishRangePicksFirstFreePort(t *testing.T) {
	e := newFakeEngine(t)
	mustPublish(t, e, ep1, c1IP4, noAddr, tcp(8000, 0, 80))
	e.inUse["tcp/8001"] = true
	ms := mustPublish(t, e, ep2, c2IP4, noAddr, tcp(8000, 8005, 80))
	if got := hostPorts(ms); !slices.Equal(got, []uint16{8002}) {
		t.Fatalf("range 8000-8005 with 8000 published and 8001 in use: got ports %v, want [8002]", got)
	}
	if !e.nft.elementTexts()["pm4_any: tcp . 8002 : 10.1.0.3 . 80"] {
		t.Fatalf("element for 8002 not programmed: %v", e.nft.elementTexts())
	}
}

func TestPublishRangeExhausted(t *testing.T) {
	e := newFakeEngine(t)
	mustPublish(t, e, ep1, c1IP4, noAddr, tcp(8000, 0, 80))
	e.inUse["tcp/8001"] = true
	_, err := e.Publish(ctx, ep2, "net1", c2IP4, noAddr, []Binding{tcp(8000, 8001, 80)})
	if err == nil || !strings.Contains(err.Error(), "no free host port in 8000-8001/tcp") {
		t.Fatalf("got %v, want a 'no free host port in 8000-8001/tcp' error", err)
	}
}

func TestPublishConflictMessages(t *testing.T) {
	e := newFakeEngine(t)
	mustPublish(t, e, ep1, c1IP4, noAddr, tcp(8080, 0, 80))

	_, err := e.Publish(ctx, ep2, "net1", c2IP4, noAddr, []Binding{tcp(8080, 0, 80)})
	var pc *PortConflictError
	if !errors.As(err, &pc) || pc.EndpointID != ep1 || pc.Port != 8080 {
		t.Fatalf("got %v, want a PortConflictError naming endpoint %s", err, ep1)
	}
	if want := "host port 8080/tcp is already published by endpoint 3f2a1b4c5d6e"; !strings.Contains(err.Error(), want) {
		t.Fatalf("error %q does not contain %q", err, want)
	}

	e.inUse["tcp/9090"] = true
	_, err = e.Publish(ctx, ep2, "net1", c2IP4, noAddr, []Binding{tcp(9090, 0, 80)})
	if want := "host port 9090/tcp on 0.0.0.0 is in use by another process on this host"; err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("got %v, want %q", err, want)
	}
}

func TestPublishHostIPOverlap(t *testing.T) {
	e := newFakeEngine(t)
	mustPublish(t, e, ep1, c1IP4, noAddr, Binding{Proto: TCP, HostIP: hostA, HostPort: 8080, ContainerPort: 80})
	// Another host address, UDP on the same port, or IPv6 do not overlap.
	mustPublish(t, e, ep2, c2IP4, c1IP6,
		Binding{Proto: TCP, HostIP: hostB, HostPort: 8080, ContainerPort: 80},
		Binding{Proto: UDP, HostPort: 8080, ContainerPort: 80},
		Binding{Proto: TCP, HostIP: netip.IPv6Unspecified(), HostPort: 8080, ContainerPort: 80})
	// The wildcard overlaps both addresses.
	_, err := e.Publish(ctx, ep3, "net1", c2IP4, noAddr, []Binding{{Proto: TCP, HostIP: netip.IPv4Unspecified(), HostPort: 8080, ContainerPort: 80}})
	var pc *PortConflictError
	if !errors.As(err, &pc) || pc.EndpointID != ep1 && pc.EndpointID != ep2 {
		t.Fatalf("wildcard 8080 over two specific bindings: got %v, want a conflict", err)
	}
	// Same address as ep1.
	_, err = e.Publish(ctx, ep3, "net1", c2IP4, noAddr, []Binding{{Proto: TCP, HostIP: hostA, HostPort: 8080, ContainerPort: 81}})
	if want := "host port 8080/tcp on 192.0.2.10 is already published by endpoint 3f2a1b4c5d6e"; err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("got %v, want %q", err, want)
	}
}

func TestPublishWildcardFamilies(t *testing.T) {
	e := newFakeEngine(t)
	ms := mustPublish(t, e, ep1, c1IP4, c1IP6, tcp(8080, 0, 80))
	want := []Mapping{
		{Proto: TCP, HostPort: 8080, ContainerIP: c1IP4, ContainerPort: 80},
		{Proto: TCP, HostPort: 8080, ContainerIP: c1IP6, ContainerPort: 80},
	}
	if !slices.Equal(ms, want) {
		t.Fatalf("wildcard binding with IPv4 and IPv6: got %+v, want %+v", ms, want)
	}
	ms = mustPublish(t, e, ep2, c2IP4, c1IP6, Binding{Proto: UDP, HostIP: netip.IPv4Unspecified(), HostPort: 53, ContainerPort: 53})
	if len(ms) != 1 || !ms[0].ContainerIP.Is4() || ms[0].HostIP.IsValid() {
		t.Fatalf("0.0.0.0 binding: got %+v, want one IPv4 wildcard mapping", ms)
	}
	if _, err := e.Publish(ctx, ep3, "net1", noAddr, c1IP6, []Binding{{Proto: TCP, HostIP: hostA, HostPort: 1, ContainerPort: 1}}); err == nil {
		t.Fatal("IPv4 host IP for an endpoint without IPv4: no error")
	}
}

func TestPublishEphemeralRoundRobin(t *testing.T) {
	e := newFakeEngine(t) // ephemeral range 40000-40004
	e.inUse["tcp/40001"] = true
	var got []uint16
	for _, ep := range []string{"e1", "e2", "e3"} {
		got = append(got, hostPorts(mustPublish(t, e, ep, c1IP4, noAddr, tcp(0, 0, 80)))...)
	}
	if !slices.Equal(got, []uint16{40000, 40002, 40003}) {
		t.Fatalf("ephemeral ports: got %v, want [40000 40002 40003]", got)
	}
	// Releasing 40000 does not hand it out again before the range wraps.
	if err := e.Unpublish(ctx, "e1"); err != nil {
		t.Fatal(err)
	}
	if p := hostPorts(mustPublish(t, e, "e4", c1IP4, noAddr, tcp(0, 0, 80))); !slices.Equal(p, []uint16{40004}) {
		t.Fatalf("next ephemeral: got %v, want [40004]", p)
	}
	if p := hostPorts(mustPublish(t, e, "e5", c1IP4, noAddr, tcp(0, 0, 80))); !slices.Equal(p, []uint16{40000}) {
		t.Fatalf("after wrap: got %v, want [40000]", p)
	}
	_, err := e.Publish(ctx, "e6", "net1", c1IP4, noAddr, []Binding{tcp(0, 0, 80)})
	if err == nil || !strings.Contains(err.Error(), "no free ephemeral host port for tcp in 40000-40004") {
		t.Fatalf("full range: got %v", err)
	}
}

func TestPublishAllOrNothing(t *testing.T) {
	e := newFakeEngine(t)
	mustPublish(t, e, ep1, c1IP4, noAddr, tcp(8080, 0, 80))
	before := e.nft.elementTexts()
	_, err := e.Publish(ctx, ep2, "net1", c2IP4, noAddr, []Binding{tcp(7070, 0, 70), tcp(0, 0, 90), tcp(8080, 0, 80)})
	if err == nil || !strings.Contains(err.Error(), "8080/tcp") {
		t.Fatalf("third binding conflicts: got %v, want an error naming 8080/tcp", err)
	}
	if got := e.Mappings(ep2); got != nil {
		t.Fatalf("failed publish left mappings %+v", got)
	}
	if after := e.nft.elementTexts(); len(after) != len(before) {
		t.Fatalf("failed publish changed the kernel: %v -> %v", before, after)
	}
	// The ephemeral port the failed call looked at is handed out next.
	if p := hostPorts(mustPublish(t, e, ep3, c2IP4, noAddr, tcp(0, 0, 90))); !slices.Equal(p, []uint16{40000}) {
		t.Fatalf("ephemeral cursor not rolled back: got %v", p)
	}
}

func TestPublishReplaces(t *testing.T) {
	e := newFakeEngine(t)
	first := mustPublish(t, e, ep1, c1IP4, noAddr, tcp(8080, 0, 80), tcp(0, 0, 81))
	second := mustPublish(t, e, ep1, c1IP4, noAddr, tcp(9090, 0, 80), tcp(0, 0, 81))
	if first[1].HostPort != second[1].HostPort {
		t.Fatalf("re-publish moved the ephemeral port %d -> %d", first[1].HostPort, second[1].HostPort)
	}
	got := e.nft.elementTexts()
	want := map[string]bool{
		"pm4_any: tcp . 9090 : 10.1.0.2 . 80":                            true,
		"pm4_any: tcp . " + itoa(first[1].HostPort) + " : 10.1.0.2 . 81": true,
	}
	if !mapsEqual(got, want) {
		t.Fatalf("kernel elements after replace: got %v, want %v", got, want)
	}
	if e.nft.tables != 1 || e.nft.updates != 1 {
		// The first publish found no table and rebuilt; the second one
		// must be a single incremental update.
		t.Fatalf("got %d table rebuilds and %d element updates, want 1 and 1", e.nft.tables, e.nft.updates)
	}
	// Publishing the same port again (re-Program) is a no-op.
	mustPublish(t, e, ep1, c1IP4, noAddr, tcp(9090, 0, 80), tcp(0, 0, 81))
	if e.nft.updates != 1 {
		t.Fatalf("identical re-publish touched the kernel")
	}
}

func TestPublishDeduplicatesRepeatedBinding(t *testing.T) {
	e := newFakeEngine(t)
	ms := mustPublish(t, e, ep1, c1IP4, noAddr, tcp(8080, 0, 80), tcp(8080, 8080, 80))
	if len(ms) != 1 {
		t.Fatalf("repeated binding: got %+v, want one mapping", ms)
	}
	if _, err := e.Publish(ctx, ep2, "net1", c2IP4, noAddr, []Binding{tcp(7070, 0, 80), tcp(7070, 0, 81)}); err == nil {
		t.Fatal("one host port for two container ports: no error")
	}
}

func TestPublishValidates(t *testing.T) {
	e := newFakeEngine(t)
	for name, b := range map[string]Binding{
		"icmp":           {Proto: "icmp", HostPort: 1, ContainerPort: 1},
		"no ctr port":    {Proto: TCP, HostPort: 1},
		"inverted range": tcp(9000, 8000, 80),
		"end only":       tcp(0, 8000, 80),
	} {
		if _, err := e.Publish(ctx, ep1, "net1", c1IP4, noAddr, []Binding{b}); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestPublishRollsBackWhenKernelRefuses(t *testing.T) {
	e := newFakeEngine(t)
	mustPublish(t, e, ep1, c1IP4, noAddr, tcp(8080, 0, 80))
	e.nft.failUpdate, e.nft.failReplace = true, true
	if _, err := e.Publish(ctx, ep1, "net1", c1IP4, noAddr, []Binding{tcp(9090, 0, 80)}); err == nil {
		t.Fatal("kernel refused: no error")
	}
	if got := hostPorts(e.Mappings(ep1)); !slices.Equal(got, []uint16{8080}) {
		t.Fatalf("memory after refused replace: %v, want [8080]", got)
	}
	if err := e.Unpublish(ctx, ep1); err == nil {
		t.Fatal("kernel refused unpublish: no error")
	}
	if e.Mappings(ep1) == nil {
		t.Fatal("refused unpublish forgot the mappings")
	}
	// 9090 was not kept reserved by the failed call.
	e.nft.failUpdate, e.nft.failReplace = false, false
	mustPublish(t, e, ep2, c2IP4, noAddr, tcp(9090, 0, 80))
}

func TestPublishRebuildsWhenTableDrifted(t *testing.T) {
	e := newFakeEngine(t)
	mustPublish(t, e, ep1, c1IP4, noAddr, tcp(8080, 0, 80))
	_ = e.nft.deleteTable("podnet") // someone ran `nft flush ruleset`
	mustPublish(t, e, ep2, c2IP4, noAddr, tcp(9090, 0, 80))
	want := map[string]bool{"pm4_any: tcp . 8080 : 10.1.0.2 . 80": true, "pm4_any: tcp . 9090 : 10.1.0.3 . 80": true}
	if got := e.nft.elementTexts(); !mapsEqual(got, want) {
		t.Fatalf("after rebuild: %v, want %v", got, want)
	}
}

func TestUnpublishDeletesConntrack(t *testing.T) {
	e := newFakeEngine(t)
	mustPublish(t, e, ep1, c1IP4, noAddr, Binding{Proto: UDP, HostPort: 5000, ContainerPort: 53},
		Binding{Proto: TCP, HostPort: 5000, ContainerPort: 53})
	mustPublish(t, e, ep2, c2IP4, noAddr, Binding{Proto: UDP, HostPort: 5001, ContainerPort: 53})
	tcp := udpFlow("192.0.2.99", "192.0.2.10", 5000, c1IP4.String(), 53) // ep1's TCP
	tcp.Forward.Protocol, tcp.Reverse.Protocol = 6, 6
	e.ct.flows = []*netlink.ConntrackFlow{
		udpFlow("192.0.2.99", "192.0.2.10", 5000, c1IP4.String(), 53), // ep1's
		tcp,
		udpFlow("192.0.2.99", "192.0.2.10", 5001, c2IP4.String(), 53), // ep2's
	}
	if err := e.Unpublish(ctx, ep1); err != nil {
		t.Fatal(err)
	}
	if e.ct.count() != 1 || e.ct.flows[0].Forward.DstPort != 5001 {
		t.Fatalf("conntrack after unpublish of ep1: %v, want only the 5001 flow", e.ct.flows)
	}
	if err := e.Unpublish(ctx, ep1); err != nil {
		t.Fatalf("second unpublish: %v", err)
	}
}

func TestPublishDeletesStaleUDPConntrack(t *testing.T) {
	e := newFakeEngine(t)
	e.ct.local = map[netip.Addr]bool{hostA: true}
	e.ct.flows = []*netlink.ConntrackFlow{
		udpFlow("192.0.2.99", "192.0.2.10", 5000, "192.0.2.10", 5000),   // arrived while unpublished
		udpFlow("10.1.0.9", "198.51.100.1", 5000, "198.51.100.1", 5000), // forwarded to a remote :5000
	}
	mustPublish(t, e, ep1, c1IP4, noAddr, Binding{Proto: UDP, HostPort: 5000, ContainerPort: 53})
	if e.ct.count() != 1 || e.ct.flows[0].Forward.DstIP.String() != "198.51.100.1" {
		t.Fatalf("conntrack after publish: %v, want only the forwarded flow", e.ct.flows)
	}
}

func udpFlow(src, dst string, dport uint16, replySrc string, replySport uint16) *netlink.ConntrackFlow {
	f := &netlink.ConntrackFlow{}
	f.Forward.Protocol, f.Reverse.Protocol = 17, 17
	f.Forward.SrcIP, f.Forward.DstIP, f.Forward.SrcPort, f.Forward.DstPort = ip(src), ip(dst), 40000, dport
	f.Reverse.SrcIP, f.Reverse.DstIP, f.Reverse.SrcPort, f.Reverse.DstPort = ip(replySrc), ip(src), replySport, 40000
	return f
}

func mapsEqual(a, b map[string]bool) bool {
	if len(a) != len(b) {
		return false
	}
	for k := range a {
		if !b[k] {
			return false
		}
	}
	return true
}
