package dataplane

import (
	"testing"
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
