//go:build e2e

package e2e

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
)

// The macvlan tests put containers of two lab hosts on the lab's underlay,
// which stands in for the LAN: each host's eth0 is the parent, the lab
// bridge (LAB_NET.1) is the router and the outside client (LAB_NET.2) a
// physical machine on the LAN. Addresses come from one pool in etcd.

// lanNet creates the same macvlan network on hosts, on the underlay's own
// subnet (which --ipam-opt parent=eth0 allows), containers getting
// addresses from LAB_NET.128/25; the client's address is reserved with
// --aux-address.
func lanNet(t *testing.T, l *Lab, name string, hosts []string, extra ...string) map[string]string {
	t.Helper()
	ids := map[string]string{}
	for _, h := range hosts {
		args := append([]string{"-o", "mode=macvlan", "-o", "parent=eth0", "--ipam-opt", "parent=eth0", "--subnet", l.Net + ".0/24",
			"--gateway", l.Net + ".1", "--ip-range", l.Net + ".128/25", "--aux-address", "client=" + l.ClientIP()}, extra...)
		ids[h] = podnetNet(t, l, h, name, args...)
	}
	return ids
}

// podnetLinksOn lists podnet's macvlan/ipvlan interfaces, shims and
// isolated parents on host (pnv*, pnp*, pn-* of those types, pnd*).
func podnetLinksOn(t *testing.T, l *Lab, host string) []string {
	t.Helper()
	found := append(links(t, l, host, "pnd"), links(t, l, host, "pne")...)
	for _, kind := range []string{"macvlan", "ipvlan"} {
		found = append(found, links(t, l, host, "pn", "type", kind)...)
	}
	return found
}

func inRange(t *testing.T, ip, cidr string) {
	t.Helper()
	a, err := netip.ParseAddr(ip)
	if err != nil || !netip.MustParsePrefix(cidr).Contains(a) {
		t.Fatalf("address %q is not in %s", ip, cidr)
	}
}

// TestMacvlanAcrossHosts: containers on two hosts get distinct addresses
// from one pool, reach each other, the router and a physical machine on
// the LAN; --ip is refused when another host holds the address and the
// aux address is reserved on every host; without host access the host
// cannot reach its own containers and -p is refused; rm leaves nothing.
func TestMacvlanAcrossHosts(t *testing.T) {
	l := multi(t)
	lanNet(t, l, "lan", []string{"h1", "h2"})
	run(t, l, "h1", "m1", sleeper("--network", "lan")...)
	run(t, l, "h2", "m2", sleeper("--network", "lan")...)
	ip1, ip2 := ipOf(t, l, "h1", "m1", "lan"), ipOf(t, l, "h2", "m2", "lan")
	if ip1 == ip2 {
		t.Fatalf("both hosts handed out %s", ip1)
	}
	inRange(t, ip1, l.Net+".128/25")
	inRange(t, ip2, l.Net+".128/25")
	if mode := l.MustDocker(t, "h1", "exec", "m1", "cat", "/sys/class/net/eth0/mtu"); strings.TrimSpace(mode) != "1500" {
		t.Fatalf("container MTU %s, want the parent's 1500", mode)
	}
	for _, c := range []struct{ host, name, addr, what string }{
		{"h1", "m1", ip2, "container on the other host"},
		{"h2", "m2", ip1, "container on the other host"},
		{"h1", "m1", l.ClientIP(), "physical machine on the LAN"},
		{"h2", "m2", l.Net + ".1", "the LAN's router"},
	} {
		WaitFor(t, shortWait, func() (bool, string) {
			return ping(l, c.host, c.name, c.addr), fmt.Sprintf("%s/%s → %s (%s)", c.host, c.name, c.addr, c.what)
		})
	}
	WaitFor(t, shortWait, func() (bool, string) {
		_, err := l.Client("busybox", "ping", "-c1", "-W1", ip2)
		return err == nil, "physical machine → " + ip2
	})

	// --ip anywhere in the pool; refused when another host holds it.
	run(t, l, "h2", "m3", sleeper("--network", "lan", "--ip", l.Net+".20")...)
	out, err := l.Docker("h1", append([]string{"run", "--rm", "--network", "lan", "--ip", l.Net + ".20"}, sleeper()...)...)
	if err == nil || !strings.Contains(out+err.Error(), "address "+l.Net+".20 is already in use (container, host h2") {
		t.Fatalf("--ip held by h2 on h1: %v %s", err, out)
	}
	// The aux address is the client's on every host.
	out, err = l.Docker("h2", append([]string{"run", "--rm", "--network", "lan", "--ip", l.ClientIP()}, sleeper()...)...)
	if err == nil || !strings.Contains(out+err.Error(), "reserved with --aux-address by hosts h1,h2") {
		t.Fatalf("--ip of an aux address: %v %s", err, out)
	}

	// Without host access the host cannot reach its own container (a
	// parent never talks to its macvlans), and -p is refused.
	if _, err := l.Exec("h1", "busybox", "ping", "-c2", "-W1", ip1); err == nil {
		t.Fatalf("h1 reaches its macvlan container %s without host access", ip1)
	}
	out, err = l.Docker("h1", append([]string{"run", "-d", "--name", "mpub", "--network", "lan", "-p", "8080:80"}, sleeper()...)...)
	_, _ = l.Docker("h1", "rm", "-f", "mpub")
	if err == nil || !strings.Contains(out+err.Error(), "-o podnet.host-access=true") {
		t.Fatalf("-p without host access: %v %s", err, out)
	}

	for _, h := range []string{"h1", "h2"} {
		removeNetwork(l, h, "lan")
		if ls := podnetLinksOn(t, l, h); len(ls) != 0 {
			t.Fatalf("%s: links left after network rm: %v", h, ls)
		}
	}
	if out := l.MustExec(t, "h1", "podnetctl", "pool", "ls"); strings.Contains(out, l.Net+".0/24") {
		t.Fatalf("pool left after every host removed the network:\n%s", out)
	}
}

