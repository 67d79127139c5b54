//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// LoadBalancer services on the 3-host lab: an L2 pool on the lab's LAN
// (its .240/28), answered for by one host; a BGP pool announced to a real
// router (BIRD in the client namespace).

// lbView is the part of podnetctl service get -o json these tests read.
type lbView struct {
	LoadBalancerIP string `json:"loadBalancerIP"`
	Ports          []struct {
		NodePort int `json:"nodePort"`
	} `json:"ports"`
	Status struct {
		LoadBalancer *struct {
			IP         string   `json:"ip"`
			Pool       string   `json:"pool"`
			Mode       string   `json:"mode"`
			Announcers []string `json:"announcers"`
		} `json:"loadBalancer"`
	} `json:"status"`
}

func lbGet(t *testing.T, l *Lab, host, name string) lbView {
	t.Helper()
	out := l.MustExec(t, host, "podnetctl", "service", "get", name, "-o", "json")
	var v lbView
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("service get %s: %v: %s", name, err, out)
	}
	return v
}

// lbApply applies a file of objects from h1 and deletes them when the
// test ends.
func lbApply(t *testing.T, l *Lab, name, content string) string {
	t.Helper()
	dir := filepath.Join(l.Dir, "lb")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, name+".yaml")
	if err := os.WriteFile(file, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = l.Exec("h1", "podnetctl", "delete", "-f", file) })
	return l.MustExec(t, "h1", "podnetctl", "apply", "-f", file)
}

// announcer polls until service name's address is announced by exactly
// one host (as host from sees it) and returns it.
func announcer(t *testing.T, l *Lab, from, name string, among ...string) string {
	t.Helper()
	var who string
	WaitFor(t, 30*time.Second, func() (bool, string) {
		v := lbGet(t, l, from, name)
		if v.Status.LoadBalancer == nil || len(v.Status.LoadBalancer.Announcers) != 1 {
			return false, fmt.Sprintf("%s announced by %+v", name, v.Status.LoadBalancer)
		}
		who = v.Status.LoadBalancer.Announcers[0]
		return len(among) == 0 || slices.Contains(among, who), fmt.Sprintf("%s announced by %s, want one of %v", name, who, among)
	})
	return who
}

// clientGets fetches http://addr/id from the outside client (the
// backend's container ID).
func clientGets(l *Lab, addr string) (string, error) {
	return l.Client("curl", "-fsS", "-m", "2", "http://"+addr+"/id")
}

// arpRepliers are the MACs answering an ARP request for addr on the LAN.
func arpRepliers(t *testing.T, l *Lab, addr string) []string {
	t.Helper()
	out := l.MustClient(t, "netcheck", "arp", "eth0", addr)
	macs := strings.Fields(out)
	slices.Sort(macs)
	return slices.Compact(macs)
}

func hostMAC(t *testing.T, l *Lab, host string) string {
	t.Helper()
	f := strings.Fields(l.MustExec(t, host, "ip", "-o", "link", "show", "eth0"))
	if i := slices.Index(f, "link/ether"); i >= 0 && i+1 < len(f) {
		return f[i+1]
	}
	t.Fatalf("%s: no MAC on eth0: %v", host, f)
	return ""
}

// linkDown takes host's LAN link down (the lab bridge's side of its
// veth) and brings it back when the test ends.
func linkDown(t *testing.T, l *Lab, host string) {
	t.Helper()
	veth := l.Name + "-" + host
	if out, err := exec.Command("ip", "link", "set", veth, "down").CombinedOutput(); err != nil {
		t.Fatalf("ip link set %s down: %v: %s", veth, err, out)
	}
	t.Cleanup(func() { _ = exec.Command("ip", "link", "set", veth, "up").Run() })
}

