//go:build e2e

package e2e

import (
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// The lab as an attacker sees it: the outside client on the underlay,
// containers, and local users who are not root. (The tests on the
// 3-host lab come first, then those on the 1-host lab: each switch of
// shared lab costs a down and an up.)

// TestEtcdRefusesStrangers: the lab's etcd cluster takes only clients with
// a certificate of its CA, and containers on podnet networks cannot even
// open a connection to its members' client or peer ports.
func TestEtcdRefusesStrangers(t *testing.T) {
	l := multi(t)
	podnetNet(t, l, "h1", "etcdnet", "--subnet", "10.81.0.0/24")
	run(t, l, "h1", "snoop", sleeper("--network", "etcdnet")...)
	for m := 1; m <= 3; m++ {
		for _, port := range []int{2379, 2380} {
			addr := fmt.Sprintf("%s.%d:%d", l.Net, 200+m, port)
			if out, err := l.Docker("h1", "exec", "snoop", "netcheck", "connect", addr); err == nil {
				t.Fatalf("a container on a podnet network reached etcd at %s: %s", addr, out)
			}
		}
	}
	// The outside client, without a certificate: refused (TLS), and a
	// plain-HTTP write gets nothing.
	for _, scheme := range []string{"https", "http"} {
		url := fmt.Sprintf("%s://%s.201:2379/v3/kv/put", scheme, l.Net)
		out, err := l.Client("curl", "-sS", "-k", "--max-time", "3", "-X", "POST", url,
			"-d", `{"key":"L3BvZG5ldC92MS9ob3N0cy9oMg==","value":"eA=="}`)
		if err == nil {
			t.Fatalf("etcd took a write from the outside client over %s: %s", scheme, out)
		}
	}
	var h struct{ Underlay string }
	if !etcdGet(t, l, "h1", "hosts/h2", &h) || h.Underlay != l.HostIP("h2") {
		t.Fatalf("hosts/h2 changed: %+v", h)
	}
	if b, err := os.ReadFile(filepath.Join(l.HostDir("h1"), "podnetd.log")); err != nil || strings.Contains(string(b), "INSECURE") {
		t.Fatalf("podnetd warns about etcd security in the TLS lab (read err %v)", err)
	}
}

// TestVXLANOnlyFromHosts: a VXLAN datagram with a forged pod source from
// the outside client never reaches a container, one from a registered
// host does; with direct routing, a packet from the underlay whose pod
// source is not routed back to it is dropped too.
func TestVXLANOnlyFromHosts(t *testing.T) {
	l := multi(t)
	vxNet(t, l, "guard", "10.82.0.0/16")
	run(t, l, "h1", "target", serverArgs("--network", "guard")...)
	run(t, l, "h2", "peer", sleeper("--network", "guard")...)
	target, peer := ipOf(t, l, "h1", "target", "guard"), ipOf(t, l, "h2", "peer", "guard")
	dev := strings.Fields(l.MustExec(t, "h1", "sh", "-c", `ip -o link show | grep -o 'pnx[0-9]*' | head -1`))
	if len(dev) != 1 {
		t.Fatal("h1 has no VXLAN device")
	}
	vni := strings.TrimPrefix(dev[0], "pnx")
	mac := l.MustExec(t, "h1", "cat", "/sys/class/net/"+dev[0]+"/address")
	vtep := l.HostIP("h1") + ":4789"
	send := func(from, msg string) {
		args := []string{"netcheck", "vxlan-send", vtep, vni, mac, peer, target, "9001", msg}
		var err error
		if from == "client" {
			_, err = l.Client(args...)
		} else {
			_, err = l.Exec(from, args...)
		}
		if err != nil {
			t.Fatalf("%s: vxlan-send: %v", from, err)
		}
	}
	// A real host's datagram arrives (first wait until the path works),
	// then the client's forged one is sent before another of h2's: when
	// that one has arrived, the forged one would have too.
	WaitFor(t, shortWait, func() (bool, string) {
		send("h2", "from-h2")
		out, _ := l.Docker("h1", "logs", "target")
		return strings.Contains(out, "from-h2"), out
	})
	send("client", "forged-by-client")
	send("h2", "after-the-forgery")
	WaitFor(t, shortWait, func() (bool, string) {
		out, _ := l.Docker("h1", "logs", "target")
		return strings.Contains(out, "after-the-forgery"), out
	})
	if out := l.MustDocker(t, "h1", "logs", "target"); strings.Contains(out, "forged-by-client") {
		t.Fatalf("a VXLAN datagram from the outside client reached the container:\n%s", out)
	}

	// Direct routing: the client claims an address of the subnet that is
	// routed to no host of its own, and sends to the container through h1.
	vxNet(t, l, "guardd", "10.83.0.0/16", "-o", "podnet.direct-routing=true")
	run(t, l, "h1", "dtarget", serverArgs("--network", "guardd")...)
	run(t, l, "h2", "dpeer", sleeper("--network", "guardd")...)
	dtarget := ipOf(t, l, "h1", "dtarget", "guardd")
	forged := "10.83.255.250"
	l.MustClient(t, "ip", "addr", "add", forged+"/32", "dev", "eth0")
	l.MustClient(t, "ip", "route", "add", "10.83.0.0/16", "via", l.HostIP("h1"), "src", forged)
	t.Cleanup(func() {
		_, _ = l.Client("ip", "route", "del", "10.83.0.0/16")
		_, _ = l.Client("ip", "addr", "del", forged+"/32", "dev", "eth0")
	})
	WaitFor(t, shortWait, func() (bool, string) {
		out, err := l.Docker("h2", "exec", "dpeer", "netcheck", "udp-send", dtarget+":9001", "direct-from-h2")
		return err == nil, out + errString(err)
	})
	_, _ = l.Client("netcheck", "udp-send", dtarget+":9001", "forged-direct")
	l.MustDocker(t, "h2", "exec", "dpeer", "netcheck", "udp-send", dtarget+":9001", "direct-after")
	if out := l.MustDocker(t, "h1", "logs", "dtarget"); strings.Contains(out, "forged-direct") || !strings.Contains(out, "direct-after") {
		t.Fatalf("forged pod source over direct routing:\n%s", out)
	}
}

// TestClusterDNSNotOpen: the cluster DNS answers the host and its
// containers (on podnet networks and on Docker's default bridge); the
// outside client, routing to it through the host, gets nothing.
func TestClusterDNSNotOpen(t *testing.T) {
	l := multi(t)
	podnetNet(t, l, "h1", "dnsacl", "--subnet", "10.85.0.0/24")
	run(t, l, "h1", "named1", sleeper("--network", "dnsacl")...)
	ip := ipOf(t, l, "h1", "named1", "dnsacl")
	WaitFor(t, shortWait, func() (bool, string) {
		out, err := l.Docker("h1", "run", "--rm", "--network", "dnsacl", TestImage, "netcheck", "dns", "10.96.0.10", "named1")
		return err == nil && strings.Contains(out, ip), out + errString(err)
	})
	mustContain(t, "the host itself", l.MustExec(t, "h1", "netcheck", "dns", "10.96.0.10", "named1"), ip)
	mustContain(t, "a container on Docker's default bridge",
		l.MustDocker(t, "h1", "run", "--rm", TestImage, "netcheck", "dns", "10.96.0.10", "named1"), ip)
	l.MustClient(t, "ip", "route", "add", "10.96.0.10/32", "via", l.HostIP("h1"))
	t.Cleanup(func() { _, _ = l.Client("ip", "route", "del", "10.96.0.10/32") })
	for _, name := range []string{"named1", "example.com"} {
		if out, err := l.Client("netcheck", "dns", "10.96.0.10", name); err == nil {
			t.Fatalf("the outside client got an answer for %s: %s", name, out)
		}
	}
}

// TestClusterDNSNoShadowing: a container named github.com with the alias
// www.example.org does not make the cluster DNS answer those names with
// its address, on its host or any other (they go upstream, which the lab
// cannot reach); its single-label alias answers everywhere, and a service
// keeps its name over a container of the same name.
func TestClusterDNSNoShadowing(t *testing.T) {
	l := svcLab(t)
	run(t, l, "h1", "github.com", sleeper("--network", svcNet, "--network-alias", "www.example.org",
		"--network-alias", "gh")...)
	ip := ipOf(t, l, "h1", "github.com", svcNet)
	run(t, l, "h1", "spoofsvc", sleeper("--network", svcNet)...)
	svc := service(t, l, "h1", "spoofsvc", "--selector", "app=nobody", "--port", "80")
	for _, h := range l.Hosts() {
		WaitFor(t, shortWait, func() (bool, string) {
			out, err := l.Exec(h, "netcheck", "dns", dnsAddr, "gh")
			return err == nil && strings.Contains(out, ip), h + ": gh: " + out + errString(err)
		})
		for _, name := range []string{"github.com", "www.example.org"} {
			if out, _ := l.Exec(h, "netcheck", "dns", dnsAddr, name); strings.Contains(out, ip) {
				t.Errorf("%s: the cluster DNS answers %s with the container's address: %s", h, name, out)
			}
		}
		if got, out := lookup(l, h, "spoofsvc", "a"); !slices.Equal(got, []string{svc.ClusterIP}) {
			t.Errorf("%s: spoofsvc resolves to %v, want the service's VIP %s:\n%s", h, got, svc.ClusterIP, out)
		}
	}
}

// TestClusterDNSFromDiskWithEtcdDown: a podnetd restarted while etcd has
// no quorum answers the names it knew from the records it saved.
func TestClusterDNSFromDiskWithEtcdDown(t *testing.T) {
	l := multi(t)
	vxNet(t, l, "dnsdisk", "10.84.0.0/16")
	run(t, l, "h2", "faraway2", sleeper("--network", "dnsdisk")...)
	run(t, l, "h1", "asker", sleeper("--network", "dnsdisk", "--dns", "10.96.0.10")...)
	far := ipOf(t, l, "h2", "faraway2", "dnsdisk")
	resolves := func() (bool, string) {
		out, err := l.Docker("h1", "exec", "asker", "netcheck", "dns", "10.96.0.10", "faraway2")
		return err == nil && strings.Contains(out, far), out + errString(err)
	}
	WaitFor(t, shortWait, resolves)
	cache := filepath.Join(l.HostDir("h1"), "podnet", "dns-records.json")
	WaitFor(t, shortWait, func() (bool, string) {
		b, err := os.ReadFile(cache)
		return err == nil && strings.Contains(string(b), far), fmt.Sprint(err)
	})
	if st, err := os.Stat(cache); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("%s: %v %v, want mode 0600", cache, st.Mode(), err)
	}

	// Two members down: no quorum. (One at a time back: a member answers
	// /version without quorum, so EtcdStart returns.)
	for m := 1; m <= 2; m++ {
		if err := l.EtcdStop(m, true); err != nil {
			t.Fatal(err)
		}
	}
	restored := false
	restore := func() {
		for m := 1; m <= 2; m++ {
			if err := l.EtcdStart(m); err != nil {
				t.Error(err)
			}
		}
		restored = true
	}
	t.Cleanup(func() {
		if !restored {
			restore()
		}
	})
	if err := l.PodnetdStop("h1", false); err != nil {
		t.Fatal(err)
	}
	if err := l.PodnetdStart("h1"); err != nil {
		t.Fatal(err)
	}
	WaitFor(t, 20*time.Second, resolves)
	mustContain(t, "podnetd's log", tailFile(filepath.Join(l.HostDir("h1"), "podnetd.log"), 200), "saved on disk")

	restore()
	WaitFor(t, time.Minute, func() (bool, string) {
		out, err := l.Exec("h1", "podnetctl", "status")
		return err == nil && !strings.Contains(out, "UNHEALTHY"), out + errString(err)
	})
}