// TestMacvlanHostAccessPublishesPorts: with podnet.host-access the host
// reaches its containers through a shim with its own pool address, -p
// works from the LAN and from the host, and rm leaves no shim, route or rule.
func TestMacvlanHostAccessPublishesPorts(t *testing.T) {
	l := multi(t)
	ids := lanNet(t, l, "lanha", []string{"h1", "h2"}, "-o", "podnet.host-access=true")
	shim := map[string]string{}
	for _, h := range []string{"h1", "h2"} {
		name := "pn-" + ids[h][:12]
		out := l.MustExec(t, h, "ip", "-4", "-o", "addr", "show", "dev", name)
		f := strings.Fields(out)
		if len(f) < 4 {
			t.Fatalf("%s: shim %s has no address: %s", h, name, out)
		}
		shim[h] = strings.Split(f[3], "/")[0]
		inRange(t, shim[h], l.Net+".128/25")
	}
	if shim["h1"] == shim["h2"] {
		t.Fatalf("both shims got %s", shim["h1"])
	}
	run(t, l, "h1", "web", webArgs("--network", "lanha", "-p", "8080:80")...)
	ip := ipOf(t, l, "h1", "web", "lanha")
	WaitFor(t, shortWait, func() (bool, string) {
		_, err := l.Exec("h1", "busybox", "ping", "-c1", "-W1", ip)
		return err == nil, "h1 → its container " + ip + " through the shim"
	})
	host := l.HostIP("h1")
	reachable := func(when string) {
		t.Helper()
		for what, f := range map[string]func() (string, error){
			"LAN client → h1:8080": func() (string, error) { return curlClient(l, "http://"+host+":8080/passwd") },
			"h1 → 127.0.0.1:8080":  func() (string, error) { return curl(l, "h1", "http://127.0.0.1:8080/passwd") },
			"h1 → its container":   func() (string, error) { return curl(l, "h1", "http://"+ip+"/passwd") },
			"LAN client → container directly": func() (string, error) {
				return curlClient(l, "http://"+ip+"/passwd")
			},
		} {
			WaitFor(t, shortWait, func() (bool, string) {
				out, err := f()
				return err == nil && strings.Contains(out, "root:"), fmt.Sprintf("%s %s: %v %s", when, what, err, out)
			})
		}
	}
	reachable("")
	// kill -9 and restart of podnetd keep the shim, the routes, the port.
	if err := l.PodnetdStop("h1", true); err != nil {
		t.Fatal(err)
	}
	reachable("while podnetd is down:")
	if err := l.PodnetdStart("h1"); err != nil {
		t.Fatal(err)
	}
	reachable("after podnetd's restart:")
	id := ids["h1"][:12]
	if out := l.MustExec(t, "h1", "nft", "list", "table", "inet", "podnet"); !strings.Contains(out, "pn-"+id) {
		t.Fatalf("no rule for the shim in podnet's table:\n%s", out)
	}
	for _, h := range []string{"h1", "h2"} {
		removeNetwork(l, h, "lanha")
		if ls := podnetLinksOn(t, l, h); len(ls) != 0 {
			t.Fatalf("%s: links left after network rm: %v", h, ls)
		}
		if out := l.MustExec(t, h, "ip", "-4", "route"); strings.Contains(out, "pn-") && strings.Contains(out, l.Net+".") {
			t.Fatalf("%s: shim routes left:\n%s", h, out)
		}
	}
	if out := l.MustExec(t, "h1", "nft", "list", "table", "inet", "podnet"); strings.Contains(out, "pn-"+id) {
		t.Fatalf("rules for the removed shim left:\n%s", out)
	}
	// The shims' addresses went with the networks, and so did the pool.
	if out := l.MustExec(t, "h1", "podnetctl", "pool", "ls"); strings.Contains(out, l.Net+".0/24") {
		t.Fatalf("pool left after every host removed the network:\n%s", out)
	}
}