// TestLoadBalancerL2: the outside client reaches the service at an
// address of the LAN, exactly one host answers ARP for it (with its own
// MAC), another takes over when that host's link goes down, and with
// externalTrafficPolicy Local only a host with an endpoint answers.
func TestLoadBalancerL2(t *testing.T) {
	l := svcLab(t)
	backend(t, l, "h1", "l2-h1", "--network", svcNet, "-l", "app=l2")
	backend(t, l, "h2", "l2-h2", "--network", svcNet, "-l", "app=l2")
	backend(t, l, "h3", "l2local-h3", "--network", svcNet, "-l", "app=l2local")
	out := lbApply(t, l, "l2", fmt.Sprintf(`
- kind: LoadBalancerPool
  name: e2e-lan
  cidrs: [%s.240/28]
- name: l2
  selector: {app: l2}
  type: LoadBalancer
  ports: [{port: 80, targetPort: 8080}]
- name: l2local
  selector: {app: l2local}
  type: LoadBalancer
  externalTrafficPolicy: Local
  ports: [{port: 80, targetPort: 8080}]
`, l.Net))
	mustContain(t, "apply", out, "lbpool/e2e-lan created")
	v := lbGet(t, l, "h2", "l2")
	addr := v.LoadBalancerIP
	if !strings.HasPrefix(addr, l.Net+".24") && !strings.HasPrefix(addr, l.Net+".25") || v.Ports[0].NodePort == 0 ||
		v.Status.LoadBalancer == nil || v.Status.LoadBalancer.Pool != "e2e-lan" || v.Status.LoadBalancer.Mode != "L2" {
		t.Fatalf("service l2: %+v", v)
	}
	first := announcer(t, l, "h1", "l2")
	WaitFor(t, 30*time.Second, func() (bool, string) {
		id, err := clientGets(l, addr)
		return err == nil && id != "", fmt.Sprintf("client GET http://%s/id: %q %v", addr, id, err)
	})
	if got, want := arpRepliers(t, l, addr), hostMAC(t, l, first); !slices.Equal(got, []string{want}) {
		t.Fatalf("ARP for %s answered by %v, want only %s's %s", addr, got, first, want)
	}

	// Local: the host with the endpoint answers, none other.
	local := lbGet(t, l, "h1", "l2local").LoadBalancerIP
	announcer(t, l, "h1", "l2local", "h3")
	if got := arpRepliers(t, l, local); !slices.Equal(got, []string{hostMAC(t, l, "h3")}) {
		t.Fatalf("ARP for the Local address %s answered by %v, want only h3", local, got)
	}

	// The announcing host's LAN link goes down: another host answers and
	// the client is served again, within the liveness TTL + 3 s.
	linkDown(t, l, first)
	start := time.Now()
	WaitFor(t, 33*time.Second, func() (bool, string) {
		id, err := clientGets(l, addr)
		return err == nil && id != "", fmt.Sprintf("client GET after %s's link went down: %q %v", first, id, err)
	})
	t.Logf("L2 failover: served again %v after %s's link went down", time.Since(start).Round(10*time.Millisecond), first)
	other := "h1"
	if first == "h1" {
		other = "h2"
	}
	next := announcer(t, l, other, "l2")
	if next == first {
		t.Fatalf("%s still announced after its link went down", first)
	}
	if got := arpRepliers(t, l, addr); !slices.Equal(got, []string{hostMAC(t, l, next)}) {
		t.Fatalf("after failover ARP for %s answered by %v, want only %s", addr, got, next)
	}
	// The link comes back: the old host does not answer again.
	if out, err := exec.Command("ip", "link", "set", l.Name+"-"+first, "up").CombinedOutput(); err != nil {
		t.Fatalf("link up: %v: %s", err, out)
	}
	WaitFor(t, 30*time.Second, func() (bool, string) {
		out := l.MustExec(t, other, "podnetctl", "bgp", "-o", "json")
		return strings.Contains(out, `"host": "`+first+`"`), fmt.Sprintf("%s's announcer back: %s", first, out)
	})
	if got := arpRepliers(t, l, addr); !slices.Equal(got, []string{hostMAC(t, l, next)}) {
		t.Fatalf("with %s's link back, ARP for %s answered by %v, want only %s", first, addr, got, next)
	}
}

// TestLoadBalancerBGP: every host announces a Cluster service's address
// to the router (an ECMP route over the three), only hosts with an
// endpoint announce a Local one, and routes are withdrawn when the last
// local endpoint goes, when the service goes and when podnetd stops.
func TestLoadBalancerBGP(t *testing.T) {
	l := svcLab(t)
	b := startBird(t, l)
	backend(t, l, "h1", "bgp-h1", "--network", svcNet, "-l", "app=bgp")
	backend(t, l, "h2", "bgp-h2", "--network", svcNet, "-l", "app=bgp")
	out := lbApply(t, l, "bgp", fmt.Sprintf(`
- kind: LoadBalancerPool
  name: e2e-routed
  mode: BGP
  cidrs: [10.99.7.0/24]
- kind: BGPPeer
  name: e2e-router
  peerAddress: %s
  peerASN: %d
  myASN: %d
  holdTime: 9s
- name: bgp
  selector: {app: bgp}
  type: LoadBalancer
  loadBalancerIP: 10.99.7.10
  ports: [{port: 80, targetPort: 8080}]
- name: bgplocal
  selector: {app: bgp}
  type: LoadBalancer
  loadBalancerIP: 10.99.7.11
  externalTrafficPolicy: Local
  ports: [{port: 80, targetPort: 8080}]
`, l.ClientIP(), routerASN, hostASN))
	mustContain(t, "apply", out, "bgppeer/e2e-router created")
	b.waitHops(t, time.Minute, "10.99.7.10", "h1", "h2", "h3")
	b.waitHops(t, 30*time.Second, "10.99.7.11", "h1", "h2")
	for _, a := range []string{"10.99.7.10", "10.99.7.11"} {
		if id, err := clientGets(l, a); err != nil || id == "" {
			t.Fatalf("client GET http://%s/id over the BGP route: %q %v", a, id, err)
		}
	}
	mustContain(t, "service get shows the announcers", l.MustExec(t, "h3", "podnetctl", "service", "get", "bgplocal"),
		"announced by h1, h2")
	mustContain(t, "podnetctl bgp", l.MustExec(t, "h2", "podnetctl", "bgp"), "Established")
	mustContain(t, "metrics", l.MustExec(t, "h1", "curl", "-s", "http://127.0.0.1:9477/metrics"), `podnet_bgp_session_up{peer="e2e-router"} 1`)

	// The last local endpoint leaves h2: h2 withdraws the Local route.
	l.MustDocker(t, "h2", "rm", "-f", "bgp-h2")
	took := b.waitHops(t, 30*time.Second, "10.99.7.11", "h1")
	t.Logf("Local route withdrawn from h2 %v after its last endpoint left", took.Round(10*time.Millisecond))
	// A clean stop of h1's podnetd withdraws its routes at once.
	if err := l.PodnetdStop("h1", false); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.PodnetdStart("h1") })
	b.waitHops(t, 15*time.Second, "10.99.7.10", "h2", "h3")
	b.waitHops(t, 15*time.Second, "10.99.7.11")
	if err := l.PodnetdStart("h1"); err != nil {
		t.Fatal(err)
	}
	b.waitHops(t, time.Minute, "10.99.7.10", "h1", "h2", "h3")
	// The service goes: every host withdraws.
	l.MustExec(t, "h3", "podnetctl", "service", "rm", "bgp")
	b.waitHops(t, 30*time.Second, "10.99.7.10")
}

