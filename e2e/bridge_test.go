//go:build e2e

package e2e

import (
	"fmt"
	"strings"
	"testing"
)

// TestBridgeNetwork walks the README: a network, two containers that reach
// each other by address and by name, and removal that leaves nothing in the
// kernel or in etcd.
func TestBridgeNetwork(t *testing.T) {
	l := single(t)
	id := podnetNet(t, l, "h1", "br1", "--subnet", "10.31.0.0/24", "-o", "mtu=1400")
	br := "pn-" + id[:12]

	out := l.MustDocker(t, "h1", "network", "inspect", "-f", "{{.Driver}} {{.IPAM.Driver}} {{range .IPAM.Config}}{{.Subnet}}{{end}}", "br1")
	if out != "podnet podnet 10.31.0.0/24" {
		t.Fatalf("network inspect: %q", out)
	}
	addr := l.MustExec(t, "h1", "ip", "-o", "addr", "show", "dev", br)
	mustContain(t, "gateway on the bridge", addr, "10.31.0.1/24")
	mustContain(t, "bridge MTU", l.MustExec(t, "h1", "ip", "link", "show", br), "mtu 1400")

	run(t, l, "h1", "c1", sleeper("--network", "br1")...)
	run(t, l, "h1", "c2", sleeper("--network", "br1")...)
	ip1, _ := l.ContainerIP("h1", "c1", "br1")
	ip2, _ := l.ContainerIP("h1", "c2", "br1")
	if ip1 == ip2 || !strings.HasPrefix(ip1, "10.31.0.") || !strings.HasPrefix(ip2, "10.31.0.") {
		t.Fatalf("addresses %s, %s", ip1, ip2)
	}

	ifaces := l.MustDocker(t, "h1", "exec", "c1", "ip", "-o", "link")
	if n := strings.Count(ifaces, "\n") + 1; n != 2 || !strings.Contains(ifaces, "eth0") || !strings.Contains(ifaces, "mtu 1400") {
		t.Fatalf("container must have exactly lo and eth0 (mtu 1400), no docker_gwbridge:\n%s", ifaces)
	}
	mustContain(t, "default route", l.MustDocker(t, "h1", "exec", "c1", "ip", "route"), "default via 10.31.0.1 dev eth0")
	if !ping(l, "h1", "c1", ip2) {
		t.Fatalf("c1 cannot ping c2 at %s", ip2)
	}
	if !ping(l, "h1", "c2", "c1") {
		t.Fatal("c2 cannot ping c1 by name (Docker's embedded DNS)")
	}
	if !ping(l, "h1", "c1", "10.31.0.1") {
		t.Fatal("c1 cannot ping its gateway")
	}

	ep := endpointOf(t, l, "h1", "c1", "br1")
	if ep.IPv4 != ip1+"/24" {
		t.Fatalf("podnetctl shows %s for c1, docker %s", ep.IPv4, ip1)
	}
	if !contains(etcdKeys(t, l, "h1", "endpoints/h1/"), "endpoints/h1/"+ep.ID) {
		t.Fatal("endpoint not recorded in etcd")
	}
	var a struct {
		Host, Endpoint, Kind string
	}
	if !etcdGet(t, l, "h1", "ipam/10.31.0.0-24/addrs/"+hexIP(ip1), &a) || a.Endpoint != ep.ID || a.Host != "h1" {
		t.Fatalf("address %s owner: %+v", ip1, a)
	}
	if vs := links(t, l, "h1", "pnh"); len(vs) != 2 {
		t.Fatalf("want 2 host veths, have %v", vs)
	}

	l.MustDocker(t, "h1", "rm", "-f", "c1", "c2")
	if vs := links(t, l, "h1", "pnh"); len(vs) != 0 {
		t.Fatalf("veths left after the containers went: %v", vs)
	}
	if ks := etcdKeys(t, l, "h1", "endpoints/"); len(ks) != 0 {
		t.Fatalf("endpoint keys left: %v", ks)
	}
	addrs := etcdKeys(t, l, "h1", "ipam/10.31.0.0-24/addrs/")
	if len(addrs) != 1 { // the gateway
		t.Fatalf("address keys after removing the containers: %v", addrs)
	}
	l.MustDocker(t, "h1", "network", "rm", "br1")
	if bs := links(t, l, "h1", br); len(bs) != 0 {
		t.Fatalf("bridge left after network rm: %v", bs)
	}
	for _, p := range []string{"pools/", "ipam/", "networks/", "lnets/", "endpoints/"} {
		if ks := etcdKeys(t, l, "h1", p); len(ks) != 0 {
			t.Fatalf("etcd keys left under %s after network rm: %v", p, ks)
		}
	}
	if out := l.MustExec(t, "h1", "nft", "list", "table", "inet", "podnet"); strings.Contains(out, id[:12]) || strings.Contains(out, "10.31.0.0") {
		t.Fatalf("rules of the removed network remain:\n%s", out)
	}
}

