//go:build e2e

package e2e

import (
	"net/netip"
	"strings"
	"testing"
)

// TestIPAMThroughDocker drives every IPAM input docker network create and
// docker run offer.
func TestIPAMThroughDocker(t *testing.T) {
	l := single(t)
	// Docker's CLI builds the IPAM config from a map, so the order of
	// several subnets (and which one dynamic addresses come from) varies:
	// check --ip-range on a network of its own.
	podnetNet(t, l, "h1", "ip0", "--subnet", "10.40.0.0/24", "--ip-range", "10.40.0.128/25")
	run(t, l, "h1", "d0", sleeper("--network", "ip0")...)
	ip0, _ := l.ContainerIP("h1", "d0", "ip0")
	if !netip.MustParsePrefix("10.40.0.128/25").Contains(netip.MustParseAddr(ip0)) {
		t.Fatalf("dynamic address %s is outside --ip-range 10.40.0.128/25", ip0)
	}
	podnetNet(t, l, "h1", "ip1",
		"--subnet", "10.41.0.0/24", "--ip-range", "10.41.0.128/25", "--gateway", "10.41.0.254",
		"--aux-address", "printer=10.41.0.10", "--subnet", "10.42.0.0/24")
	id := netID(t, l, "h1", "ip1")
	addr := l.MustExec(t, "h1", "ip", "-o", "addr", "show", "dev", "pn-"+id[:12])
	mustContain(t, "explicit gateway", addr, "10.41.0.254/24")
	mustContain(t, "second subnet's gateway", addr, "10.42.0.1/24")

	run(t, l, "h1", "d1", sleeper("--network", "ip1")...)
	ip, _ := l.ContainerIP("h1", "d1", "ip1")
	a := netip.MustParseAddr(ip)
	if !netip.MustParsePrefix("10.41.0.128/25").Contains(a) && !netip.MustParsePrefix("10.42.0.0/24").Contains(a) || ip == "10.41.0.254" || ip == "10.42.0.1" {
		t.Fatalf("dynamic address %s is outside both subnets' ranges or is a gateway", ip)
	}
	run(t, l, "h1", "d2", sleeper("--network", "ip1", "--ip", "10.41.0.20")...) // outside the range, inside the subnet
	run(t, l, "h1", "d3", sleeper("--network", "ip1", "--ip", "10.42.0.7")...)  // second subnet
	if got, _ := l.ContainerIP("h1", "d3", "ip1"); got != "10.42.0.7" {
		t.Fatalf("--ip 10.42.0.7 gave %s", got)
	}
	if !ping(l, "h1", "d2", "10.42.0.7") {
		t.Fatal("containers on two subnets of one network cannot reach each other")
	}
	dockerFails(t, l, "h1", []string{"10.41.0.20", "already in use"}, sleeper("run", "--rm", "--network", "ip1", "--ip", "10.41.0.20")...)
	dockerFails(t, l, "h1", []string{"10.41.0.10", "already in use"}, sleeper("run", "--rm", "--network", "ip1", "--ip", "10.41.0.10")...)
	dockerFails(t, l, "h1", []string{"10.99.0.5"}, sleeper("run", "--rm", "--network", "ip1", "--ip", "10.99.0.5")...)
	// Refused runs leave no interface behind.
	if vs := links(t, l, "h1", "pnh"); len(vs) != 4 {
		t.Fatalf("want 4 veths (d0..d3), have %v", vs)
	}

	// Released on removal, reused later (not at once: round-robin).
	l.MustDocker(t, "h1", "rm", "-f", "d2")
	run(t, l, "h1", "d4", sleeper("--network", "ip1", "--ip", "10.41.0.20")...)
}