// TestLoadBalancerBadInput: what podnetctl apply refuses, with the
// problem named, storing nothing.
func TestLoadBalancerBadInput(t *testing.T) {
	l := svcLab(t)
	t.Cleanup(func() { _, _ = l.Exec("h1", "podnetctl", "lbpool", "rm", "bad") })
	lbApply(t, l, "base", `
- kind: LoadBalancerPool
  name: e2e-base
  cidrs: [10.98.0.0/28]
- name: holder
  selector: {app: none}
  type: LoadBalancer
  loadBalancerIP: 10.98.0.5
  ports: [{port: 80}]
`)
	before := l.MustExec(t, "h1", "podnetctl", "lbpool", "ls")
	dir := filepath.Join(l.Dir, "lb")
	for _, tc := range []struct{ name, file, want string }{
		{"overlapping pools", "kind: LoadBalancerPool\nname: bad\ncidrs: [10.98.0.8/29]\n", "10.98.0.8/29 overlaps 10.98.0.0/28 of pool e2e-base"},
		{"service CIDR", "kind: LoadBalancerPool\nname: bad\ncidrs: [10.96.200.0/24]\n", "overlaps the service CIDR"},
		{"podnet pool", "kind: LoadBalancerPool\nname: bad\ncidrs: [10.72.9.0/24]\n", "overlaps podnet pool 10.72.0.0/16"},
		{"host address", fmt.Sprintf("kind: LoadBalancerPool\nname: bad\ncidrs: [%s.8/29]\n", l.Net), "the underlay address of host h"},
		{"outside pools", "name: bad\nselector: {a: b}\ntype: LoadBalancer\nloadBalancerIP: 10.98.1.1\nports: [{port: 80}]\n", "is outside every load-balancer pool"},
		{"taken", "name: bad\nselector: {a: b}\ntype: LoadBalancer\nloadBalancerIP: 10.98.0.5\nports: [{port: 80}]\n", "loadBalancerIP 10.98.0.5 is taken by service holder"},
		{"peer address", "kind: BGPPeer\nname: bad\npeerAddress: router1\npeerASN: 64513\nmyASN: 64512\n", `peerAddress "router1" is not an IP address`},
		{"peer ASN", "kind: BGPPeer\nname: bad\npeerAddress: 10.98.2.1\npeerASN: 4294967296\nmyASN: 64512\n", "peerASN 4294967296 is out of range"},
		{"unknown field", "kind: LoadBalancerPool\nname: bad\ncidrs: [10.98.3.0/24]\navoidBuggyIPs: true\n", `line 4: unknown field "avoidBuggyIPs"`},
	} {
		file := filepath.Join(dir, "bad.yaml")
		if err := os.WriteFile(file, []byte(tc.file), 0o644); err != nil {
			t.Fatal(err)
		}
		out, err := l.Exec("h2", "podnetctl", "apply", "-f", file)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: apply = %q, %v; want an error containing %q", tc.name, out, err, tc.want)
		}
	}
	if after := l.MustExec(t, "h1", "podnetctl", "lbpool", "ls"); after != before {
		t.Fatalf("refused files changed the pools:\n%s\nthen\n%s", before, after)
	}
	if out, _ := l.Exec("h1", "podnetctl", "bgppeer", "ls", "-o", "json"); strings.Contains(out, `"bad"`) {
		t.Fatalf("a refused peer was stored: %s", out)
	}
	_, err := l.Exec("h1", "podnetctl", "lbpool", "rm", "e2e-base")
	if err == nil || !strings.Contains(err.Error(), "10.98.0.5 (service holder)") {
		t.Fatalf("removing a pool in use: %v", err)
	}
}