// TestEmbeddedEtcdRootOnly: a local user who is not root can neither
// reach the embedded etcd's socket nor its peer port, nor the TCP port it
// used to listen on; root can.
func TestEmbeddedEtcdRootOnly(t *testing.T) {
	l := single(t)
	nobody := []string{"setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "etcdctl",
		"--dial-timeout", "2s", "--command-timeout", "3s"}
	for _, ep := range []string{"$LAB_ETCD_ENDPOINTS", "http://127.0.0.1:23790"} {
		cmd := strings.Join(nobody, " ") + ` --endpoints "` + ep + `" del --prefix /podnet/v1/hosts/`
		if out, err := l.Exec("h1", "sh", "-c", cmd); err == nil {
			t.Fatalf("a non-root etcdctl on %s deleted podnet's keys: %s", ep, out)
		}
	}
	if keys := etcdKeys(t, l, "h1", "hosts/"); !contains(keys, "hosts/h1") {
		t.Fatalf("root's etcdctl on the socket sees %v, want hosts/h1", keys)
	}
	if out, err := l.Exec("h1", "curl", "-sS", "-k", "--max-time", "3", "https://127.0.0.1:23800/members"); err == nil {
		t.Fatalf("the embedded etcd's peer port answered without a client certificate: %s", out)
	}
}

