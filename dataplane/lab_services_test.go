package dataplane

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/podnet/podnet/internal/testutil"
)

// hostsLab is two "hosts" on an underlay switch with an outside client,
// one multi-host pod network 10.244.0.0/16 across them the way the
// overlay builds it (anycast gateway and proxy ARP on each host's bridge,
// a VXLAN device, per-block routes via the other host's underlay address,
// static neighbor and FDB entries), Docker's FORWARD policy DROP and
// strict reverse-path filtering everywhere:
//
//	outside 10.77.0.9 ─┐
//	        host A 10.77.0.1 ── sw ── host B 10.77.0.2
//	        pn-pods 10.244.0.1/16      pn-pods 10.244.0.1/16
//	        block 10.244.1.0/26        block 10.244.2.0/26
//	        tunnel address .1.62       tunnel address .2.62
type hostsLab struct {
	*lab // helpers only (t, netns, ipBatch, sysctl)
	sw   *testutil.NetNS
	out  *testutil.NetNS
	h    [2]*labHostNS
}

type labHostNS struct {
	ns     *testutil.NetNS
	eng    *Engine
	under  string // underlay address
	tunnel string
	net    Network
}

const (
	podSubnet = "10.244.0.0/16"
	outsideIP = "10.77.0.9"
)

func newHostsLab(t *testing.T) *hostsLab {
	t.Helper()
	testutil.SkipUnlessLinkType(t, "vxlan")
	l := &hostsLab{lab: &lab{t: t, ctx: context.Background()}}
	l.sw, l.out = l.netns(), l.netns()
	l.ipBatch(l.sw, "link add sw0 type bridge", "link set sw0 up")
	tag := l.sw.Name[len(l.sw.Name)-4:]
	attach := func(ns *testutil.NetNS, i int, addr string) {
		port := fmt.Sprintf("p%d%s", i, tag)
		l.ipBatch(l.sw, fmt.Sprintf("link add %s type veth peer name eth0 netns %s", port, ns.Name),
			"link set "+port+" master sw0", "link set "+port+" up")
		l.ipBatch(ns, "addr add "+addr+"/24 dev eth0", "link set eth0 up")
	}
	attach(l.out, 9, outsideIP)
	macs := [2]string{"02:71:00:00:00:01", "02:71:00:00:00:02"}
	for i := range l.h {
		h := &labHostNS{ns: l.netns(), under: fmt.Sprintf("10.77.0.%d", i+1), tunnel: fmt.Sprintf("10.244.%d.62", i+1)}
		l.h[i] = h
		attach(h.ns, i+1, h.under)
		for _, k := range []string{"net/ipv4/ip_forward", "net/ipv4/conf/all/rp_filter", "net/ipv4/conf/default/rp_filter"} {
			l.sysctl(h.ns, k, "1")
		}
		l.ipBatch(h.ns,
			"route add default via 10.77.0.254", // a host process needs a route to a VIP
			"link add pn-pods type bridge", "addr add 10.244.0.1/16 dev pn-pods", "link set pn-pods up",
			fmt.Sprintf("link add pnx42 type vxlan id 42 dstport 4789 local %s nolearning", h.under),
			"link set pnx42 address "+macs[i], "link set pnx42 up")
		l.sysctl(h.ns, "net/ipv4/conf/pn-pods/proxy_arp", "1")
		l.sysctl(h.ns, "net/ipv4/neigh/pn-pods/proxy_delay", "0")
		for _, dev := range []string{"eth0", "pn-pods", "pnx42"} {
			l.sysctl(h.ns, "net/ipv4/conf/"+dev+"/rp_filter", "1")
		}
		// What Docker leaves in FORWARD.
		h.ns.MustExec(t, "iptables", "-P", "FORWARD", "DROP")
		h.eng = New(Options{Logger: testLogger(t).With("host", i+1)})
		h.net = Network{ID: fmt.Sprintf("pods%d", i+1), Bridge: "pn-pods", Uplink: "pnx42", Masquerade: true,
			Subnets: []netip.Prefix{netip.MustParsePrefix(podSubnet)}, TunnelAddrs: []netip.Addr{netip.MustParseAddr(h.tunnel)}}
	}
	for i, h := range l.h {
		o := l.h[1-i]
		l.ipBatch(h.ns,
			fmt.Sprintf("neigh replace %s lladdr %s dev pnx42 nud permanent", o.under, macs[1-i]),
			fmt.Sprintf("route add 10.244.%d.0/26 via %s dev pnx42 onlink", 2-i, o.under))
		h.ns.MustExec(t, "bridge", "fdb", "append", macs[1-i], "dev", "pnx42", "dst", o.under, "self", "permanent")
		if err := h.ns.Do(func() error { return h.eng.AddNetwork(l.ctx, h.net) }); err != nil {
			t.Fatal(err)
		}
	}
	return l
}

