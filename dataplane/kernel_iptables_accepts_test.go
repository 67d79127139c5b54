package dataplane

import (
	"strings"
	"testing"
)

// TestKernelDockerUserAccepts: with Docker's FORWARD policy DROP, podnet's
// forwarded traffic only flows through the accepts jumped to from
// DOCKER-USER; without them it is dropped.
func TestKernelDockerUserAccepts(t *testing.T) {
	t.Parallel()
	l := newLab(t)
	n := l.bridge(1)
	c1 := l.container(n, 2)
	serve(t, c1.ns, 80, "c1")
	serve(t, l.client, 7000, "client")
	dockerChains(t, l, "iptables")
	l.addNetwork(n)
	l.publish("ep1", n, c1, Binding{Proto: TCP, HostPort: 8080, ContainerPort: 80})

	mustHello(t, l.client, "tcp", hostIP4+":8080", "c1 "+clientIP4)
	mustHello(t, c1.ns, "tcp", clientIP4+":7000", "client "+hostIP4)
	waitJump(t, l, "iptables", "DOCKER-USER")
	if out := l.host.MustExec(t, "iptables", "-S", "FORWARD"); strings.Contains(out, "PODNET-FORWARD") {
		t.Fatalf("jump in FORWARD although DOCKER-USER exists:\n%s", out)
	}
	for _, bin := range []string{"iptables", "ip6tables"} {
		out := l.host.MustExec(t, bin, "-S", "PODNET-FORWARD")
		want := "-N PODNET-FORWARD\n-A PODNET-FORWARD -i pn-+ -j ACCEPT\n-A PODNET-FORWARD -o pn-+ -j ACCEPT\n" +
			"-A PODNET-FORWARD -m connmark --mark 0x200000/0x200000 -j ACCEPT\n"
		if out != want {
			t.Fatalf("%s -S PODNET-FORWARD:\n%s\nwant:\n%s", bin, out, want)
		}
	}

	// Control: without our jump Docker's DROP wins.
	l.host.MustExec(t, "iptables", "-D", "DOCKER-USER", "-j", "PODNET-FORWARD")
	mustNotConnect(t, l.client, hostIP4+":8080")
	l.do(func() error { return l.eng.Sync(l.ctx) })
	mustHello(t, l.client, "tcp", hostIP4+":8080", "c1 "+clientIP4)
}

// TestKernelForwardJumpMovesToDockerUser: without Docker the jump sits in
// FORWARD; once DOCKER-USER appears (dockerd started) the canary reports
// damage and Sync moves the jump there.
func TestKernelForwardJumpMovesToDockerUser(t *testing.T) {
	t.Parallel()
	l := newLab(t)
	n := l.bridge(1)
	c1 := l.container(n, 2)
	serve(t, c1.ns, 80, "c1")
	l.host.MustExec(t, "iptables", "-P", "FORWARD", "DROP")
	l.addNetwork(n)
	l.publish("ep1", n, c1, Binding{Proto: TCP, HostPort: 8080, ContainerPort: 80})
	waitJump(t, l, "iptables", "FORWARD")
	mustHello(t, l.client, "tcp", hostIP4+":8080", "c1 "+clientIP4)

	l.host.MustExec(t, "iptables", "-N", "DOCKER-USER")
	l.host.MustExec(t, "iptables", "-I", "FORWARD", "1", "-j", "DOCKER-USER")
	var intact bool
	l.do(func() (err error) { intact, err = l.eng.ipt.intact(); return err })
	if intact {
		t.Fatal("canary reports intact although the jump belongs in DOCKER-USER now")
	}
	l.do(func() error { return l.eng.Sync(l.ctx) })
	waitJump(t, l, "iptables", "DOCKER-USER")
	if out := l.host.MustExec(t, "iptables", "-S", "FORWARD"); strings.Contains(out, "-j PODNET-FORWARD") {
		t.Fatalf("stale jump left in FORWARD:\n%s", out)
	}
	mustHello(t, l.client, "tcp", hostIP4+":8080", "c1 "+clientIP4)
}

// TestKernelLegacyDockerUser: in auto mode the accepts go to the backend
// that holds DOCKER-USER, here iptables-legacy.
func TestKernelLegacyDockerUser(t *testing.T) {
	t.Parallel()
	l := newLab(t)
	n := l.bridge(1)
	c1 := l.container(n, 2)
	serve(t, c1.ns, 80, "c1")
	dockerChains(t, l, "iptables-legacy")
	l.addNetwork(n)
	l.publish("ep1", n, c1, Binding{Proto: TCP, HostPort: 8080, ContainerPort: 80})
	waitJump(t, l, "iptables-legacy", "DOCKER-USER")
	if _, err := l.host.Exec("iptables-nft", "-S", "PODNET-FORWARD"); err == nil {
		t.Fatal("PODNET-FORWARD also created with iptables-nft")
	}
	mustHello(t, l.client, "tcp", hostIP4+":8080", "c1 "+clientIP4)

	l.do(func() error { return l.eng.Cleanup(l.ctx) })
	assertNoChain(t, l, "iptables-legacy")
	if out := l.host.MustExec(t, "iptables-legacy", "-S", "DOCKER-USER"); strings.Contains(out, "PODNET") {
		t.Fatalf("jump left in DOCKER-USER:\n%s", out)
	}
}

// TestKernelCleanup: Cleanup leaves no table, chain or jump in any
// backend, and tolerates running twice.
func TestKernelCleanup(t *testing.T) {
	t.Parallel()
	l := newLab(t)
	n := l.bridge(1)
	c1 := l.container(n, 2)
	serve(t, c1.ns, 80, "c1")
	dockerChains(t, l, "iptables")
	l.addNetwork(n)
	l.publish("ep1", n, c1, Binding{Proto: TCP, HostPort: 8080, ContainerPort: 80})
	mustHello(t, l.client, "tcp", hostIP4+":8080", "c1 "+clientIP4)

	l.do(func() error { return l.eng.Cleanup(l.ctx) })
	l.do(func() error { return l.eng.Cleanup(l.ctx) })
	if out, err := l.nft("list", "table", "inet", "podnet"); err == nil {
		t.Fatalf("table inet podnet still there:\n%s", out)
	}
	for _, bin := range []string{"iptables-nft", "ip6tables-nft", "iptables-legacy", "ip6tables-legacy"} {
		assertNoChain(t, l, bin)
	}
	if out := l.host.MustExec(t, "iptables", "-S", "DOCKER-USER"); strings.Contains(out, "PODNET") {
		t.Fatalf("jump left in DOCKER-USER:\n%s", out)
	}
	mustNotConnect(t, l.client, hostIP4+":8080")
}

func assertNoChain(t *testing.T, l *lab, bin string) {
	t.Helper()
	if out, err := l.host.Exec(bin, "-S", "PODNET-FORWARD"); err == nil {
		t.Fatalf("%s still has PODNET-FORWARD:\n%s", bin, out)
	}
	if out, _ := l.host.Exec(bin, "-S"); strings.Contains(out, "PODNET") {
		t.Fatalf("%s still mentions PODNET:\n%s", bin, out)
	}
}
