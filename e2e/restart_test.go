//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// TestPodnetdKill9: running containers keep their network while podnetd is
// dead and after it returns; new containers work afterwards and no address
// is handed out twice; published ports survive.
func TestPodnetdKill9(t *testing.T) {
	l := single(t)
	podnetNet(t, l, "h1", "k9", "--subnet", "10.61.0.0/24")
	run(t, l, "h1", "k1", sleeper("--network", "k9")...)
	run(t, l, "h1", "k2", webArgs("--network", "k9", "-p", "8180:80")...)
	ip2, _ := l.ContainerIP("h1", "k2", "k9")
	host := l.HostIP("h1")
	url := "http://" + host + ":8180/passwd"
	WaitFor(t, shortWait, func() (bool, string) { out, err := curlClient(l, url); return err == nil, fmt.Sprint(err, out) })

	if err := l.PodnetdStop("h1", true); err != nil {
		t.Fatal(err)
	}
	podnetdUp := false
	t.Cleanup(func() {
		if !podnetdUp {
			_ = l.PodnetdStart("h1")
		}
	})
	if !ping(l, "h1", "k1", ip2) {
		t.Fatal("containers lost connectivity while podnetd was dead")
	}
	if out, err := curlClient(l, url); err != nil {
		t.Fatalf("published port stopped answering while podnetd was dead: %v %s", err, out)
	}
	if err := l.PodnetdStart("h1"); err != nil {
		t.Fatal(err)
	}
	podnetdUp = true
	if !ping(l, "h1", "k1", ip2) {
		t.Fatal("containers lost connectivity after podnetd returned")
	}
	if out, err := curlClient(l, url); err != nil {
		t.Fatalf("published port lost after restart: %v %s", err, out)
	}
	// New containers get fresh, distinct addresses and reach the old ones.
	seen := map[string]string{}
	for _, n := range []string{"k1", "k2"} {
		ip, _ := l.ContainerIP("h1", n, "k9")
		seen[ip] = n
	}
	for i := 3; i <= 6; i++ {
		name := fmt.Sprintf("k%d", i)
		run(t, l, "h1", name, sleeper("--network", "k9")...)
		ip, _ := l.ContainerIP("h1", name, "k9")
		if other, dup := seen[ip]; dup {
			t.Fatalf("%s got %s, already held by %s", name, ip, other)
		}
		seen[ip] = name
	}
	if !ping(l, "h1", "k6", ip2) {
		t.Fatal("a container started after the restart cannot reach an old one")
	}
	// The published port of the old container is still known (no reuse).
	dockerFails(t, l, "h1", []string{"8180/tcp", "already published"}, webArgs("run", "--rm", "--network", "k9", "-p", "8180:80")...)
}

// TestRemovedWhilePodnetdDown: a container removed while podnetd is down
// never gets its Leave/DeleteEndpoint/ReleaseAddress through; once podnetd
// is back, reconciliation with Docker reclaims its address and veth.
func TestRemovedWhilePodnetdDown(t *testing.T) {
	l := single(t)
	podnetNet(t, l, "h1", "gcnet", "--subnet", "10.62.0.0/24")
	run(t, l, "h1", "g1", sleeper("--network", "gcnet")...)
	ip, _ := l.ContainerIP("h1", "g1", "gcnet")
	ep := endpointOf(t, l, "h1", "g1", "gcnet")
	addrKey := "ipam/10.62.0.0-24/addrs/" + hexIP(ip)
	if !contains(etcdKeys(t, l, "h1", addrKey), addrKey) {
		t.Fatalf("address %s not in etcd", ip)
	}

	if err := l.PodnetdStop("h1", true); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	// dockerd retries the unreachable plugin (~30 s per call) and then
	// removes the container anyway.
	if out, err := l.Docker("h1", "rm", "-f", "g1"); err != nil {
		t.Logf("docker rm while podnetd is down: %v %s", err, out)
	}
	t.Logf("docker rm took %v with podnetd down", time.Since(start).Round(time.Second))
	if err := l.PodnetdStart("h1"); err != nil {
		t.Fatal(err)
	}
	WaitFor(t, 2*time.Minute, func() (bool, string) {
		if _, err := l.Docker("h1", "inspect", "g1"); err == nil {
			return false, "container g1 still exists"
		}
		return true, ""
	})
	// Ask for a round now instead of waiting for the periodic one.
	l.MustExec(t, "h1", "podnetctl", "gc", "--grace", "0s")
	if contains(etcdKeys(t, l, "h1", addrKey), addrKey) {
		t.Fatalf("address %s not reclaimed", ip)
	}
	if contains(etcdKeys(t, l, "h1", "endpoints/h1/"), "endpoints/h1/"+ep.ID) {
		t.Fatal("endpoint record not reclaimed")
	}
	if vs := links(t, l, "h1", "pnh"+ep.ID[:12]); len(vs) != 0 {
		t.Fatalf("veth not reclaimed: %v", vs)
	}
	// The address can be taken again.
	run(t, l, "h1", "g2", sleeper("--network", "gcnet", "--ip", ip)...)
}

