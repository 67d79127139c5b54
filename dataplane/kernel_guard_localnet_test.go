package dataplane

import (
	"fmt"
	"net"
	"testing"
)

// TestKernelContainersCannotReachHostLoopback: with route_localnet on a
// podnet bridge (what the driver sets), a container that routes
// 127.0.0.1 via its gateway reaches the host's loopback-only services
// until podnet's table is in place; then it does not, while the host's own
// 127.0.0.1 connections to published ports still work.
func TestKernelContainersCannotReachHostLoopback(t *testing.T) {
	t.Parallel()
	l := newLab(t)
	n := l.bridge(1)
	c := l.container(n, 2)
	serve(t, c.ns, 80, "c")
	l.ipBatch(l.host, "link set lo up")
	var ln net.Listener
	l.do(func() (err error) { ln, err = net.Listen("tcp", "127.0.0.1:9477"); return err })
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			fmt.Fprintf(conn, "loopback-only %s\n", hostOf(conn.RemoteAddr()))
			conn.Close()
		}
	}()
	// The container's side of the trick: no loopback address of its own
	// (a packet from 127.0.0.1 would be its own, a martian), 127.0.0.1
	// routed to the gateway, and loopback sources accepted on eth0.
	l.ipBatch(c.ns, "addr del 127.0.0.1/8 dev lo", "route add 127.0.0.1/32 via 10.200.1.1 dev eth0")
	l.sysctl(c.ns, "net/ipv4/conf/all/route_localnet", "1")
	mustHello(t, c.ns, "tcp", "127.0.0.1:9477", "loopback-only "+c.ip4.String())

	l.addNetwork(n)
	l.publish("ep1", n, c, Binding{Proto: TCP, HostPort: 8080, ContainerPort: 80})
	mustNotConnect(t, c.ns, "127.0.0.1:9477")
	mustHello(t, l.host, "tcp", "127.0.0.1:8080", "c 10.200.1.1")
}