// TestUnsafeSubnetsRefused: loopback, multicast, link-local, unspecified
// and broadcast ranges, the lab's LAN and docker0's network are refused
// through the docker CLI, podnetctl and the plugin socket, with nothing
// left in etcd.
func TestUnsafeSubnetsRefused(t *testing.T) {
	l := single(t)
	before := etcdKeys(t, l, "h1", "")
	lan := l.Net + ".0/24"
	for subnet, want := range map[string]string{
		"127.0.0.0/24":     "loopback",
		"224.0.0.0/24":     "multicast",
		"169.254.10.0/24":  "link-local",
		"0.0.0.0/24":       "unspecified",
		"255.255.255.0/24": "broadcast",
		lan:                "interface eth0",
		"172.17.0.0/24":    "interface docker0",
	} {
		dockerFails(t, l, "h1", []string{"unsafe subnet", want},
			"network", "create", "-d", "podnet", "--ipam-driver", "podnet", "--subnet", subnet, "unsafe")
	}
	dockerFails(t, l, "h1", []string{"unsafe subnet", "link-local"},
		"network", "create", "-d", "podnet", "--ipam-driver", "podnet", "--ipv6", "--subnet", "10.86.0.0/24",
		"--subnet", "fe80::/64", "unsafe")
	if out, err := l.Exec("h1", "podnetctl", "network", "create", "lan", "--subnet", lan); err == nil ||
		!strings.Contains(err.Error(), "interface eth0") {
		t.Fatalf("podnetctl network create on the LAN: %v %s", err, out)
	}
	for body, want := range map[string]string{
		`{"AddressSpace":"podnet-local","Pool":"224.0.0.0/24"}`: "multicast",
		`{"AddressSpace":"podnet-local","Pool":"127.0.0.0/24"}`: "loopback",
		`{"AddressSpace":"../../x","Pool":"10.86.0.0/24"}`:      "unknown address space",
	} {
		out := l.MustExec(t, "h1", "curl", "-sS", "--max-time", "5", "--unix-socket", "/run/docker/plugins/podnet.sock",
			"-X", "POST", "http://podnet/IpamDriver.RequestPool", "-d", body)
		if !strings.Contains(out, `"Error"`) || !strings.Contains(out, want) {
			t.Fatalf("RequestPool %s through the socket: %s", body, out)
		}
	}
	if after := etcdKeys(t, l, "h1", ""); strings.Join(after, " ") != strings.Join(before, " ") {
		t.Fatalf("refused requests changed etcd:\nbefore %v\nafter  %v", before, after)
	}
}

