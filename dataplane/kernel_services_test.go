package dataplane

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/podnet/podnet/internal/testutil"
)

// svcLab is the lab with three endpoint containers (c1..c3, serving TCP
// and UDP on 8080, answering "<name> <client address>") on bridge 1, a
// client container on bridge 2, and a default route on the host (a host
// process needs a route to a VIP to pick its source address).
type svcLab struct {
	*lab
	net1, net2 Network
	eps        []container
	cl         container
}

const (
	vip4     = "10.96.0.10"
	vip6     = "fd00:96::10"
	extIP    = "192.0.2.50"
	nodePort = 30080
)

func newSvcLab(t *testing.T) *svcLab {
	l := &svcLab{lab: newLab(t)}
	l.net1, l.net2 = l.bridge(1), l.bridge(2)
	for i := 2; i <= 4; i++ {
		c := l.container(l.net1, i)
		serve(t, c.ns, 8080, fmt.Sprintf("c%d", i-1))
		l.eps = append(l.eps, c)
	}
	l.cl = l.container(l.net2, 5)
	l.ipBatch(l.host, "route add default via "+clientIP4, "route add default via "+clientIP6)
	l.addNetwork(l.net1)
	l.addNetwork(l.net2)
	return l
}

// endpoints are the first n endpoint containers, IPv4 (or IPv6), local.
func (l *svcLab) endpoints(n int, v6 bool) []ServiceEndpoint {
	var out []ServiceEndpoint
	for _, c := range l.eps[:n] {
		a := c.ip4
		if v6 {
			a = c.ip6
		}
		out = append(out, ServiceEndpoint{Addr: a, Local: true})
	}
	return out
}

func (l *svcLab) web(n int) Service {
	return Service{Name: "web", ClusterIP: netip.MustParseAddr(vip4), ExternalIPs: []netip.Addr{netip.MustParseAddr(extIP)},
		Ports: []ServicePort{
			{Proto: TCP, Port: 80, TargetPort: 8080, NodePort: nodePort},
			{Proto: UDP, Port: 53, TargetPort: 8080},
		},
		Endpoints: l.endpoints(n, false)}
}

func (l *svcLab) set(svcs ...Service) {
	l.t.Helper()
	l.do(func() error { return setServices(l.eng, svcs) })
	for _, s := range svcs {
		if err := l.eng.ServiceStatus(s.Name); err != nil {
			l.t.Fatalf("service %s: %v", s.Name, err)
		}
	}
}

func at(ip string, port uint16) string { return net.JoinHostPort(ip, fmt.Sprint(port)) }

// tally connects n times from ns to addr and counts the answers.
func tally(t *testing.T, ns *testutil.NetNS, proto, addr string, n int) map[string]int {
	t.Helper()
	got := map[string]int{}
	for i := 0; i < n; i++ {
		answer, err := hello(ns, proto, addr, 2*time.Second)
		if err != nil {
			t.Fatalf("%s %s from %s (connection %d): %v", proto, addr, ns.Name, i, err)
		}
		got[answer]++
	}
	return got
}

