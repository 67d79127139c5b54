//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"sort"
	"strings"
	"testing"
	"time"
)

// multi returns the shared 3-host lab with a real 3-member etcd cluster.
func multi(t *testing.T) *Lab {
	t.Helper()
	RequirePodnetd(t)
	return Shared(t, 3, EtcdCluster)
}

// vxNet creates the same vxlan network on every host (as a user would,
// one docker network create per host) and removes it at the end.
func vxNet(t *testing.T, l *Lab, name, subnet string, extra ...string) map[string]string {
	t.Helper()
	ids := map[string]string{}
	for _, h := range l.Hosts() {
		ids[h] = podnetNet(t, l, h, name, append([]string{"-o", "mode=vxlan", "--subnet", subnet}, extra...)...)
	}
	return ids
}

func ipOf(t *testing.T, l *Lab, host, name, network string) string {
	t.Helper()
	ip, err := l.ContainerIP(host, name, network)
	if err != nil {
		t.Fatal(err)
	}
	return ip
}

// serverArgs runs a container serving TCP echo on 9000 and UDP on 9001.
func serverArgs(args ...string) []string {
	return append(args, TestImage, "sh", "-c", "netcheck udp-server 9001 & exec netcheck echo-server 9000")
}

type hostJSON struct {
	Name     string   `json:"name"`
	Underlay string   `json:"underlay"`
	Alive    bool     `json:"alive"`
	Blocks   []string `json:"blocks"`
}

func hostsView(t *testing.T, l *Lab, from string) []hostJSON {
	t.Helper()
	var hs []hostJSON
	out := l.MustExec(t, from, "podnetctl", "host", "ls", "-o", "json")
	if err := json.Unmarshal([]byte(out), &hs); err != nil {
		t.Fatalf("podnetctl host ls: %v: %s", err, out)
	}
	return hs
}

// overlayRoutes returns "dst via" of podnet's routes (proto 152) on host.
func overlayRoutes(t *testing.T, l *Lab, host string) []string {
	t.Helper()
	out := l.MustExec(t, host, "ip", "route", "show", "proto", "152")
	var rs []string
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) >= 3 && f[1] == "via" {
			rs = append(rs, f[0]+" via "+f[2])
		}
	}
	sort.Strings(rs)
	return rs
}

