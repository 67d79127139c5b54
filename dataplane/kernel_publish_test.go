package dataplane

import (
	"bufio"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/podnet/podnet/internal/testutil"
)

// TestKernelPublishedPorts sends real traffic through published ports:
// from an outside client (source address preserved), from the host itself
// (its own address and 127.0.0.1) and from a container on the same bridge
// (hairpin).
func TestKernelPublishedPorts(t *testing.T) {
	t.Parallel()
	l := newLab(t)
	n := l.bridge(1)
	c1, c2 := l.container(n, 2), l.container(n, 3)
	serve(t, c1.ns, 80, "c1")
	serve(t, c2.ns, 80, "c2")
	l.addNetwork(n)

	// Something else on the host holds 9000: the range must skip it.
	var other net.Listener
	l.do(func() (err error) { other, err = net.Listen("tcp", ":9000"); return err })
	defer other.Close()

	ms := l.publish("ep1", n, c1,
		Binding{Proto: TCP, HostPort: 8080, ContainerPort: 80},
		Binding{Proto: UDP, HostPort: 8080, ContainerPort: 80},
		Binding{Proto: TCP, HostIP: netip.MustParseAddr(hostIP4b), HostPort: 8081, ContainerPort: 80},
		Binding{Proto: TCP, HostPort: 9000, HostPortEnd: 9002, ContainerPort: 80},
		Binding{Proto: TCP, ContainerPort: 80})
	// 8080/tcp and 8080/udp yield IPv4 and IPv6 mappings; the others one
	// or two: find the range's and the ephemeral one.
	var rangePort, ephemeral uint16
	for _, m := range ms {
		if m.ContainerIP.Is4() && m.HostPort >= 9000 && m.HostPort <= 9002 {
			rangePort = m.HostPort
		} else if m.ContainerIP.Is4() && m.HostPort >= 32768 {
			ephemeral = m.HostPort
		}
	}
	if rangePort != 9001 {
		t.Fatalf("range 9000-9002 with 9000 held by a listener: got %d, want 9001 (%+v)", rangePort, ms)
	}
	if ephemeral == 0 || ephemeral > 60999 {
		t.Fatalf("no ephemeral port from 32768-60999 in %+v", ms)
	}

	at := func(ip string, port uint16) string { return net.JoinHostPort(ip, fmt.Sprint(port)) }
	t.Run("outside client keeps its address", func(t *testing.T) {
		mustHello(t, l.client, "tcp", at(hostIP4, 8080), "c1 "+clientIP4)
		mustHello(t, l.client, "udp", at(hostIP4, 8080), "c1 "+clientIP4)
		mustHello(t, l.client, "tcp", at(hostIP6, 8080), "c1 "+clientIP6)
		mustHello(t, l.client, "udp", at(hostIP6, 8080), "c1 "+clientIP6)
		mustHello(t, l.client, "tcp", at(hostIP4, rangePort), "c1 "+clientIP4)
		mustHello(t, l.client, "tcp", at(hostIP4, ephemeral), "c1 "+clientIP4)
	})
	t.Run("host IP binding answers only on that IP", func(t *testing.T) {
		mustHello(t, l.client, "tcp", at(hostIP4b, 8081), "c1 "+clientIP4)
		mustNotConnect(t, l.client, at(hostIP4, 8081))
	})
	t.Run("from the host itself", func(t *testing.T) {
		mustHello(t, l.host, "tcp", at(hostIP4, 8080), "c1 "+hostIP4)
		// 127.0.0.1 cannot leave the host: masqueraded to the bridge address.
		mustHello(t, l.host, "tcp", at("127.0.0.1", 8080), "c1 10.200.1.1")
		mustHello(t, l.host, "udp", at("127.0.0.1", 8080), "c1 10.200.1.1")
	})
	t.Run("hairpin from a container on the same bridge", func(t *testing.T) {
		mustHello(t, c2.ns, "tcp", at(hostIP4, 8080), "c1 10.200.1.1")
		mustHello(t, c2.ns, "udp", at(hostIP4, 8080), "c1 10.200.1.1")
		mustHello(t, c2.ns, "tcp", at(hostIP6, 8080), "c1 fd00:1::1")
		// A container reaching its own published port.
		mustHello(t, c1.ns, "tcp", at(hostIP4, 8080), "c1 10.200.1.1")
	})
	t.Run("conflict with another endpoint", func(t *testing.T) {
		var err error
		l.do(func() error {
			_, err = l.eng.Publish(l.ctx, "ep2", n.ID, c2.ip4, c2.ip6, []Binding{{Proto: TCP, HostPort: 8080, ContainerPort: 80}})
			return nil
		})
		if err == nil || !strings.Contains(err.Error(), "host port 8080/tcp is already published by endpoint ep1") {
			t.Fatalf("got %v, want a conflict naming ep1", err)
		}
		// Nothing changed: 8080 still reaches c1.
		mustHello(t, l.client, "tcp", at(hostIP4, 8080), "c1 "+clientIP4)
	})
}