// TestKernelServiceSpreadAndSources: a VIP spreads connections evenly
// over its endpoints (chi-square over 300 connections), and every way in
// — a container of another network, the host, NodePorts on host
// addresses, an external IP, IPv6 — reaches an endpoint with the client's
// own address.
func TestKernelServiceSpreadAndSources(t *testing.T) {
	t.Parallel()
	l := newSvcLab(t)
	six := Service{Name: "six", ClusterIP: netip.MustParseAddr(vip6), Ports: []ServicePort{{Proto: TCP, Port: 80, TargetPort: 8080}},
		Endpoints: l.endpoints(2, true)}
	l.set(l.web(3), six)
	cl := l.cl.ip4.String()

	got := tally(t, l.cl.ns, "tcp", at(vip4, 80), 300)
	chi2 := 0.0
	for _, name := range []string{"c1", "c2", "c3"} {
		o := float64(got[name+" "+cl])
		chi2 += (o - 100) * (o - 100) / 100
	}
	// 2 degrees of freedom: P(chi2 > 13.8) = 0.001 for a fair choice.
	if chi2 > 13.8 || len(got) != 3 {
		t.Fatalf("300 connections to the VIP: %v (chi-square %.1f > 13.8, or answers not from c1..c3 seeing %s)", got, chi2, cl)
	}
	t.Logf("spread over 300 connections: %v, chi-square %.2f", got, chi2)

	// Six endpoints, two addresses per container: six buckets in one
	// numgen map: still a third each.
	var six4 []ServiceEndpoint
	for i, c := range l.eps {
		extra := netip.AddrFrom4([4]byte{10, 200, 1, byte(12 + i)})
		l.ipBatch(c.ns, "addr add "+extra.String()+"/24 dev eth0")
		six4 = append(six4, ServiceEndpoint{Addr: c.ip4, Local: true}, ServiceEndpoint{Addr: extra, Local: true})
	}
	wide := Service{Name: "wide", ClusterIP: netip.MustParseAddr("10.96.0.16"), Ports: []ServicePort{{Proto: TCP, Port: 80, TargetPort: 8080}},
		Endpoints: six4}
	l.set(l.web(3), six, wide)
	got = tally(t, l.cl.ns, "tcp", "10.96.0.16:80", 600)
	chi2 = 0
	for _, name := range []string{"c1", "c2", "c3"} {
		o := float64(got[name+" "+cl])
		chi2 += (o - 200) * (o - 200) / 200
	}
	if chi2 > 13.8 || len(got) != 3 {
		t.Fatalf("600 connections over 6 endpoints in 3 containers: %v (chi-square %.1f > 13.8)", got, chi2)
	}
	t.Logf("6 endpoints, spread over 600 connections: %v, chi-square %.2f", got, chi2)

	seen := func(ns *testutil.NetNS, proto, addr, client string) {
		t.Helper()
		for answer := range tally(t, ns, proto, addr, 6) {
			if !strings.HasSuffix(answer, " "+client) {
				t.Fatalf("%s %s from %s: endpoint saw %q, want the client's address %s", proto, addr, ns.Name, answer, client)
			}
		}
	}
	t.Run("udp from a container", func(t *testing.T) { seen(l.cl.ns, "udp", at(vip4, 53), cl) })
	t.Run("from the host", func(t *testing.T) { seen(l.host, "tcp", at(vip4, 80), hostIP4) })
	t.Run("node port on every host address", func(t *testing.T) {
		seen(l.client, "tcp", at(hostIP4, nodePort), clientIP4)
		seen(l.client, "tcp", at(hostIP4b, nodePort), clientIP4)
		seen(l.host, "tcp", at(hostIP4, nodePort), hostIP4)
		// Not on loopback (see serviceSkeleton).
		mustNotConnect(t, l.host, at("127.0.0.1", nodePort))
	})
	t.Run("external IP", func(t *testing.T) {
		seen(l.client, "tcp", at(extIP, 80), clientIP4)
		seen(l.cl.ns, "tcp", at(extIP, 80), cl)
	})
	t.Run("IPv6", func(t *testing.T) { seen(l.cl.ns, "tcp", at(vip6, 80), l.cl.ip6.String()) })
}

// TestKernelServiceHairpin: an endpoint reaching its own service. When it
// lands on itself it must be masqueraded (its own address as source would
// be dropped as martian); when it lands on another endpoint of its bridge
// it keeps its address with br_netfilter (the bridged reply is un-NATed
// by conntrack) and is masqueraded without it (the reply would bypass the
// host).
func TestKernelServiceHairpin(t *testing.T) {
	t.Parallel()
	for _, brnf := range []string{"1", "0"} {
		t.Run("bridge-nf-call-iptables="+brnf, func(t *testing.T) {
			l := newSvcLab(t)
			if err := l.host.Do(func() error { return writeProc("net/bridge/bridge-nf-call-iptables", brnf) }); err != nil {
				t.Skipf("br_netfilter not available in the namespace: %v", err)
			}
			l.set(l.web(2))
			c1 := l.eps[0]
			other := "c2 " + c1.ip4.String()
			if brnf == "0" {
				other = "c2 10.200.1.1"
			}
			want := map[string]bool{"c1 10.200.1.1": true, other: true}
			deadline := time.Now().Add(10 * time.Second)
			for len(want) > 0 && time.Now().Before(deadline) {
				answer, err := hello(c1.ns, "tcp", at(vip4, 80), 2*time.Second)
				if err != nil {
					t.Fatalf("c1 to its own service: %v", err)
				}
				if !want[answer] && answer != "c1 10.200.1.1" && answer != other {
					t.Fatalf("c1 to its own service: answer %q, want one of %q, %q", answer, "c1 10.200.1.1", other)
				}
				delete(want, answer)
			}
			if len(want) > 0 {
				t.Fatalf("never saw %v", want)
			}
		})
	}
}

func writeProc(key, val string) error {
	return os.WriteFile("/proc/sys/"+key, []byte(val), 0o644)
}

