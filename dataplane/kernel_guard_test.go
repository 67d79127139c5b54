package dataplane

import (
	"fmt"
	"net"
	"net/netip"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/podnet/podnet/internal/testutil"
)

// guardLab is a lab whose engine guards a cluster DNS on the host's lo, a
// VXLAN port, and an "etcd member" (the client namespace, port 2379).
func guardLab(t *testing.T) (*lab, Network, container) {
	l := newLab(t)
	web := l.bridge(1)
	// A multi-host network (its VXLAN device need not exist here): pods
	// of other hosts may reach it over the underlay (direct routing).
	web.Uplink = "pnx" + l.tag
	c := l.container(web, 2)
	l.addNetwork(web)
	l.ipBatch(l.host, "addr add 10.96.0.10/32 dev lo")
	l.do(func() error {
		if err := l.eng.SetOverlay(l.ctx, 4789, "pnx"); err != nil {
			return err
		}
		if err := l.eng.SetPeers(l.ctx, []netip.Addr{netip.MustParseAddr("10.200.9.50")}); err != nil {
			return err
		}
		if err := l.eng.SetClusterDNS(l.ctx, netip.MustParseAddrPort("10.96.0.10:53")); err != nil {
			return err
		}
		return l.eng.SetEtcd(l.ctx, []netip.AddrPort{
			netip.MustParseAddrPort(clientIP4 + ":2379"), netip.MustParseAddrPort(clientIP4 + ":2380"),
			netip.MustParseAddrPort("[" + clientIP6 + "]:2379")})
	})
	return l, web, c
}

// TestKernelGuardMatchesNft: the guard's rules print as their text and
// compile to nft's own bytecode.
func TestKernelGuardMatchesNft(t *testing.T) {
	t.Parallel()
	l, _, _ := guardLab(t)
	var rs *ruleset
	l.do(func() error {
		l.eng.mu.Lock()
		defer l.eng.mu.Unlock()
		rs = buildRuleset(rulesetInput{table: "podnet", bridgePrefix: "pn-", nets: l.eng.nets, eps: l.eng.eps, guard: l.eng.guard})
		return nil
	})
	for _, want := range []string{
		`udp dport 4789 ip saddr != @hosts4 drop comment "vxlan only from podnet hosts"`,
		`ip daddr 10.96.0.10 udp dport 53 ip saddr @subnets4 return`,
		`elements = { 10.200.9.2 . 2379, 10.200.9.2 . 2380 }`,
	} {
		if !strings.Contains(canonicalListing(rs.String()), want) {
			t.Fatalf("ruleset lacks %q:\n%s", want, rs)
		}
	}
	l.checkTable(rs)
}

// TestKernelGuardClusterDNS: the host and its containers reach the cluster
// DNS; an outside client that routes to it gets nothing.
func TestKernelGuardClusterDNS(t *testing.T) {
	t.Parallel()
	l, _, c := guardLab(t)
	l.ipBatch(l.client, "route add 10.96.0.10/32 via "+hostIP4)
	// serve's UDP socket is unbound, so its replies would leave from the
	// bridge address; the cluster DNS binds its address, as here.
	var ln net.Listener
	if err := l.host.Do(func() (err error) { ln, err = net.Listen("tcp", "10.96.0.10:53"); return err }); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_, _ = c.Write([]byte("dns " + hostOf(c.RemoteAddr()) + "\n"))
			c.Close()
		}
	}()
	udpHandle(t, l.host, "10.96.0.10:53", func(_ string, from net.Addr) string { return "dns " + hostOf(from) + "\n" })
	mustHello(t, c.ns, "udp", "10.96.0.10:53", "dns "+c.ip4.String())
	mustHello(t, c.ns, "tcp", "10.96.0.10:53", "dns "+c.ip4.String())
	// A container on Docker's default bridge (its own subnet, no podnet).
	d := l.netns()
	l.ipBatch(l.host, "link add docker0 type bridge", "addr add 172.17.0.1/16 dev docker0", "link set docker0 up",
		"link add vd0 type veth peer name eth0 netns "+d.Name, "link set vd0 master docker0", "link set vd0 up")
	l.ipBatch(d, "addr add 172.17.0.2/16 dev eth0", "link set eth0 up", "route add default via 172.17.0.1")
	mustHello(t, d, "udp", "10.96.0.10:53", "dns 172.17.0.2")
	mustHello(t, l.host, "udp", "10.96.0.10:53", "dns 10.96.0.10")
	if got, err := hello(l.client, "udp", "10.96.0.10:53", 500*time.Millisecond); err == nil {
		t.Fatalf("the outside client got a DNS answer: %q", got)
	}
	mustNotConnect(t, l.client, "10.96.0.10:53")
	// Other ports of that address are not the guard's business.
	serve(t, l.host, 8053, "other")
	mustHello(t, l.client, "tcp", "10.96.0.10:8053", "other "+clientIP4)
}