// TestKernelUnpublishAndUDPRetarget checks that an unpublished port stops
// answering at once, its elements leave the map, and that a UDP client
// that keeps its socket (same 5-tuple) reaches the new container once the
// port is published again: conntrack entries of the old mapping, and the
// one created while the port was unpublished, must both be gone.
func TestKernelUnpublishAndUDPRetarget(t *testing.T) {
	t.Parallel()
	l := newLab(t)
	n := l.bridge(1)
	c1, c2 := l.container(n, 2), l.container(n, 3)
	serve(t, c1.ns, 80, "c1")
	serve(t, c2.ns, 80, "c2")
	l.addNetwork(n)
	l.publish("ep1", n, c1, Binding{Proto: TCP, HostPort: 8080, ContainerPort: 80}, Binding{Proto: UDP, HostPort: 8080, ContainerPort: 80})

	uc := dialUDP(t, l.client, hostIP4+":8080")
	uc.askUntil("c1 " + clientIP4)
	mustHello(t, l.client, "tcp", hostIP4+":8080", "c1 "+clientIP4)

	l.do(func() error { return l.eng.Unpublish(l.ctx, "ep1") })
	if out, err := l.nft("list", "map", "inet", "podnet", "pm4_any"); err != nil || strings.Contains(out, "8080") {
		t.Fatalf("pm4_any after unpublish (err %v):\n%s", err, out)
	}
	mustNotConnect(t, l.client, hostIP4+":8080")
	if got, err := uc.ask(300 * time.Millisecond); err == nil {
		t.Fatalf("udp after unpublish: answered %q (stale conntrack entry?)", got)
	}

	l.publish("ep2", n, c2, Binding{Proto: UDP, HostPort: 8080, ContainerPort: 80})
	uc.askUntil("c2 " + clientIP4)
	if got := l.eng.Mappings("ep1"); got != nil {
		t.Fatalf("Mappings(ep1) after unpublish: %+v", got)
	}
}

// TestKernelTCPRetargetWithReusedSourcePort: a client that re-uses its
// source port after the old container reset the connection must reach the
// port's new container. The old conntrack entry (CLOSE after the reset in
// the reply direction) would otherwise keep its NAT binding and send the
// new SYN to the old container; Unpublish must delete TCP entries too.
func TestKernelTCPRetargetWithReusedSourcePort(t *testing.T) {
	t.Parallel()
	l := newLab(t)
	n := l.bridge(1)
	old, c2 := l.container(n, 2), l.container(n, 3)
	serveReset(t, old.ns, 80)
	serve(t, c2.ns, 80, "c2")
	l.addNetwork(n)
	l.publish("ep1", n, old, Binding{Proto: TCP, HostPort: 8080, ContainerPort: 80})

	const srcPort = 45678
	dial := func(timeout time.Duration) (string, error) {
		var answer string
		err := l.client.Do(func() error {
			d := net.Dialer{Timeout: timeout, LocalAddr: &net.TCPAddr{IP: net.ParseIP(clientIP4), Port: srcPort}}
			c, err := d.Dial("tcp4", hostIP4+":8080")
			if err != nil {
				return err
			}
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(timeout))
			answer, err = bufio.NewReader(c).ReadString('\n')
			return err
		})
		return strings.TrimSpace(answer), err
	}
	// The old container accepts and resets: the entry ends in CLOSE with
	// the last RST in the reply direction.
	if got, err := dial(time.Second); err == nil {
		t.Fatalf("the resetting server answered %q", got)
	}

	l.do(func() error { return l.eng.Unpublish(l.ctx, "ep1") })
	l.publish("ep2", n, c2, Binding{Proto: TCP, HostPort: 8080, ContainerPort: 80})
	got, err := dial(2 * time.Second)
	if err != nil || got != "c2 "+clientIP4 {
		t.Fatalf("same source port after the port moved to c2: got %q, %v; want %q (stale conntrack entry?)", got, err, "c2 "+clientIP4)
	}
}

// serveReset accepts TCP connections on port in ns and closes each at once
// with an RST (SO_LINGER 0).
func serveReset(t *testing.T, ns *testutil.NetNS, port int) {
	t.Helper()
	var ln net.Listener
	if err := ns.Do(func() (err error) { ln, err = net.Listen("tcp", fmt.Sprintf(":%d", port)); return err }); err != nil {
		t.Fatalf("listen in %s: %v", ns.Name, err)
	}
	done := make(chan struct{})
	t.Cleanup(func() { ln.Close(); <-done })
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_ = c.(*net.TCPConn).SetLinger(0)
			c.Close()
		}
	}()
}
