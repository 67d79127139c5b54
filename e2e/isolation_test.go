//go:build e2e

package e2e

import (
	"strings"
	"sync"
	"testing"
)

// Isolation like Docker's, on h1 of the 3-host lab.

// connects says whether a TCP connection from container name on host (""
// for the outside client) to addr succeeds.
func connects(l *Lab, host, name, addr string) bool {
	if host == "" {
		_, err := l.Client("netcheck", "connect", addr)
		return err == nil
	}
	_, err := l.Docker(host, "exec", name, "netcheck", "connect", addr)
	return err == nil
}

// TestIsolationLikeDocker: a podnet bridge network and Docker's own
// bridges (docker0, a user-defined bridge network) do not reach each
// other, as Docker keeps its bridge networks apart; published ports and
// service VIPs still answer everyone. An outside machine with a route to
// a podnet bridge network reaches only its published ports (Docker 28's
// rule against direct access); a vxlan pod network stays routable from
// the other podnet hosts. Containers on Docker's bridges cannot open
// connections to etcd.
func TestIsolationLikeDocker(t *testing.T) {
	l := svcLab(t)
	podnetNet(t, l, "h1", "isob", "--subnet", "10.93.0.0/24")
	l.MustDocker(t, "h1", "network", "create", "isodbr", "--subnet", "10.94.0.0/24")
	t.Cleanup(func() { _, _ = l.Docker("h1", "network", "rm", "isodbr") })
	srv := func(name string, args ...string) string {
		run(t, l, "h1", name, append(args, TestImage, "netcheck", "tcp-server", "9000")...)
		out := l.MustDocker(t, "h1", "inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}", name)
		return strings.Fields(out)[0] + ":9000"
	}
	pn := srv("iso-pn", "--network", "isob", "-p", "19000:9000", "-l", "app=isosvc")
	d0 := srv("iso-d0")
	dbr := srv("iso-dbr", "--network", "isodbr")
	vx := srv("iso-vx", "--network", svcNet)
	svc := service(t, l, "h1", "isosvc", "--selector", "app=isosvc", "--port", "80:9000")
	endpointsAre(t, l, "isosvc", "h1/iso-pn/"+strings.TrimSuffix(pn, ":9000")+"/true")
	published := l.HostIP("h1") + ":19000"
	vip := svc.ClusterIP + ":80"

	type check struct {
		host, from, to string
		want           bool
		what           string
	}
	checks := []check{
		{"h1", "iso-pn", d0, false, "podnet bridge -> docker0"},
		{"h1", "iso-pn", dbr, false, "podnet bridge -> Docker bridge network"},
		{"h1", "iso-d0", pn, false, "docker0 -> podnet bridge"},
		{"h1", "iso-dbr", pn, false, "Docker bridge network -> podnet bridge"},
		{"h1", "iso-vx", d0, false, "vxlan pod network -> docker0"},
		{"h1", "iso-d0", vx, false, "docker0 -> vxlan pod network"},
		{"h1", "iso-d0", published, true, "docker0 -> a published port"},
		{"h1", "iso-dbr", vip, true, "Docker bridge network -> a service VIP"},
		// From outside, with a route to the network through h1.
		{"", "", pn, false, "the outside client -> an unpublished port of a podnet bridge network"},
		{"", "", published, true, "the outside client -> a published port"},
	}
	// etcd from Docker's bridges (the lab's members run beside the hosts:
	// h1 forwards the connection).
	for _, name := range []string{"iso-d0", "iso-dbr"} {
		for _, ep := range l.EtcdEndpoints() {
			client := strings.TrimPrefix(ep, "https://")
			peer := strings.TrimSuffix(client, ":2379") + ":2380"
			for _, addr := range []string{client, peer} {
				checks = append(checks, check{"h1", name, addr, false, name + " (on a Docker bridge) -> etcd"})
			}
		}
	}
	l.MustClient(t, "ip", "route", "replace", "10.93.0.0/24", "via", l.HostIP("h1"))
	t.Cleanup(func() { _, _ = l.Client("ip", "route", "del", "10.93.0.0/24") })
	// All at once: a refused connection costs its 2 s timeout.
	got := make([]bool, len(checks))
	var wg sync.WaitGroup
	for i, c := range checks {
		wg.Go(func() { got[i] = connects(l, c.host, c.from, c.to) })
	}
	wg.Wait()
	for i, c := range checks {
		if got[i] != c.want {
			t.Errorf("%s (%s to %s): connected %v, want %v", c.what, c.from, c.to, got[i], c.want)
		}
	}
	run(t, l, "h2", "iso-far", sleeper("--network", svcNet)...)
	WaitFor(t, shortWait, func() (bool, string) {
		return connects(l, "h2", "iso-far", vx), "a vxlan pod on h2 cannot reach one on h1 at " + vx
	})
	if t.Failed() {
		t.Logf("h1's table:\n%s", l.MustExec(t, "h1", "nft", "list", "table", "inet", "podnet"))
	}
}