func TestIPAMDualStackAndAutoSubnets(t *testing.T) {
	l := single(t)
	podnetNet(t, l, "h1", "v6net", "--ipv6", "--subnet", "10.43.0.0/24", "--subnet", "fd00:43::/64")
	run(t, l, "h1", "e1", sleeper("--network", "v6net")...)
	run(t, l, "h1", "e2", sleeper("--network", "v6net", "--ip6", "fd00:43::99")...)
	v6 := l.MustDocker(t, "h1", "exec", "e1", "ip", "-6", "-o", "addr", "show", "dev", "eth0")
	mustContain(t, "IPv6 address", v6, "fd00:43::")
	if _, err := l.Docker("h1", "exec", "e1", "ping", "-6", "-c", "1", "-W", "3", "fd00:43::99"); err != nil {
		t.Fatalf("IPv6 ping between containers: %v", err)
	}
	mustContain(t, "IPv6 default route", l.MustDocker(t, "h1", "exec", "e1", "ip", "-6", "route"), "default via fd00:43::1")

	podnetNet(t, l, "h1", "auto1")
	podnetNet(t, l, "h1", "auto2")
	s1 := l.MustDocker(t, "h1", "network", "inspect", "-f", "{{range .IPAM.Config}}{{.Subnet}}{{end}}", "auto1")
	s2 := l.MustDocker(t, "h1", "network", "inspect", "-f", "{{range .IPAM.Config}}{{.Subnet}}{{end}}", "auto2")
	p1, err1 := netip.ParsePrefix(s1)
	p2, err2 := netip.ParsePrefix(s2)
	if err1 != nil || err2 != nil || p1.Overlaps(p2) || !netip.MustParsePrefix("10.208.0.0/12").Contains(p1.Addr()) {
		t.Fatalf("auto subnets %q, %q: must be disjoint /24s of 10.208.0.0/12", s1, s2)
	}
	run(t, l, "h1", "e3", sleeper("--network", "auto1")...)
	ip, _ := l.ContainerIP("h1", "e3", "auto1")
	if !p1.Contains(netip.MustParseAddr(ip)) {
		t.Fatalf("container got %s outside its auto subnet %s", ip, p1)
	}
}

func TestIPAMExhaustion(t *testing.T) {
	l := single(t)
	podnetNet(t, l, "h1", "tiny", "--subnet", "10.44.0.0/30") // .1 gateway, .2 the only other usable
	run(t, l, "h1", "f1", sleeper("--network", "tiny")...)
	dockerFails(t, l, "h1", []string{"no free address", "10.44.0.0/30"}, sleeper("run", "--rm", "--network", "tiny")...)
	if vs := links(t, l, "h1", "pnh"); len(vs) != 1 {
		t.Fatalf("a failed start left interfaces: %v", vs)
	}
	l.MustDocker(t, "h1", "rm", "-f", "f1")
	run(t, l, "h1", "f2", sleeper("--network", "tiny")...) // the address came back
}

// TestBadInput: each refused request names the problem and leaves nothing.
func TestBadInput(t *testing.T) {
	l := single(t)
	podnetNet(t, l, "h1", "exists", "--subnet", "10.45.0.0/16")
	before := etcdKeys(t, l, "h1", "")
	bridges := links(t, l, "h1", "pn-")
	cases := []struct {
		args []string
		want []string
	}{
		{[]string{"-o", "mode=bogus", "--subnet", "10.46.0.0/24"}, []string{`unknown mode "bogus"`}},
		{[]string{"-o", "podnet.bogus=1", "--subnet", "10.46.0.0/24"}, []string{`unknown option "podnet.bogus"`}},
		{[]string{"-o", "mtu=50", "--subnet", "10.46.0.0/24"}, []string{"mtu=50", "between 68 and 65535"}},
		{[]string{"-o", "com.docker.network.driver.mtu=99999", "--subnet", "10.46.0.0/24"}, []string{"out of range"}},
		{[]string{"--subnet", "10.46.0.0/33"}, []string{"10.46.0.0/33"}},
		{[]string{"--subnet", "10.46.0.0/24", "--gateway", "10.47.0.1"}, []string{"10.47.0.1"}},
		{[]string{"--subnet", "10.46.0.0/24", "--ip-range", "10.47.0.0/25"}, []string{"10.47.0.0/25"}},
		{[]string{"--subnet", "10.45.3.0/24"}, []string{"10.45.3.0/24", "overlaps", "10.45.0.0/16"}},
	}
	for _, c := range cases {
		args := append([]string{"network", "create", "-d", "podnet", "--ipam-driver", "podnet"}, c.args...)
		dockerFails(t, l, "h1", c.want, append(args, "bad")...)
		if out, _ := l.Docker("h1", "network", "ls", "-q", "--filter", "name=^bad$"); out != "" {
			t.Fatalf("%v: a network was created anyway", c.args)
		}
	}
	dockerFails(t, l, "h1", []string{"--ipam-driver podnet"}, "network", "create", "-d", "podnet", "--subnet", "10.48.0.0/24", "bad")
	after := etcdKeys(t, l, "h1", "")
	if strings.Join(after, " ") != strings.Join(before, " ") {
		t.Fatalf("refused requests changed etcd:\nbefore %v\nafter  %v", before, after)
	}
	if got := links(t, l, "h1", "pn-"); strings.Join(got, " ") != strings.Join(bridges, " ") {
		t.Fatalf("refused requests left bridges: %v (before %v)", got, bridges)
	}
}