// TestMacvlanVLANParent: -o parent=eth0.VID creates the VLAN link on
// each host and removes it with the network (on a kernel without 802.1q
// the same runs in the QEMU guest: scripts/vm.sh e2e).
func TestMacvlanVLANParent(t *testing.T) {
	l := multi(t)
	if _, err := l.Exec("h1", "ip", "link", "add", "link", "eth0", "name", "eth0.4001", "type", "vlan", "id", "4001"); err != nil {
		t.Skipf("this kernel has no 802.1q VLANs (CONFIG_VLAN_8021Q): the VLAN parent scenario runs in the QEMU guest (scripts/vm.sh e2e): %v", err)
	}
	l.MustExec(t, "h1", "ip", "link", "del", "eth0.4001")
	l.MustClient(t, "ip", "link", "add", "link", "eth0", "name", "eth0.42", "type", "vlan", "id", "42")
	t.Cleanup(func() { _, _ = l.Client("ip", "link", "del", "eth0.42") })
	l.MustClient(t, "ip", "addr", "add", "10.242.0.2/24", "dev", "eth0.42")
	l.MustClient(t, "ip", "link", "set", "eth0.42", "up")
	for _, h := range []string{"h1", "h2"} {
		podnetNet(t, l, h, "vl", "-o", "mode=macvlan", "-o", "parent=eth0.42", "--subnet", "10.242.0.0/24", "--gateway", "10.242.0.2")
		l.MustExec(t, h, "ip", "link", "show", "eth0.42")
	}
	run(t, l, "h1", "v1", sleeper("--network", "vl")...)
	run(t, l, "h2", "v2", sleeper("--network", "vl")...)
	ip2 := ipOf(t, l, "h2", "v2", "vl")
	WaitFor(t, shortWait, func() (bool, string) { return ping(l, "h1", "v1", ip2), "v1 → v2 over VLAN 42" })
	WaitFor(t, shortWait, func() (bool, string) { return ping(l, "h1", "v1", "10.242.0.2"), "v1 → LAN machine on VLAN 42" })
	for _, h := range []string{"h1", "h2"} {
		removeNetwork(l, h, "vl")
		if _, err := l.Exec(h, "ip", "link", "show", "eth0.42"); err == nil {
			t.Fatalf("%s: the VLAN link podnet created survived the network", h)
		}
	}
}