// TestVXLANAcrossHosts: one network on three hosts; every container
// reaches every other by its own address over TCP, UDP and ICMP, the
// receiver sees the sender's pod address, routes match etcd's blocks, and
// removing everything leaves nothing.
func TestVXLANAcrossHosts(t *testing.T) {
	l := multi(t)
	ids := vxNet(t, l, "pods", "10.244.0.0/16")
	ips := map[string]string{}
	for _, h := range l.Hosts() {
		addr := l.MustExec(t, h, "ip", "-o", "addr", "show", "dev", "pn-"+ids[h][:12])
		mustContain(t, h+": anycast gateway", addr, "10.244.0.1/16")
		out := l.MustDocker(t, h, "network", "inspect", "-f", "{{range .IPAM.Config}}{{.Subnet}}{{end}}", "pods")
		if out != "10.244.0.0/16" {
			t.Fatalf("%s: subnet %q", h, out)
		}
		run(t, l, h, "s"+h, serverArgs("--network", "pods")...)
		ips[h] = ipOf(t, l, h, "s"+h, "pods")
		mtu := l.MustDocker(t, h, "exec", "s"+h, "cat", "/sys/class/net/eth0/mtu")
		if mtu != "1450" {
			t.Fatalf("%s: container MTU %s, want underlay 1500 - 50", h, mtu)
		}
	}
	for _, a := range l.Hosts() {
		for _, b := range l.Hosts() {
			if a == b {
				continue
			}
			src, dst := "s"+a, ips[b]
			WaitFor(t, shortWait, func() (bool, string) { return ping(l, a, src, dst), a + " cannot ping " + b })
			out, err := l.Docker(a, "exec", src, "netcheck", "stream", dst+":9000", "1")
			if err != nil || !strings.Contains(out, "stream ok") {
				t.Fatalf("TCP %s -> %s: %v %s", a, b, err, out)
			}
			out, err = l.Docker(a, "exec", src, "netcheck", "udp-send", dst+":9001", "hi-from-"+a)
			if err != nil || !strings.Contains(out, "echo hi-from-"+a) {
				t.Fatalf("UDP %s -> %s: %v %s", a, b, err, out)
			}
			logs := l.MustDocker(t, b, "logs", "s"+b)
			mustContain(t, b+" sees "+a+"'s pod address (TCP)", logs, "from "+ips[a]+":")
			// Host a itself (not a container) reaches the container on b,
			// from its tunnel address in the network: routed back to a
			// through the overlay, where the reply is accepted.
			tunnel := routeSource(t, l, a, dst)
			if out := l.MustExec(t, a, "ip", "-o", "addr", "show", "to", tunnel+"/32"); !strings.Contains(out, " pnx") {
				t.Fatalf("%s: its tunnel address %s is not on the VXLAN device: %q", a, tunnel, out)
			}
			out, err = l.Exec(a, "netcheck", "stream", dst+":9000", "1")
			if err != nil || !strings.Contains(out, "stream ok") {
				t.Fatalf("TCP from host %s itself -> %s: %v %s", a, b, err, out)
			}
			mustContain(t, b+" sees host "+a+" at its tunnel address", l.MustDocker(t, b, "logs", "s"+b), "from "+tunnel+":")
		}
	}
	// Traffic leaving the pod network is masqueraded (pod-to-pod never is).
	if p := clientSees(t, l, "h2", "sh2", 7010); p != l.HostIP("h2") {
		t.Fatalf("outbound from h2: client saw %s, want %s", p, l.HostIP("h2"))
	}

	// Routes on each host are exactly the other hosts' blocks.
	blocks := map[string][]string{}
	for _, h := range hostsView(t, l, "h1") {
		if !h.Alive || h.Underlay != l.HostIP(h.Name) {
			t.Fatalf("host ls: %+v", h)
		}
		blocks[h.Name] = h.Blocks
	}
	for _, h := range l.Hosts() {
		var want []string
		for _, o := range l.Hosts() {
			if o != h {
				for _, b := range blocks[o] {
					want = append(want, b+" via "+l.HostIP(o))
				}
			}
		}
		sort.Strings(want)
		WaitFor(t, shortWait, func() (bool, string) {
			got := overlayRoutes(t, l, h)
			return strings.Join(got, ";") == strings.Join(want, ";"), fmt.Sprintf("%s routes %v, want %v", h, got, want)
		})
	}

	// Removing everything leaves nothing.
	for _, h := range l.Hosts() {
		removeNetwork(l, h, "pods")
	}
	for _, h := range l.Hosts() {
		if vs := links(t, l, h, "pn"); len(vs) != 0 {
			t.Fatalf("%s: links left: %v", h, vs)
		}
		if rs := overlayRoutes(t, l, h); len(rs) != 0 {
			t.Fatalf("%s: routes left: %v", h, rs)
		}
		if out := l.MustExec(t, h, "ip", "-o", "addr", "show"); strings.Contains(out, " 10.244.") {
			t.Fatalf("%s: addresses of the removed network left (tunnel address?):\n%s", h, out)
		}
	}
	for _, p := range []string{"pools/", "ipam/", "lnets/", "vnis/", "networks/", "endpoints/", "epmeta/"} {
		if ks := etcdKeys(t, l, "h1", p); len(ks) != 0 {
			t.Fatalf("etcd keys left under %s: %v", p, ks)
		}
	}
	for _, h := range l.Hosts() {
		if out := l.MustExec(t, h, "nft", "list", "table", "inet", "podnet"); strings.Contains(out, "10.244.") {
			t.Fatalf("%s: rules of the removed network remain:\n%s", h, out)
		}
	}
}

// routeSource is the source address of host's route to dst (ip route
// get), which the overlay sets to the host's tunnel address in dst's
// network; it fails the test when there is none.
func routeSource(t *testing.T, l *Lab, host, dst string) string {
	t.Helper()
	f := strings.Fields(l.MustExec(t, host, "ip", "route", "get", dst))
	for i := 0; i+1 < len(f); i++ {
		if f[i] == "src" {
			return f[i+1]
		}
	}
	t.Fatalf("%s: no source in the route to %s: %v", host, dst, f)
	return ""
}