// TestDockerdRestart: containers with --restart=always on a podnet network
// come back with working networking after dockerd restarts, gracefully and
// after kill -9.
func TestDockerdRestart(t *testing.T) {
	l := single(t)
	podnetNet(t, l, "h1", "rs", "--subnet", "10.63.0.0/24")
	run(t, l, "h1", "ra", sleeper("--network", "rs", "--restart", "always")...)
	run(t, l, "h1", "rb", webArgs("--network", "rs", "--restart", "always", "-p", "8280:80")...)
	for _, kill := range []bool{false, true} {
		if err := l.DockerdStop("h1", kill); err != nil {
			t.Fatal(err)
		}
		if err := l.DockerdStart("h1"); err != nil {
			t.Fatal(err)
		}
		WaitFor(t, time.Minute, func() (bool, string) {
			out, _ := l.Docker("h1", "ps", "--filter", "status=running", "--format", "{{.Names}}")
			return strings.Contains(out, "ra") && strings.Contains(out, "rb"), out
		})
		ipb, err := l.ContainerIP("h1", "rb", "rs")
		if err != nil {
			t.Fatal(err)
		}
		WaitFor(t, shortWait, func() (bool, string) {
			return ping(l, "h1", "ra", ipb), "ra cannot ping rb at " + ipb
		})
		WaitFor(t, shortWait, func() (bool, string) {
			out, err := curlClient(l, "http://"+l.HostIP("h1")+":8280/passwd")
			return err == nil, fmt.Sprint("published port after dockerd restart: ", err, out)
		})
		// Exactly the running containers' endpoints exist: nothing leaked by
		// the restart (after GC of what Docker dropped).
		l.MustExec(t, "h1", "podnetctl", "gc", "--grace", "0s")
		eps := endpoints(t, l, "h1")
		if len(eps) != 2 {
			t.Fatalf("kill=%v: podnetd holds %d endpoints, want 2: %+v", kill, len(eps), eps)
		}
		for _, e := range eps {
			if _, err := netip.ParsePrefix(e.IPv4); err != nil {
				t.Fatalf("endpoint %+v", e)
			}
		}
		if vs := links(t, l, "h1", "pnh"); len(vs) != 2 {
			t.Fatalf("kill=%v: %d host veths, want 2: %v", kill, len(vs), vs)
		}
	}
}

// TestDockerRestartBackInServices: dockerd stopped for 12 s (a doubling
// backoff from 250 ms would then sleep 8 s more) and started again: the
// watcher resyncs within a second of dockerd answering, and a
// --restart=always container that selects into a service is back among
// its ready endpoints within two seconds of running again.
func TestDockerRestartBackInServices(t *testing.T) {
	l := svcLab(t)
	run(t, l, "h1", "rsvc", sleeper("--network", svcNet, "--restart", "always", "-l", "app=rsvc")...)
	service(t, l, "h1", "rsvc", "--selector", "app=rsvc", "--port", "80")
	endpointsAre(t, l, "rsvc", "h1/rsvc/"+ipOf(t, l, "h1", "rsvc", svcNet)+"/true")

	if err := l.DockerdStop("h1", false); err != nil {
		t.Fatal(err)
	}
	WaitFor(t, shortWait, func() (bool, string) {
		n := readyOn(t, l, "h1", "rsvc")
		return n == 0, fmt.Sprintf("rsvc still has %d ready endpoints with dockerd stopped", n)
	})
	time.Sleep(12 * time.Second) // the outage itself: nothing to poll for
	started := make(chan error, 1)
	go func() { started <- l.DockerdStart("h1") }()
	// When dockerd first answers, and when h1 shows the container ready
	// in the service again (at its new or old address).
	var answered, back time.Time
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) && back.IsZero() {
		if answered.IsZero() {
			if _, err := l.Docker("h1", "version", "--format", "{{.Server.Version}}"); err == nil {
				answered = time.Now()
			}
		} else if ready := readyOn(t, l, "h1", "rsvc"); ready == 1 {
			back = time.Now()
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := <-started; err != nil {
		t.Fatal(err)
	}
	if back.IsZero() {
		t.Fatalf("rsvc not back in its service 2 minutes after dockerd started (answered: %v)", !answered.IsZero())
	}
	out := l.MustDocker(t, "h1", "inspect", "-f", "{{.State.StartedAt}}", "rsvc")
	running, err := time.Parse(time.RFC3339Nano, out)
	if err != nil {
		t.Fatal(err)
	}
	from := answered
	if running.After(from) {
		from = running
	}
	t.Logf("dockerd answered %v after the container ran; back in the service %v after both",
		answered.Sub(running).Round(10*time.Millisecond), back.Sub(from).Round(10*time.Millisecond))
	// The poll itself takes up to a few hundred milliseconds a round.
	if d := back.Sub(from); d > 2*time.Second+500*time.Millisecond {
		t.Fatalf("back in the service %v after dockerd answered and the container ran, want within 2 s", d)
	}
}

// readyOn counts the ready endpoints of service name as host sees them.
func readyOn(t *testing.T, l *Lab, host, name string) int {
	t.Helper()
	out, err := l.Exec(host, "podnetctl", "service", "get", name, "-o", "json")
	if err != nil {
		return -1
	}
	var v svcView
	if json.Unmarshal([]byte(out), &v) != nil {
		return -1
	}
	n := 0
	for _, e := range v.Status.Endpoints {
		if e.Ready {
			n++
		}
	}
	return n
}
