//go:build e2e

package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestCleanupCommand: `podnetd cleanup` (uninstall) removes every kernel
// object podnet made; podnetd restores them all when it starts again.
func TestCleanupCommand(t *testing.T) {
	l := single(t)
	podnetNet(t, l, "h1", "cl", "--subnet", "10.64.0.0/24")
	run(t, l, "h1", "cl1", webArgs("--network", "cl", "-p", "8580:80")...)
	run(t, l, "h1", "cl2", sleeper("--network", "cl")...)
	// podnetd starts before dockerd creates DOCKER-USER; its jump moves
	// there within seconds.
	WaitFor(t, shortWait, func() (bool, string) {
		out := l.MustExec(t, "h1", "iptables", "-S", "DOCKER-USER")
		return strings.Contains(out, "-j PODNET-FORWARD"), "podnet's accept is not in Docker's chain:\n" + out
	})

	if err := l.PodnetdStop("h1", false); err != nil {
		t.Fatal(err)
	}
	restarted := false
	t.Cleanup(func() {
		if !restarted {
			_ = l.PodnetdStart("h1")
		}
	})
	// A clean stop keeps the data plane: containers keep talking.
	if !ping(l, "h1", "cl2", "cl1") {
		t.Fatal("a clean podnetd stop broke container traffic")
	}
	l.MustExec(t, "h1", "podnetd", "cleanup")
	if out, err := l.Exec("h1", "nft", "list", "table", "inet", "podnet"); err == nil {
		t.Fatalf("nftables table left after cleanup:\n%s", out)
	}
	if out := l.MustExec(t, "h1", "iptables-save"); strings.Contains(out, "PODNET") {
		t.Fatalf("iptables rules left after cleanup:\n%s", out)
	}
	if vs := links(t, l, "h1", "pn"); len(vs) != 0 {
		t.Fatalf("links left after cleanup: %v", vs)
	}
	if out := l.MustExec(t, "h1", "ip", "-o", "addr", "show", "dev", "lo"); strings.Contains(out, "10.96.0.10") {
		t.Fatalf("cluster DNS address left on lo:\n%s", out)
	}

	if err := l.PodnetdStart("h1"); err != nil {
		t.Fatal(err)
	}
	restarted = true
	// The network and its rules come back; the containers' veths died with
	// the cleanup, so reconnecting them is Docker's job: restart them.
	WaitFor(t, shortWait, func() (bool, string) {
		out, err := l.Exec("h1", "nft", "list", "table", "inet", "podnet")
		return err == nil && strings.Contains(out, "10.64.0.0/24"), out
	})
	l.MustDocker(t, "h1", "restart", "-t", "1", "cl1", "cl2")
	WaitFor(t, shortWait, func() (bool, string) { return ping(l, "h1", "cl2", "cl1"), "cl2 cannot ping cl1" })
	WaitFor(t, shortWait, func() (bool, string) {
		out, err := curlClient(l, "http://"+l.HostIP("h1")+":8580/passwd")
		return err == nil, fmt.Sprint(err, out)
	})
}

// TestEtcdOutage: with every etcd member down, running containers keep
// their traffic (across hosts too), podnetctl says etcd is unhealthy, and a
// new container fails fast with an error that names etcd; all recovers
// when etcd returns.
func TestEtcdOutage(t *testing.T) {
	l := multi(t)
	vxNet(t, l, "eo", "10.65.0.0/16")
	run(t, l, "h1", "eo1", sleeper("--network", "eo")...)
	run(t, l, "h1", "eo2", sleeper("--network", "eo")...)
	run(t, l, "h2", "eo3", sleeper("--network", "eo")...)
	ip2, _ := l.ContainerIP("h1", "eo2", "eo")
	ip3, _ := l.ContainerIP("h2", "eo3", "eo")
	WaitFor(t, shortWait, func() (bool, string) { return ping(l, "h1", "eo1", ip3), "no cross-host traffic before the outage" })

	restore := l.EtcdOutage(t)
	if !ping(l, "h1", "eo1", ip2) || !ping(l, "h1", "eo1", ip3) {
		t.Fatal("container traffic stopped with etcd")
	}
	mustContain(t, "podnetctl status", l.MustExec(t, "h1", "podnetctl", "status"), "UNHEALTHY")
	start := time.Now()
	out, err := l.Docker("h1", "run", "--rm", "--network", "eo", TestImage, "true")
	took := time.Since(start)
	if err == nil {
		t.Fatalf("a container started without etcd: %s", out)
	}
	if !strings.Contains(err.Error(), "etcd unavailable") {
		t.Fatalf("the error must name etcd: %v", err)
	}
	if took > 30*time.Second {
		t.Fatalf("failing took %v: must be fast", took)
	}
	t.Logf("docker run failed after %v: %v", took.Round(100*time.Millisecond), err)
	if vs := links(t, l, "h1", "pnh"); len(vs) != 2 {
		t.Fatalf("the failed start left interfaces: %v", vs)
	}
	// Still flowing a while later, across hosts (nothing tore routes down).
	if !ping(l, "h1", "eo1", ip3) {
		t.Fatal("cross-host traffic stopped during the etcd outage")
	}

	if err := restore(); err != nil {
		t.Fatal(err)
	}
	WaitFor(t, time.Minute, func() (bool, string) {
		out, err := l.Docker("h1", "run", "--rm", "--network", "eo", TestImage, "ping", "-c1", "-W2", ip2)
		return err == nil, fmt.Sprint(err, out)
	})
}