// TestDirectRouting: with podnet.direct-routing, blocks of hosts on the
// same underlay subnet are routed over the underlay itself, and traffic
// (with pod source addresses) still flows; the host itself reaches a
// container on the other host from its underlay address.
func TestDirectRouting(t *testing.T) {
	l := multi(t)
	vxNet(t, l, "direct", "10.236.0.0/16", "-o", "podnet.direct-routing=true")
	run(t, l, "h1", "dr1", serverArgs("--network", "direct")...)
	run(t, l, "h2", "dr2", serverArgs("--network", "direct")...)
	ip1, ip2 := ipOf(t, l, "h1", "dr1", "direct"), ipOf(t, l, "h2", "dr2", "direct")
	WaitFor(t, shortWait, func() (bool, string) {
		out := l.MustExec(t, "h1", "ip", "route", "show", "proto", "152")
		return strings.Contains(out, "via "+l.HostIP("h2")+" dev eth0"), "no direct route to h2's block on h1:\n" + out
	})
	if out, err := l.Docker("h1", "exec", "dr1", "netcheck", "stream", ip2+":9000", "1"); err != nil || !strings.Contains(out, "stream ok") {
		t.Fatalf("TCP over direct routing: %v %s", err, out)
	}
	mustContain(t, "h2 sees h1's pod address", l.MustDocker(t, "h2", "logs", "dr2"), "from "+ip1+":")
	if out, err := l.Exec("h1", "netcheck", "stream", ip2+":9000", "1"); err != nil || !strings.Contains(out, "stream ok") {
		t.Fatalf("TCP from host h1 itself over direct routing: %v %s", err, out)
	}
	mustContain(t, "h2 sees host h1 at its underlay address", l.MustDocker(t, "h2", "logs", "dr2"), "from "+l.HostIP("h1")+":")
}

// clientSees opens a TCP connection from container name on host to the
// outside client and returns the source address the client saw.
func clientSees(t *testing.T, l *Lab, host, name string, port int) string {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = l.Client("timeout", "8", "busybox", "nc", "-l", "-p", fmt.Sprint(port))
	}()
	WaitFor(t, shortWait, func() (bool, string) {
		out, _ := l.Client("busybox", "netstat", "-ltn")
		return strings.Contains(out, fmt.Sprintf(":%d ", port)), out
	})
	go func() {
		_, _ = l.Docker(host, "exec", name, "sh", "-c", fmt.Sprintf("sleep 2 | timeout 3 nc %s %d", l.ClientIP(), port))
	}()
	var peer string
	WaitFor(t, shortWait, func() (bool, string) {
		out, _ := l.Client("busybox", "netstat", "-tn")
		for _, line := range strings.Split(out, "\n") {
			f := strings.Fields(line)
			if len(f) >= 6 && strings.HasSuffix(f[3], fmt.Sprintf(":%d", port)) && f[5] != "LISTEN" {
				peer = strings.TrimPrefix(f[4][:strings.LastIndex(f[4], ":")], "::ffff:")
				return true, out
			}
		}
		return false, out
	})
	<-done
	return peer
}

// TestConcurrentStartsAcrossHosts: 30 containers started at once across
// three hosts get 30 distinct addresses.
func TestConcurrentStartsAcrossHosts(t *testing.T) {
	l := multi(t)
	vxNet(t, l, "burst", "10.243.0.0/16")
	startAll(t, l, "burst", "b", 10)
	seen := map[string]string{}
	for _, h := range l.Hosts() {
		for i := range 10 {
			name := fmt.Sprintf("b%s-%d", h, i)
			ip := ipOf(t, l, h, name, "burst")
			if !netip.MustParsePrefix("10.243.0.0/16").Contains(netip.MustParseAddr(ip)) {
				t.Fatalf("%s got %s outside the subnet", name, ip)
			}
			if other, dup := seen[ip]; dup {
				t.Fatalf("%s and %s both got %s", name, other, ip)
			}
			seen[ip] = name
		}
	}
	// And they reach each other across hosts.
	if !ping(l, "h1", "bh1-0", ipOf(t, l, "h3", "bh3-9", "burst")) {
		t.Fatal("burst containers cannot reach each other across hosts")
	}
}

