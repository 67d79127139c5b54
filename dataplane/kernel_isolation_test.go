package dataplane

import (
	"net/netip"
	"testing"

	"github.com/podnet/podnet/internal/testutil"
)

// TestKernelMasqueradeAndIsolation: a network's traffic to the outside is
// masqueraded (unless Masquerade is off), traffic between its own
// containers is not; two networks cannot reach each other; an internal
// network reaches nothing beyond its bridge and nothing reaches it.
func TestKernelMasqueradeAndIsolation(t *testing.T) {
	t.Parallel()
	l := newLab(t)
	web, plain, internal := l.bridge(1), l.bridge(2), l.bridge(3)
	plain.Masquerade = false
	internal.Internal, internal.Masquerade = true, false
	c1, c2 := l.container(web, 2), l.container(web, 3)
	c3 := l.container(plain, 2)
	c4, c5 := l.container(internal, 2), l.container(internal, 3)
	for name, c := range map[string]container{"c1": c1, "c2": c2, "c3": c3, "c4": c4, "c5": c5} {
		serve(t, c.ns, 80, name)
	}
	serve(t, l.client, 7000, "client")
	client := clientIP4 + ":7000"

	// Control: without podnet's table the host routes everything, so any
	// failure below is our rules' doing.
	mustHello(t, c1.ns, "tcp", "10.200.2.2:80", "c3 10.200.1.2")
	mustHello(t, c4.ns, "tcp", client, "client 10.200.3.2")

	for _, n := range []Network{web, plain, internal} {
		l.addNetwork(n)
	}
	t.Run("masquerade to the outside", func(t *testing.T) {
		mustHello(t, c1.ns, "tcp", client, "client "+hostIP4)
		mustHello(t, c1.ns, "udp", clientIP4+":7000", "client "+hostIP4)
		mustHello(t, c1.ns, "tcp", "["+clientIP6+"]:7000", "client "+hostIP6)
	})
	t.Run("no masquerade without the option", func(t *testing.T) {
		mustHello(t, c3.ns, "tcp", client, "client 10.200.2.2")
	})
	t.Run("no masquerade between containers", func(t *testing.T) {
		mustHello(t, c1.ns, "tcp", "10.200.1.3:80", "c2 10.200.1.2")
		mustHello(t, c2.ns, "tcp", "[fd00:1::2]:80", "c1 fd00:1::3")
		mustHello(t, c4.ns, "tcp", "10.200.3.3:80", "c5 10.200.3.2")
	})
	t.Run("networks isolated from each other", func(t *testing.T) {
		mustNotConnect(t, c1.ns, "10.200.2.2:80")
		mustNotConnect(t, c3.ns, "10.200.1.2:80")
		mustNotConnect(t, c1.ns, "[fd00:2::2]:80")
	})
	t.Run("internal network cut off", func(t *testing.T) {
		mustNotConnect(t, c4.ns, client)
		mustNotConnect(t, l.client, "10.200.3.2:80")
		mustNotConnect(t, c1.ns, "10.200.3.2:80")
		mustNotConnect(t, c4.ns, "10.200.1.2:80")
	})
	t.Run("published ports reachable from other networks", func(t *testing.T) {
		l.publish("ep1", web, c1, Binding{Proto: TCP, HostPort: 8080, ContainerPort: 80})
		mustHello(t, c3.ns, "tcp", hostIP4+":8080", "c1 10.200.2.2")
		mustNotConnect(t, c4.ns, hostIP4+":8080")
	})
}

// TestKernelDockerBridgesAndDirectAccess: podnet's bridges and Docker's
// (docker0, br-*) do not reach each other, but published ports answer
// containers of both; an outside client with a route to a single-host
// network reaches its containers only through published ports (a
// container's own connections still get their replies), while a
// multi-host network stays routed; Docker's containers cannot reach etcd.
func TestKernelDockerBridgesAndDirectAccess(t *testing.T) {
	t.Parallel()
	l := newLab(t)
	web, pods := l.bridge(1), l.bridge(2)
	pods.Uplink = "pnx" + l.tag // multi-host: routed between hosts
	d0, dbr := l.namedBridge("docker0", 3), l.namedBridge("br-"+l.tag, 4)
	c1, c2 := l.container(web, 2), l.container(pods, 2)
	cd0, cdbr := l.container(d0, 2), l.container(dbr, 2)
	for name, c := range map[string]container{"c1": c1, "c2": c2, "d0": cd0, "dbr": cdbr} {
		serve(t, c.ns, 80, name)
	}
	serve(t, l.client, 7000, "client")
	serve(t, l.client, 2379, "etcd")
	l.ipBatch(l.client, "route add 10.200.1.0/24 via "+hostIP4, "route add 10.200.2.0/24 via "+hostIP4)
	// Control: without podnet's table all of it connects.
	mustHello(t, cd0.ns, "tcp", "10.200.1.2:80", "c1 10.200.3.2")
	mustHello(t, l.client, "tcp", "10.200.1.2:80", "c1 "+clientIP4)

	l.addNetwork(web)
	l.addNetwork(pods)
	l.do(func() error {
		return l.eng.SetEtcd(l.ctx, []netip.AddrPort{netip.MustParseAddrPort(clientIP4 + ":2379")})
	})
	l.publish("ep1", web, c1, Binding{Proto: TCP, HostPort: 8080, ContainerPort: 80})
	for _, c := range []struct {
		from *testutil.NetNS
		to   string
	}{
		{c1.ns, "10.200.3.2:80"}, {c1.ns, "10.200.4.2:80"}, {c2.ns, "10.200.3.2:80"},
		{cd0.ns, "10.200.1.2:80"}, {cdbr.ns, "10.200.1.2:80"}, {cd0.ns, "10.200.2.2:80"},
		{cd0.ns, "[fd00:1::2]:80"},
		{l.client, "10.200.1.2:80"}, {l.client, "[fd00:1::2]:80"},
		{cd0.ns, clientIP4 + ":2379"}, {cdbr.ns, clientIP4 + ":2379"},
	} {
		mustNotConnect(t, c.from, c.to)
	}
	mustHello(t, cd0.ns, "tcp", hostIP4+":8080", "c1 10.200.3.2")
	mustHello(t, l.client, "tcp", hostIP4+":8080", "c1 "+clientIP4)
	mustHello(t, l.client, "tcp", "10.200.2.2:80", "c2 "+clientIP4)
	mustHello(t, c1.ns, "tcp", clientIP4+":7000", "client "+hostIP4)
	mustHello(t, cd0.ns, "tcp", clientIP4+":7000", "client 10.200.3.2")
}