// TestNoneMode: a mode=none network gives the container only loopback.
func TestNoneMode(t *testing.T) {
	l := single(t)
	podnetNet(t, l, "h1", "none1", "--subnet", "10.35.0.0/24", "-o", "mode=none")
	run(t, l, "h1", "n1", sleeper("--network", "none1")...)
	out := l.MustDocker(t, "h1", "exec", "n1", "ip", "-o", "link")
	if strings.Count(out, "\n") != 0 || !strings.Contains(out, "lo:") {
		t.Fatalf("mode=none container must have only lo:\n%s", out)
	}
	if r := l.MustDocker(t, "h1", "exec", "n1", "ip", "route"); r != "" {
		t.Fatalf("mode=none container has routes:\n%s", r)
	}
}

// TestIsolationInternalMasquerade: two podnet networks cannot reach each
// other; traffic leaving a network is masqueraded (unless turned off);
// an --internal network reaches nothing outside itself.
func TestIsolationInternalMasquerade(t *testing.T) {
	l := single(t)
	podnetNet(t, l, "h1", "iso-a", "--subnet", "10.36.0.0/24")
	podnetNet(t, l, "h1", "iso-b", "--subnet", "10.37.0.0/24")
	podnetNet(t, l, "h1", "iso-int", "--subnet", "10.38.0.0/24", "--internal")
	podnetNet(t, l, "h1", "iso-nomasq", "--subnet", "10.39.0.0/24", "-o", "podnet.masquerade=false")
	run(t, l, "h1", "ia", sleeper("--network", "iso-a")...)
	run(t, l, "h1", "ib", sleeper("--network", "iso-b")...)
	run(t, l, "h1", "ii", sleeper("--network", "iso-int")...)
	run(t, l, "h1", "ii2", sleeper("--network", "iso-int")...)
	run(t, l, "h1", "in", sleeper("--network", "iso-nomasq")...)
	ipb, _ := l.ContainerIP("h1", "ib", "iso-b")
	ipi2, _ := l.ContainerIP("h1", "ii2", "iso-int")
	client := l.ClientIP()

	if ping(l, "h1", "ia", ipb) {
		t.Fatal("a container reached another podnet network")
	}
	if !ping(l, "h1", "ia", client) {
		t.Fatal("a container cannot reach the outside client")
	}
	if ping(l, "h1", "ii", client) {
		t.Fatal("an --internal network reached the outside")
	}
	if !ping(l, "h1", "ii", ipi2) {
		t.Fatal("containers of an --internal network cannot reach each other")
	}
	if ping(l, "h1", "ia", ipi2) {
		t.Fatal("an --internal network was reached from another network")
	}

	// Who does the outside client see? (a fresh port each time: TIME_WAIT
	// entries stay in the client's socket table)
	if p := clientSees(t, l, "h1", "ia", 7001); p != l.HostIP("h1") {
		t.Fatalf("outbound traffic not masqueraded: client saw %s, want the host's %s", p, l.HostIP("h1"))
	}
	ipn, _ := l.ContainerIP("h1", "in", "iso-nomasq")
	if p := clientSees(t, l, "h1", "in", 7002); p != ipn {
		t.Fatalf("podnet.masquerade=false: client saw %s, want the container's own %s", p, ipn)
	}
}

func hexIP(ip string) string {
	var b [4]int
	fmt.Sscanf(ip, "%d.%d.%d.%d", &b[0], &b[1], &b[2], &b[3])
	return fmt.Sprintf("%02x%02x%02x%02x", b[0], b[1], b[2], b[3])
}