// pod adds a container with addr on host i's bridge.
func (l *hostsLab) pod(i int, addr string) *testutil.NetNS {
	ns := l.netns()
	h := l.h[i]
	veth := "v" + strings.ReplaceAll(addr, ".", "")[5:]
	l.ipBatch(h.ns, fmt.Sprintf("link add %s type veth peer name eth0 netns %s", veth, ns.Name),
		"link set "+veth+" master pn-pods", "link set "+veth+" type bridge_slave hairpin on", "link set "+veth+" up")
	l.ipBatch(ns, "addr add "+addr+"/16 dev eth0", "link set eth0 up", "route add default via 10.244.0.1")
	return ns
}

// setServices gives each host the services, with Local set for the
// endpoints in its own block.
func (l *hostsLab) setServices(svcs ...Service) {
	l.t.Helper()
	for i, h := range l.h {
		own := netip.MustParsePrefix(fmt.Sprintf("10.244.%d.0/26", i+1))
		var mine []Service
		for _, s := range svcs {
			s.Endpoints = append([]ServiceEndpoint(nil), s.Endpoints...)
			for j := range s.Endpoints {
				s.Endpoints[j].Local = own.Contains(s.Endpoints[j].Addr)
			}
			mine = append(mine, s)
		}
		if err := h.ns.Do(func() error { return setServices(h.eng, mine) }); err != nil {
			l.t.Fatal(err)
		}
	}
}

// answers connects n times from ns to addr and returns the set of answers.
func (l *hostsLab) answers(ns *testutil.NetNS, addr string, n int) map[string]bool {
	l.t.Helper()
	out := map[string]bool{}
	for answer := range tally(l.t, ns, "tcp", addr, n) {
		out[answer] = true
	}
	return out
}

func (l *hostsLab) expect(what string, ns *testutil.NetNS, addr string, n int, want ...string) {
	l.t.Helper()
	got := l.answers(ns, addr, n)
	ok := len(got) == len(want)
	for _, w := range want {
		ok = ok && got[w]
	}
	if !ok {
		l.t.Fatalf("%s: %s from %s answered %v over %d connections, want exactly %q", what, addr, ns.Name, keys(got), n, want)
	}
}

func keys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// TestLabServicesAcrossHosts: a service with one endpoint on each of two
// hosts, reached from a container, from a host process, on NodePorts of
// both hosts from outside and through an external IP, with strict
// reverse-path filtering and Docker's FORWARD policy DROP. The endpoint
// sees the client's own address wherever the reply comes back through the
// host that did the DNAT anyway (a container client; NodePort and external
// IP to a local endpoint; externalTrafficPolicy Local), and that host's
// tunnel address when it has to (a host process or an outside client
// reaching an endpoint on the other host): never the anycast gateway.
func TestLabServicesAcrossHosts(t *testing.T) {
	t.Parallel()
	l := newHostsLab(t)
	a1, b1 := l.pod(0, "10.244.1.2"), l.pod(1, "10.244.2.2")
	aClient := l.pod(0, "10.244.1.3")
	serve(t, a1, 8080, "a1")
	serve(t, b1, 8080, "b1")
	eps := []ServiceEndpoint{{Addr: netip.MustParseAddr("10.244.1.2")}, {Addr: netip.MustParseAddr("10.244.2.2")}}
	l.setServices(
		Service{Name: "web", ClusterIP: netip.MustParseAddr(vip4), ExternalIPs: []netip.Addr{netip.MustParseAddr(extIP)},
			Ports: []ServicePort{{Proto: TCP, Port: 80, TargetPort: 8080, NodePort: nodePort}}, Endpoints: eps},
		Service{Name: "local", ClusterIP: netip.MustParseAddr("10.96.0.12"), LocalOnly: true,
			Ports: []ServicePort{{Proto: TCP, Port: 80, TargetPort: 8080, NodePort: 30443}}, Endpoints: eps},
	)
	l.ipBatch(l.out, "route add "+extIP+" via "+l.h[0].under)
	const n = 30 // both endpoints answer with probability 1 - 2^-29

	l.expect("container client", aClient, at(vip4, 80), n, "a1 10.244.1.3", "b1 10.244.1.3")
	l.expect("host process", l.h[0].ns, at(vip4, 80), n, "a1 10.77.0.1", "b1 10.244.1.62")
	l.expect("NodePort on host A from outside", l.out, at(l.h[0].under, nodePort), n, "a1 "+outsideIP, "b1 10.244.1.62")
	l.expect("NodePort on host B from outside", l.out, at(l.h[1].under, nodePort), n, "b1 "+outsideIP, "a1 10.244.2.62")
	l.expect("external IP through host A", l.out, at(extIP, 80), n, "a1 "+outsideIP, "b1 10.244.1.62")
	l.expect("Local policy on host A", l.out, at(l.h[0].under, 30443), 10, "a1 "+outsideIP)
	l.expect("Local policy on host B", l.out, at(l.h[1].under, 30443), 10, "b1 "+outsideIP)
	l.expect("Local policy from a container: cluster-wide", aClient, at("10.244.0.1", 30443), n, "a1 10.244.1.3", "b1 10.244.1.3")
}