// TestMacvlanBadInput: every refused request answers in the docker CLI
// with what is wrong, and leaves no network, link or pool behind.
func TestMacvlanBadInput(t *testing.T) {
	l := multi(t)
	podnetNet(t, l, "h1", "brnet", "--subnet", "10.243.0.0/24")
	brID := netID(t, l, "h1", "brnet")
	l.MustExec(t, "h1", "ip", "link", "add", "brx", "type", "bridge")
	t.Cleanup(func() { _, _ = l.Exec("h1", "ip", "link", "del", "brx") })
	l.MustExec(t, "h1", "ip", "link", "add", "portx", "type", "veth", "peer", "name", "portxp")
	l.MustExec(t, "h1", "ip", "link", "set", "portx", "master", "brx")
	sub := []string{"--subnet", "10.244.9.0/24"}
	cases := []struct {
		host string
		args []string
		want string
	}{
		{"h1", append([]string{"-o", "mode=macvlan", "-o", "parent=eth9"}, sub...), "parent eth9 does not exist on host h1"},
		{"h1", append([]string{"-o", "mode=macvlan", "-o", "parent=pn-" + brID[:12]}, sub...), "interface of another podnet network"},
		{"h1", append([]string{"-o", "mode=macvlan", "-o", "parent=portx"}, sub...), "parent portx is enslaved to bridge brx"},
		{"h1", append([]string{"-o", "mode=macvlan", "-o", "parent=eth0", "-o", "macvlan_mode=loud"}, sub...), `macvlan_mode="loud" is unknown`},
		{"h1", append([]string{"-o", "mode=ipvlan", "-o", "parent=eth0", "-o", "ipvlan_flag=loud"}, sub...), `ipvlan_flag="loud" is unknown`},
		{"h1", append([]string{"-o", "mode=ipvlan", "-o", "parent=eth0", "-o", "ipvlan_mode=l4"}, sub...), `ipvlan_mode="l4" is unknown`},
		{"h1", append([]string{"-o", "mode=macvlan", "-o", "parent=eth0.5000"}, sub...), "VLAN id 5000 is out of range 1-4094"},
		{"h1", append([]string{"-o", "mode=macvlan", "-o", "parent="}, sub...), "option parent needs a value"},
		{"h1", []string{"-o", "mode=macvlan", "-o", "parent=eth0", "--subnet", "10.243.0.0/25"}, "overlaps podnet pool 10.243.0.0/24"},
	}
	if _, err := l.Exec("h1", "ip", "link", "add", "link", "eth0", "name", "ipvprobe", "type", "ipvlan"); err != nil {
		cases = append(cases, struct {
			host string
			args []string
			want string
		}{"h1", append([]string{"-o", "mode=ipvlan", "-o", "parent=eth0"}, sub...), "kernel has no ipvlan support (CONFIG_IPVLAN, module ipvlan)"})
	} else {
		l.MustExec(t, "h1", "ip", "link", "del", "ipvprobe")
	}
	for _, c := range cases {
		out, err := l.Docker(c.host, append(append([]string{"network", "create", "-d", "podnet", "--ipam-driver", "podnet"}, c.args...), "bad")...)
		if err == nil {
			removeNetwork(l, c.host, "bad")
			t.Errorf("%v: accepted", c.args)
			continue
		}
		if msg := out + err.Error(); !strings.Contains(msg, c.want) {
			t.Errorf("%v: error %q does not say %q", c.args, msg, c.want)
		}
	}

	// The same subnet on two hosts with a different mode (IPAM let the
	// LAN's subnet through: the cluster's definition refuses).
	lanNet(t, l, "mv", []string{"h1"})
	out, err := l.Docker("h2", "network", "create", "-d", "podnet", "--ipam-driver", "podnet", "-o", "mode=bridge",
		"--ipam-opt", "parent=eth0", "--subnet", l.Net+".0/24", "--ip-range", l.Net+".128/25", "bad")
	if err == nil || !strings.Contains(out+err.Error(), "already defined in the cluster as mode macvlan") {
		removeNetwork(l, "h2", "bad")
		t.Fatalf("another mode on h2: %v %s", err, out)
	}
	removeNetwork(l, "h1", "mv")

	// Passthru takes one container.
	podnetNet(t, l, "h1", "pt", "-o", "mode=macvlan", "-o", "parent=portxp", "-o", "macvlan_mode=passthru", "--subnet", "10.244.10.0/24")
	run(t, l, "h1", "pt1", sleeper("--network", "pt")...)
	out, err = l.Docker("h1", append([]string{"run", "--rm", "--network", "pt"}, sleeper()...)...)
	if err == nil || !strings.Contains(out+err.Error(), "passthru gives the whole parent to one container") {
		t.Fatalf("second passthru container: %v %s", err, out)
	}
	removeNetwork(l, "h1", "pt")

	for _, h := range []string{"h1", "h2"} {
		if out := l.MustDocker(t, h, "network", "ls", "--filter", "name=bad", "-q"); out != "" {
			t.Fatalf("%s: a refused network exists: %s", h, out)
		}
		if ls := podnetLinksOn(t, l, h); len(ls) != 0 {
			t.Fatalf("%s: links left: %v", h, ls)
		}
	}
	if out := l.MustExec(t, "h1", "podnetctl", "pool", "ls"); strings.Contains(out, "10.244.") || strings.Contains(out, l.Net+".0/24") {
		t.Fatalf("pools left by refused networks:\n%s", out)
	}
}