// TestKernelGuardVXLANPeers: the VXLAN port answers only the registered
// peers; a new peer is accepted once SetPeers names it.
func TestKernelGuardVXLANPeers(t *testing.T) {
	t.Parallel()
	l, _, _ := guardLab(t)
	serve(t, l.host, 4789, "vtep")
	if got, err := hello(l.client, "udp", hostIP4+":4789", 500*time.Millisecond); err == nil {
		t.Fatalf("an unregistered address reached the VXLAN port: %q", got)
	}
	l.do(func() error {
		return l.eng.SetPeers(l.ctx, []netip.Addr{netip.MustParseAddr("10.200.9.50"), netip.MustParseAddr(clientIP4)})
	})
	mustHello(t, l.client, "udp", hostIP4+":4789", "vtep "+clientIP4)
	// A restarted engine starts from the peers in the kernel.
	fresh := New(Options{Logger: testLogger(t)})
	l.do(fresh.LoadPeers)
	if got := fresh.guard.peers; len(got) != 2 || got[0].String() != clientIP4 {
		t.Fatalf("peers loaded from the kernel: %v", got)
	}
	// A peer removed (and one added) is refused at once: the change goes
	// to the kernel as elements of hosts4, not as a rebuilt table.
	l.do(func() error {
		return l.eng.SetPeers(l.ctx, []netip.Addr{netip.MustParseAddr("10.200.9.51"), netip.MustParseAddr("10.200.9.50")})
	})
	if got, err := hello(l.client, "udp", hostIP4+":4789", 500*time.Millisecond); err == nil {
		t.Fatalf("a removed peer still reaches the VXLAN port: %q", got)
	}
	again := New(Options{Logger: testLogger(t)})
	l.do(again.LoadPeers)
	if got := fmt.Sprint(again.guard.peers); got != "[10.200.9.50 10.200.9.51]" {
		t.Fatalf("peers in the kernel after the change: %v, want [10.200.9.50 10.200.9.51]", got)
	}
}

// TestKernelGuardEtcd: containers cannot open connections to the etcd
// endpoints; the host can.
func TestKernelGuardEtcd(t *testing.T) {
	t.Parallel()
	l, _, c := guardLab(t)
	serve(t, l.client, 2379, "etcd")
	serve(t, l.client, 2381, "other")
	mustHello(t, l.host, "tcp", clientIP4+":2379", "etcd "+hostIP4)
	mustNotConnect(t, c.ns, clientIP4+":2379")
	mustNotConnect(t, c.ns, "["+clientIP6+"]:2379")
	mustHello(t, c.ns, "tcp", clientIP4+":2381", "other "+hostIP4) // masqueraded
	// An etcd member on the host itself (input, not forward).
	serve(t, l.host, 2380, "local")
	l.do(func() error {
		return l.eng.SetEtcd(l.ctx, []netip.AddrPort{netip.MustParseAddrPort("10.200.1.1:2380")})
	})
	mustNotConnect(t, c.ns, "10.200.1.1:2380")
	mustHello(t, l.client, "tcp", hostIP4+":2380", "local "+clientIP4)
}