// TestHostChurn: a host whose podnetd dies loses its routes on the others
// within its liveness TTL (its blocks stay reserved), and gets them back
// when it returns; podnetd restarts never disturb established cross-host
// connections; losing one etcd member changes nothing visible.
func TestHostChurn(t *testing.T) {
	l := multi(t)
	vxNet(t, l, "churn", "10.242.0.0/16")
	for _, h := range l.Hosts() {
		run(t, l, h, "k"+h, serverArgs("--network", "churn")...)
	}
	ip2, ip3 := ipOf(t, l, "h2", "kh2", "churn"), ipOf(t, l, "h3", "kh3", "churn")
	WaitFor(t, shortWait, func() (bool, string) { return ping(l, "h1", "kh1", ip3), "h1 cannot reach h3" })

	// One long connection h1 -> h2 while both podnetds restart (kill -9 and
	// clean), and while an etcd member dies.
	streamErr := make(chan error, 1)
	go func() {
		out, err := l.Docker("h1", "exec", "kh1", "netcheck", "stream", ip2+":9000", "20")
		if err == nil && !strings.Contains(out, "stream ok") {
			err = fmt.Errorf("stream: %s", out)
		}
		streamErr <- err
	}()
	if err := l.PodnetdStop("h2", false); err != nil {
		t.Fatal(err)
	}
	if err := l.PodnetdStart("h2"); err != nil {
		t.Fatal(err)
	}
	if err := l.PodnetdStop("h1", true); err != nil {
		t.Fatal(err)
	}
	if err := l.PodnetdStart("h1"); err != nil {
		t.Fatal(err)
	}
	if err := l.EtcdStop(1, true); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.EtcdStart(1) })
	run(t, l, "h2", "afterEtcdLoss", sleeper("--network", "churn")...)
	if err := <-streamErr; err != nil {
		t.Fatalf("an established cross-host connection broke during podnetd restarts / etcd member loss: %v", err)
	}
	if err := l.EtcdStart(1); err != nil {
		t.Fatal(err)
	}

	// h3 dies (its podnetd is killed): within the TTL (6 s in the lab) the
	// others drop its routes; its blocks stay reserved.
	before := hostsView(t, l, "h1")
	if err := l.PodnetdStop("h3", true); err != nil {
		t.Fatal(err)
	}
	restarted := false
	t.Cleanup(func() {
		if !restarted {
			_ = l.PodnetdStart("h3")
		}
	})
	WaitFor(t, 30*time.Second, func() (bool, string) {
		for _, r := range overlayRoutes(t, l, "h1") {
			if strings.HasSuffix(r, "via "+l.HostIP("h3")) {
				return false, "h1 still routes to dead h3: " + r
			}
		}
		return true, ""
	})
	// Its containers' names stop resolving (podnet's DNS answers only for
	// live hosts).
	WaitFor(t, shortWait, func() (bool, string) {
		out, err := l.Docker("h1", "run", "--rm", "--dns", "10.96.0.10", "--network", "churn", TestImage, "nslookup", "kh3")
		return err != nil || !strings.Contains(out, ip3), "a dead host's container still resolves: " + out
	})
	for _, h := range hostsView(t, l, "h1") {
		if h.Name == "h3" {
			if h.Alive {
				t.Fatal("h3 still shown alive")
			}
			for _, b := range before {
				if b.Name == "h3" && strings.Join(b.Blocks, ",") != strings.Join(h.Blocks, ",") {
					t.Fatalf("h3's blocks changed while it was down: %v -> %v", b.Blocks, h.Blocks)
				}
			}
		}
	}
	if err := l.PodnetdStart("h3"); err != nil {
		t.Fatal(err)
	}
	restarted = true
	WaitFor(t, 30*time.Second, func() (bool, string) { return ping(l, "h1", "kh1", ip3), "h1 cannot reach h3 after its return" })
	// h3 resumes its own blocks: a new container there gets an unused address.
	run(t, l, "h3", "k3b", sleeper("--network", "churn")...)
	if ip := ipOf(t, l, "h3", "k3b", "churn"); ip == ip3 || ip == ip2 {
		t.Fatalf("address %s handed out twice", ip)
	}
}

// TestNamesAcrossHosts: with podnet's DNS as the daemon's (here, the
// container's) DNS server, a container resolves containers on other hosts;
// a removed container stops resolving.
func TestNamesAcrossHosts(t *testing.T) {
	l := multi(t)
	vxNet(t, l, "named", "10.241.0.0/16")
	run(t, l, "h2", "faraway", sleeper("--network", "named")...)
	run(t, l, "h1", "nearby", sleeper("--network", "named", "--dns", "10.96.0.10")...)
	far := ipOf(t, l, "h2", "faraway", "named")
	WaitFor(t, shortWait, func() (bool, string) {
		out, err := l.Docker("h1", "exec", "nearby", "nslookup", "faraway")
		return err == nil && strings.Contains(out, far), fmt.Sprint(err, out)
	})
	if !ping(l, "h1", "nearby", "faraway") {
		t.Fatal("ping by name across hosts failed")
	}
	run(t, l, "h1", "sibling", sleeper("--network", "named")...)
	if !ping(l, "h1", "nearby", "sibling") {
		t.Fatal("same-host names (Docker's own DNS) broke")
	}
	l.MustDocker(t, "h2", "rm", "-f", "faraway")
	WaitFor(t, shortWait, func() (bool, string) {
		out, err := l.Docker("h1", "exec", "nearby", "nslookup", "faraway")
		return err != nil || !strings.Contains(out, far), "still resolves: " + out
	})
}