// TestKernelServiceRejectAndAffinity: no endpoints means an immediate
// reset or port unreachable, not a timeout; ClientIP affinity keeps a
// client on one endpoint and records it in the endpoint's timeout set.
func TestKernelServiceRejectAndAffinity(t *testing.T) {
	t.Parallel()
	l := newSvcLab(t)
	empty := Service{Name: "empty", ClusterIP: netip.MustParseAddr("10.96.0.20"),
		Ports: []ServicePort{{Proto: TCP, Port: 80}, {Proto: UDP, Port: 53}}}
	sticky := Service{Name: "sticky", ClusterIP: netip.MustParseAddr("10.96.0.21"), Affinity: time.Hour,
		Ports: []ServicePort{{Proto: TCP, Port: 80, TargetPort: 8080}}, Endpoints: l.endpoints(3, false)}
	l.set(empty, sticky)

	start := time.Now()
	_, err := hello(l.cl.ns, "tcp", "10.96.0.20:80", 3*time.Second)
	if !errors.Is(err, syscall.ECONNREFUSED) || time.Since(start) > time.Second {
		t.Fatalf("tcp to a service without endpoints: %v after %v, want connection refused at once", err, time.Since(start))
	}
	_, err = hello(l.cl.ns, "udp", "10.96.0.20:53", 3*time.Second)
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("udp to a service without endpoints: %v, want port unreachable (connection refused)", err)
	}

	got := tally(t, l.cl.ns, "tcp", "10.96.0.21:80", 20)
	if len(got) != 1 {
		t.Fatalf("20 connections with ClientIP affinity went to %v, want one endpoint", got)
	}
	var ep string
	for answer := range got {
		ep = strings.Fields(answer)[0]
	}
	idx := map[string]int{"c1": 0, "c2": 1, "c3": 2}[ep]
	set := affinitySetName("sticky/tcp/80", l.eps[idx].ip4)
	out, err := l.nft("list", "set", "inet", "podnet", set)
	if err != nil || !strings.Contains(out, l.cl.ip4.String()) {
		t.Fatalf("affinity set %s does not hold the client (err %v):\n%s", set, err, out)
	}
}