// TestMacvlanNamedNetworkPerHostParent: podnetctl network create --mode
// macvlan --parent defines the network once; every host creates it with
// its own parent (--host-parent overrides one host); rm removes it everywhere.
func TestMacvlanNamedNetworkPerHostParent(t *testing.T) {
	l := multi(t)
	out, err := l.Exec("h1", "podnetctl", "network", "create", "nopar", "--mode", "macvlan", "--subnet", "10.245.1.0/24")
	if err == nil || !strings.Contains(out+err.Error(), "mode macvlan needs --parent IFACE") {
		t.Fatalf("macvlan without a parent: %v %s", err, out)
	}
	out, err = l.Exec("h1", "podnetctl", "network", "create", "badvl", "--mode", "macvlan", "--parent", "eth0.9999", "--subnet", "10.245.1.0/24")
	if err == nil || !strings.Contains(out+err.Error(), "VLAN id 9999 is out of range") {
		t.Fatalf("bad VLAN id: %v %s", err, out)
	}
	l.MustExec(t, "h2", "ip", "link", "add", "lanx", "type", "veth", "peer", "name", "lanxp")
	t.Cleanup(func() { _, _ = l.Exec("h2", "ip", "link", "del", "lanx") })
	l.MustExec(t, "h2", "ip", "link", "set", "lanx", "up")
	l.MustExec(t, "h1", "podnetctl", "network", "create", "named", "--mode", "macvlan", "--parent", "eth0",
		"--host-parent", "h2=lanx", "--subnet", "10.245.0.0/24", "--wait", "90s")
	t.Cleanup(func() { _, _ = l.Exec("h1", "podnetctl", "network", "rm", "named") })
	for h, want := range map[string]string{"h1": "eth0", "h2": "lanx", "h3": "eth0"} {
		got := l.MustDocker(t, h, "network", "inspect", "-f", `{{index .Options "parent"}}`, "named")
		if strings.TrimSpace(got) != want {
			t.Fatalf("%s: parent %q, want %q", h, got, want)
		}
	}
	run(t, l, "h2", "n2", sleeper("--network", "named")...)
	if out := l.MustExec(t, "h2", "podnetctl", "endpoint", "ls"); !strings.Contains(out, "10.245.0.") {
		t.Fatalf("no endpoint on h2:\n%s", out)
	}
	_, _ = l.Docker("h2", "rm", "-f", "n2")
	l.MustExec(t, "h1", "podnetctl", "network", "rm", "named", "--wait", "90s")
	for _, h := range l.Hosts() {
		if out, _ := l.Docker(h, "network", "ls", "-q", "--filter", "name=named"); out != "" {
			t.Fatalf("%s still has the network", h)
		}
	}
}