// TestClusterNetworkCommands: podnetctl network create defines a network
// once and every host gets it; rm refuses while containers are attached
// and then removes it everywhere.
func TestClusterNetworkCommands(t *testing.T) {
	l := multi(t)
	out := l.MustExec(t, "h1", "podnetctl", "network", "create", "fanout", "--subnet", "10.240.0.0/16")
	mustContain(t, "create waits for every host", out, "on 3 host(s)")
	t.Cleanup(func() {
		for _, h := range l.Hosts() {
			removeNetwork(l, h, "fanout")
		}
		_, _ = l.Exec("h1", "podnetctl", "network", "rm", "fanout")
	})
	for _, h := range l.Hosts() {
		if d := l.MustDocker(t, h, "network", "inspect", "-f", "{{.Driver}} {{range .IPAM.Config}}{{.Subnet}}{{end}}", "fanout"); d != "podnet 10.240.0.0/16" {
			t.Fatalf("%s: %q", h, d)
		}
	}
	run(t, l, "h2", "f2", sleeper("--network", "fanout")...)
	run(t, l, "h3", "f3", sleeper("--network", "fanout")...)
	if !ping(l, "h2", "f2", ipOf(t, l, "h3", "f3", "fanout")) {
		t.Fatal("containers on a podnetctl-defined network cannot reach each other")
	}
	_, err := l.Exec("h1", "podnetctl", "network", "rm", "fanout")
	if err == nil || !strings.Contains(err.Error(), "h2: f2") || !strings.Contains(err.Error(), "h3: f3") {
		t.Fatalf("rm with containers attached must refuse, listing them: %v", err)
	}
	l.MustDocker(t, "h2", "rm", "-f", "f2")
	l.MustDocker(t, "h3", "rm", "-f", "f3")
	l.MustExec(t, "h1", "podnetctl", "network", "rm", "fanout")
	for _, h := range l.Hosts() {
		if out, _ := l.Docker(h, "network", "ls", "-q", "--filter", "name=^fanout$"); out != "" {
			t.Fatalf("%s still has the network", h)
		}
	}
}

// TestMultiHostBadInput: a second host cannot redefine a subnet, a VNI
// cannot be taken twice, and vxlan needs podnet's IPAM.
func TestMultiHostBadInput(t *testing.T) {
	l := multi(t)
	podnetNet(t, l, "h1", "def1", "-o", "mode=vxlan", "--subnet", "10.239.0.0/16", "-o", "podnet.vni=5000")
	dockerFails(t, l, "h2", []string{"already defined", "mode vxlan", "vni 5000", "mode bridge"},
		"network", "create", "-d", "podnet", "--ipam-driver", "podnet", "--subnet", "10.239.0.0/16", "def1")
	dockerFails(t, l, "h2", []string{"vni 6000"},
		"network", "create", "-d", "podnet", "--ipam-driver", "podnet", "-o", "mode=vxlan", "-o", "podnet.vni=6000", "--subnet", "10.239.0.0/16", "def1")
	dockerFails(t, l, "h2", []string{"VNI 5000 is already used", "10.239.0.0/16"},
		"network", "create", "-d", "podnet", "--ipam-driver", "podnet", "-o", "mode=vxlan", "-o", "podnet.vni=5000", "--subnet", "10.238.0.0/16", "other")
	dockerFails(t, l, "h2", []string{"--ipam-driver podnet"},
		"network", "create", "-d", "podnet", "-o", "mode=vxlan", "--subnet", "10.237.0.0/16", "other")
	// Leaving options out inherits them: the second host joins with VNI 5000.
	podnetNet(t, l, "h2", "def1", "-o", "mode=vxlan", "--subnet", "10.239.0.0/16")
	if out := l.MustExec(t, "h2", "ip", "-d", "link", "show", "pnx5000"); !strings.Contains(out, "vxlan id 5000") {
		t.Fatalf("h2 did not inherit VNI 5000: %s", out)
	}
}