// TestKernelGuardForgedPodSource: a datagram from the underlay carrying a
// source inside a podnet subnet reaches the container only if that
// source is routed back to the underlay (a block routed directly to a
// known host); a forged one is dropped.
func TestKernelGuardForgedPodSource(t *testing.T) {
	t.Parallel()
	l, _, c := guardLab(t)
	// 10.200.1.64/26 is "a remote host's block", routed directly to it.
	l.ipBatch(l.host, "route add 10.200.1.64/26 via "+clientIP4+" dev vcl")
	l.ipBatch(l.client, "addr add 10.200.1.70/32 dev eth0", "addr add 10.200.1.30/32 dev eth0")
	got := make(chan string, 16)
	udpHandle(t, c.ns, ":9999", func(msg string, _ net.Addr) string { got <- msg; return "" })
	send := func(from string) {
		t.Helper()
		err := l.client.Do(func() error {
			conn, err := net.DialUDP("udp", net.UDPAddrFromAddrPort(netip.MustParseAddrPort(from+":0")),
				net.UDPAddrFromAddrPort(netip.AddrPortFrom(c.ip4, 9999)))
			if err != nil {
				return err
			}
			defer conn.Close()
			_, err = conn.Write([]byte("from " + from))
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	// Routed directly to the sender: delivered (polled: the first packet
	// waits for neighbor resolution).
	deadline := time.Now().Add(5 * time.Second)
	for delivered := false; !delivered; {
		send("10.200.1.70")
		select {
		case m := <-got:
			delivered = m == "from 10.200.1.70"
		case <-time.After(200 * time.Millisecond):
		}
		if !delivered && time.Now().After(deadline) {
			t.Fatal("a directly routed pod source was not delivered")
		}
	}
	// This host's own container range, from the underlay: forged.
	send("10.200.1.30")
	select {
	case m := <-got:
		t.Fatalf("a forged pod source was delivered: %q", m)
	case <-time.After(500 * time.Millisecond):
	}
}

// udpHandle serves UDP on addr in ns until the test ends: each datagram
// goes to handle, whose non-empty answer is sent back.
func udpHandle(t *testing.T, ns *testutil.NetNS, addr string, handle func(msg string, from net.Addr) string) {
	t.Helper()
	var pc net.PacketConn
	if err := ns.Do(func() (err error) { pc, err = net.ListenPacket("udp", addr); return err }); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			if answer := handle(string(buf[:n]), from); answer != "" {
				_, _ = pc.WriteTo([]byte(answer), from)
			}
		}
	}()
}

// TestKernelGuardReplacesOldChains: a table an older podnetd left, with
// the guard's raw chains guard_prerouting and localnet, is synced to
// guard_pre alone (one prerouting guard, after conntrack).
func TestKernelGuardReplacesOldChains(t *testing.T) {
	l := newLab(t)
	l.addNetwork(l.bridge(1))
	old := "add chain inet podnet guard_prerouting { type filter hook prerouting priority raw; policy accept; }\n" +
		"add chain inet podnet localnet { type filter hook prerouting priority raw; policy accept; }\n" +
		`add rule inet podnet localnet iifname "pn-*" ip daddr 127.0.0.0/8 drop` + "\n"
	l.do(func() error {
		cmd := exec.Command("nft", "-f", "-")
		cmd.Stdin = strings.NewReader(old)
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("%v: %s", err, out)
		}
		return nil
	})
	l.do(func() error { return l.eng.Sync(l.ctx) })
	listed := l.nftList()
	for _, gone := range []string{"chain guard_prerouting", "chain localnet"} {
		if strings.Contains(listed, gone) {
			t.Errorf("%s left after a sync:\n%s", gone, listed)
		}
	}
	if !strings.Contains(listed, "chain guard_pre {") {
		t.Errorf("no guard_pre:\n%s", listed)
	}
}

// TestKernelControlTrafficNeverNATed: services a bad record could hold —
// an external IP on an etcd member's client port, the cluster DNS address
// as a VIP, a host's VXLAN port, a NodePort on etcd's port — capture none
// of podnet's control traffic: the host still reaches the real etcd and
// its own DNS; the services' other ports work.
func TestKernelControlTrafficNeverNATed(t *testing.T) {
	t.Parallel()
	l, _, c := guardLab(t)
	serve(t, l.client, 2379, "etcd")
	serve(t, c.ns, 2379, "captured")
	serve(t, c.ns, 80, "web")
	serve(t, l.host, 53, "dns") // stands in for the cluster DNS on 10.96.0.10
	ep := []ServiceEndpoint{{Addr: c.ip4, Local: true}}
	l.do(func() error {
		return setServices(l.eng, []Service{
			{Name: "evil", ClusterIP: netip.MustParseAddr("10.96.0.30"), ExternalIPs: []netip.Addr{netip.MustParseAddr(clientIP4)},
				Ports: []ServicePort{{Proto: TCP, Port: 2379}, {Proto: TCP, Port: 80}}, Endpoints: ep},
			{Name: "dnsgrab", ClusterIP: netip.MustParseAddr("10.96.0.10"), Ports: []ServicePort{{Proto: TCP, Port: 53, TargetPort: 2379}}, Endpoints: ep},
			{Name: "etcdport", ClusterIP: netip.MustParseAddr("10.96.0.31"), Ports: []ServicePort{{Proto: TCP, Port: 81, TargetPort: 2379, NodePort: 2380}}, Endpoints: ep},
		})
	})
	mustHello(t, l.host, "tcp", clientIP4+":2379", "etcd "+hostIP4)
	mustHello(t, l.host, "tcp", "10.96.0.10:53", "dns 10.96.0.10")
	mustHello(t, l.host, "tcp", clientIP4+":80", "web "+hostIP4) // the service's other port is its own
	// The member on this host (input): a NodePort on its peer port does
	// not take the host's own etcd traffic from outside.
	serve(t, l.host, 2380, "local etcd")
	l.do(func() error {
		return l.eng.SetEtcd(l.ctx, []netip.AddrPort{netip.MustParseAddrPort(clientIP4 + ":2379"), netip.MustParseAddrPort(hostIP4 + ":2380")})
	})
	mustHello(t, l.client, "tcp", hostIP4+":2380", "local etcd "+clientIP4)
}