// TestPluginBodyDeadline: 2000 connections to the plugin socket that send
// half a request body are answered and closed by podnetd after the body
// deadline, instead of each holding a connection (and a descriptor of
// podnetd's) forever.
func TestPluginBodyDeadline(t *testing.T) {
	l := single(t)
	pid := l.PIDs()["h1/podnetd"]
	fds := func() int {
		es, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
		return len(es)
	}
	base := fds()
	const n = 2000
	conns := make([]net.Conn, 0, n)
	t.Cleanup(func() {
		for _, c := range conns {
			c.Close()
		}
	})
	for i := range n {
		c, err := net.Dial("unix", l.PluginSocket("h1"))
		if err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		conns = append(conns, c)
		fmt.Fprintf(c, "POST /IpamDriver.RequestAddress HTTP/1.1\r\nHost: podnet\r\nContent-Length: 200\r\n\r\n{\"PoolID\":")
	}
	start := time.Now()
	t.Logf("%d half-sent requests open; podnetd holds %d descriptors (%d before)", n, fds(), base)
	closed := make(chan bool, n)
	for _, c := range conns {
		go func() {
			_ = c.SetReadDeadline(time.Now().Add(40 * time.Second))
			b, err := io.ReadAll(c)
			closed <- err == nil && strings.HasPrefix(string(b), "HTTP/1.1 408")
		}()
	}
	answered := 0
	for range n {
		if <-closed {
			answered++
		}
	}
	if answered != n {
		t.Fatalf("%d of %d half-sent requests were answered 408 and closed within 40s", answered, n)
	}
	t.Logf("all answered and closed %v after they were open; podnetd holds %d descriptors",
		time.Since(start).Round(100*time.Millisecond), fds())
	// And podnetd still answers.
	mustContain(t, "Plugin.Activate", l.MustExec(t, "h1", "curl", "-fsS", "--max-time", "5", "--unix-socket",
		"/run/docker/plugins/podnet.sock", "-X", "POST", "http://podnet/Plugin.Activate"), "IpamDriver")
}