// TestKernelServiceAffinitySetFull: an affinity set filled to its size
// (65535 forged clients) does not refuse new clients: they are balanced
// without affinity; clients already in the set keep their endpoint.
func TestKernelServiceAffinitySetFull(t *testing.T) {
	t.Parallel()
	l := newSvcLab(t)
	sticky := Service{Name: "full", ClusterIP: netip.MustParseAddr("10.96.0.22"), Affinity: time.Hour,
		Ports: []ServicePort{{Proto: TCP, Port: 80, TargetPort: 8080}}, Endpoints: l.endpoints(2, false)}
	l.set(sticky)
	// Fill both endpoints' sets: 10.10.0.0 up, never the client.
	var b strings.Builder
	for i, ep := range l.eps[:2] {
		set := affinitySetName("full/tcp/80", ep.ip4)
		for n := range dynamicSetSize {
			a := netip.AddrFrom4([4]byte{10, byte(10 + i), byte(n >> 8), byte(n)})
			if n%4096 == 0 {
				fmt.Fprintf(&b, "\nadd element inet podnet %s { %s", set, a)
			} else {
				fmt.Fprintf(&b, ", %s", a)
			}
			if n%4096 == 4095 || n == dynamicSetSize-1 {
				b.WriteString(" }")
			}
		}
	}
	f := l.t.TempDir() + "/fill.nft"
	if err := os.WriteFile(f, []byte(b.String()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := l.nft("-f", f); err != nil {
		t.Fatalf("fill the affinity sets: %v\n%s", err, out)
	}
	if _, err := l.nft("add", "element", "inet", "podnet", affinitySetName("full/tcp/80", l.eps[0].ip4), "{ 10.99.0.1 }"); err == nil {
		t.Fatal("the affinity set took one more element than its size")
	}
	got := tally(t, l.cl.ns, "tcp", "10.96.0.22:80", 40)
	if len(got) != 2 {
		t.Fatalf("40 connections of a new client with both affinity sets full went to %v, want both endpoints (no affinity left to keep)", got)
	}
}

// TestKernelServiceLocalOnly: with externalTrafficPolicy Local, NodePort
// and external-IP traffic from outside reaches only local endpoints, with
// the client's address; without a local endpoint it is dropped; ClusterIP
// traffic and traffic from the host's containers still go everywhere.
func TestKernelServiceLocalOnly(t *testing.T) {
	t.Parallel()
	l := newSvcLab(t)
	remote := ServiceEndpoint{Addr: netip.MustParseAddr("10.244.3.7")} // on no host of this lab
	local := Service{Name: "local", ClusterIP: netip.MustParseAddr("10.96.0.30"), LocalOnly: true,
		ExternalIPs: []netip.Addr{netip.MustParseAddr("192.0.2.51")},
		Ports:       []ServicePort{{Proto: TCP, Port: 80, TargetPort: 8080, NodePort: 30443}},
		Endpoints:   []ServiceEndpoint{{Addr: l.eps[0].ip4, Local: true}, remote}}
	none := Service{Name: "nonelocal", ClusterIP: netip.MustParseAddr("10.96.0.31"), LocalOnly: true,
		Ports: []ServicePort{{Proto: TCP, Port: 80, TargetPort: 8080, NodePort: 30444}}, Endpoints: []ServiceEndpoint{remote}}
	l.set(local, none)
	for _, addr := range []string{at(hostIP4, 30443), "192.0.2.51:80"} {
		if got := tally(t, l.client, "tcp", addr, 20); len(got) != 1 || got["c1 "+clientIP4] != 20 {
			t.Fatalf("%s from outside: %v, want c1 seeing %s every time", addr, got, clientIP4)
		}
	}
	_, err := hello(l.client, "tcp", at(hostIP4, 30444), 500*time.Millisecond)
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("node port without local endpoint from outside: %v, want a timeout (dropped)", err)
	}
	// From a container of this host the NodePort is cluster-wide: the
	// remote endpoint is chosen too (and does not answer here).
	var failed int
	for i := 0; i < 40 && failed == 0; i++ {
		if _, err := hello(l.cl.ns, "tcp", at("10.200.2.1", 30443), 300*time.Millisecond); err != nil {
			failed++
		}
	}
	if failed == 0 {
		t.Fatal("40 connections from a local container to the node port all reached the local endpoint: not cluster-wide")
	}
}

// TestKernelServiceUDPMovesToNewEndpoint: a UDP client that keeps its
// socket reaches the new endpoint once the old one left (its conntrack
// entry was deleted), and one that talked to the VIP before the service
// existed reaches it once it does.
func TestKernelServiceUDPMovesToNewEndpoint(t *testing.T) {
	t.Parallel()
	l := newSvcLab(t)
	web := l.web(1)
	l.set()

	uc := dialUDP(t, l.cl.ns, at(vip4, 53))
	// Before the service exists the packets go nowhere, but conntrack
	// remembers the flow.
	if got, err := uc.ask(200 * time.Millisecond); err == nil {
		t.Fatalf("udp before the service exists: answered %q", got)
	}
	l.do(func() error { return upsertService(l.eng, web) })
	uc.askUntil("c1 " + l.cl.ip4.String())

	web.Endpoints = []ServiceEndpoint{{Addr: l.eps[1].ip4, Local: true}}
	l.do(func() error { return upsertService(l.eng, web) })
	uc.askUntil("c2 " + l.cl.ip4.String())

	// Only the flows of the endpoint that left move: 12 clients spread
	// over c1..c3, then c3 leaves.
	web.Endpoints = l.endpoints(3, false)
	l.do(func() error { return upsertService(l.eng, web) })
	var clients []*udpClient
	before := map[*udpClient]string{}
	for i := 0; i < 12; i++ {
		c := dialUDP(t, l.cl.ns, at(vip4, 53))
		got, err := c.ask(time.Second)
		if err != nil {
			t.Fatal(err)
		}
		clients, before[c] = append(clients, c), strings.Fields(got)[0]
	}
	web.Endpoints = l.endpoints(2, false)
	l.do(func() error { return upsertService(l.eng, web) })
	for i, c := range clients {
		got, err := c.ask(time.Second)
		if err != nil {
			t.Fatalf("client %d after c3 left: %v", i, err)
		}
		now := strings.Fields(got)[0]
		if before[c] != "c3" && now != before[c] || now == "c3" {
			t.Fatalf("client %d went from %s to %s when c3 left: only c3's clients may move", i, before[c], now)
		}
	}
}

// TestKernelServiceSurvivesSyncAndRestart: an established TCP connection
// through a VIP survives a full Sync, a full resync (Replace), other
// services' changes, a podnetd restart (a new engine whose first Sync
// leaves the service rules alone until its first Replace) and a table
// deleted behind the engine's back; the VIP answers new connections all
// along.
func TestKernelServiceSurvivesSyncAndRestart(t *testing.T) {
	t.Parallel()
	l := newSvcLab(t)
	web := l.web(3)
	l.set(web)
	var conn net.Conn
	if err := l.cl.ns.Do(func() (err error) { conn, err = net.DialTimeout("tcp", at(vip4, 80), time.Second); return err }); err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	r := bufio.NewReader(conn)
	if _, err := r.ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	echo := func(msg string) {
		t.Helper()
		_ = conn.SetDeadline(time.Now().Add(2 * time.Second))
		if _, err := fmt.Fprintln(conn, msg); err != nil {
			t.Fatalf("%s: write on the established connection: %v", msg, err)
		}
		if got, err := r.ReadString('\n'); err != nil || strings.TrimSpace(got) != msg {
			t.Fatalf("%s: read %q, %v on the established connection", msg, got, err)
		}
		if _, err := hello(l.cl.ns, "tcp", at(vip4, 80), time.Second); err != nil {
			t.Fatalf("%s: new connection to the VIP: %v", msg, err)
		}
	}
	echo("before")
	l.do(func() error { return l.eng.Sync(l.ctx) })
	echo("after Sync")
	l.set(web, Service{Name: "other", ClusterIP: netip.MustParseAddr("10.96.0.40"), Ports: []ServicePort{{Proto: TCP, Port: 80}},
		Endpoints: l.endpoints(1, false)})
	echo("after a Replace")
	l.do(func() error { return deleteService(l.eng, "other") })
	echo("after removing a service")

	l.eng = New(Options{Logger: testLogger(t)}) // podnetd restarts
	l.addNetwork(l.net1)
	l.addNetwork(l.net2)
	l.do(func() error { return l.eng.Sync(l.ctx) })
	echo("after restart, before the Replace")
	l.set(web)
	echo("after restart and the Replace")

	if _, err := l.nft("delete", "table", "inet", "podnet"); err != nil {
		t.Fatal(err)
	}
	l.do(func() error { return l.eng.Sync(l.ctx) })
	echo("after the table was deleted and synced")
}

// TestKernel1000ServicesLeaveNothing: 1000 services of every shape added
// (900 at once, 100 one by one) and removed (100 one by one, the rest at
// once) leave the table as it was: no chain, set or element of any
// service.
func TestKernel1000ServicesLeaveNothing(t *testing.T) {
	t.Parallel()
	l := newSvcLab(t)
	l.set()
	before, err := l.nft("list", "table", "inet", "podnet")
	if err != nil {
		t.Fatal(err)
	}
	var svcs []Service
	for i := 0; i < 1000; i++ {
		s := Service{Name: fmt.Sprintf("s%d", i), ClusterIP: netip.AddrFrom4([4]byte{10, 96, byte(i >> 8), byte(i)}),
			Ports:     []ServicePort{{Proto: TCP, Port: 80, TargetPort: 8080}, {Proto: UDP, Port: 53}},
			Endpoints: l.endpoints(1+i%3, false), Affinity: time.Duration(i%5/4) * time.Hour, LocalOnly: i%7 == 0}
		if i%2 == 0 {
			s.Ports[0].NodePort = uint16(30000 + i)
			s.ExternalIPs = []netip.Addr{netip.AddrFrom4([4]byte{192, 0, byte(i >> 8), byte(i)})}
		}
		svcs = append(svcs, s)
	}
	start := time.Now()
	l.set(svcs[:900]...)
	t.Logf("Replace of 900: %v", time.Since(start))
	start = time.Now()
	for _, s := range svcs[900:] {
		l.do(func() error { return upsertService(l.eng, s) })
	}
	t.Logf("100 one-service Apply: %v", time.Since(start))
	mid, err := l.nft("list", "table", "inet", "podnet")
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(mid, "comment \"s"); n < 3000 {
		t.Fatalf("1000 services programmed only %d dispatch elements", n)
	}
	mustHello(t, l.cl.ns, "tcp", "10.96.3.231:80", "c1 "+l.cl.ip4.String()) // s999
	start = time.Now()
	for _, s := range svcs[:100] {
		l.do(func() error { return deleteService(l.eng, s.Name) })
	}
	t.Logf("100 one-service removals: %v", time.Since(start))
	start = time.Now()
	l.set()
	t.Logf("Replace with none: %v", time.Since(start))
	after, err := l.nft("list", "table", "inet", "podnet")
	if err != nil {
		t.Fatal(err)
	}
	if canonicalListing(after) != canonicalListing(before) {
		t.Fatalf("table after removing 1000 services:\n%s\nbefore adding them:\n%s", after, before)
	}
}
