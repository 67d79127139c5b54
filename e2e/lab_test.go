//go:build e2e

package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestLabSmoke checks the lab itself (no podnetd needed): one host with an
// embedded-etcd setup, a container on Docker's default bridge reaching its
// gateway, the client reaching the host, and a down that leaves nothing.
func TestLabSmoke(t *testing.T) {
	l := UpWith(t, Options{N: 1, Etcd: EtcdEmbedded, NoPodnetd: true})

	pids := l.PIDs()
	for _, k := range []string{"h1/dockerd", "h1/containerd"} {
		if pid, ok := pids[k]; !ok || !ProcessAlive(pid) {
			t.Fatalf("%s: not running after up (pids %v)", k, pids)
		}
	}

	env := l.MustExec(t, "h1", "sh", "-c", `echo "$LAB_HOST $DOCKER_HOST"`)
	if want := "h1 unix://" + l.DockerSocket("h1"); env != want {
		t.Errorf("exec environment: got %q, want %q", env, want)
	}
	out := l.MustDocker(t, "h1", "run", "--rm", TestImage, "sh", "-c",
		`gw=$(ip route | awk '/^default/ {print $3}'); echo "gateway $gw"; ping -c 1 -W 2 "$gw"`)
	if !strings.Contains(out, "1 packets received") {
		t.Errorf("container could not ping its gateway:\n%s", out)
	}
	l.MustClient(t, "busybox", "ping", "-c", "1", "-W", "2", l.HostIP("h1"))

	if err := l.Down(); err != nil {
		t.Fatalf("down: %v", err)
	}
	if err := l.Down(); err != nil {
		t.Fatalf("second down: %v", err)
	}
	assertNothingLeft(t, l, pids)
}

// TestLabCluster checks a 3-host lab with the 3-member etcd cluster: every
// dockerd runs containers, hosts reach each other and etcd, and the etcd and
// dockerd stop/start commands work.
func TestLabCluster(t *testing.T) {
	l := UpWith(t, Options{N: 3, Etcd: EtcdCluster, NoPodnetd: true})
	eps := strings.Join(l.EtcdEndpoints(), ",")

	for _, h := range l.Hosts() {
		if out := l.MustDocker(t, h, "run", "--rm", TestImage, "echo", "hi from "+h); out != "hi from "+h {
			t.Errorf("%s: docker run printed %q", h, out)
		}
	}
	l.MustExec(t, "h1", "busybox", "ping", "-c", "1", "-W", "2", l.HostIP("h3"))
	l.MustExec(t, "h2", "etcdctl", "--endpoints", eps, "endpoint", "health")

	// One member down: the cluster keeps its quorum, after an election if the
	// member was the leader. (etcdctl 3.4 does not fail a write over from a
	// dead endpoint: name the live ones.)
	if err := l.EtcdStop(1, true); err != nil {
		t.Fatal(err)
	}
	live := strings.Join(l.EtcdEndpoints()[1:], ",")
	WaitFor(t, 30*time.Second, func() (bool, string) {
		out, err := l.Exec("h2", "etcdctl", "--endpoints", live, "--command-timeout", "2s", "put", "/podnet-e2e/lab", "ok")
		return err == nil, out + errString(err)
	})
	if err := l.EtcdStart(1); err != nil {
		t.Fatal(err)
	}
	WaitFor(t, 30*time.Second, func() (bool, string) {
		out, err := l.Exec("h3", "etcdctl", "--endpoints", eps, "endpoint", "health")
		return err == nil, out + errString(err)
	})

	// dockerd killed and restarted.
	before := l.PIDs()["h2/dockerd"]
	if err := l.DockerdStop("h2", true); err != nil {
		t.Fatal(err)
	}
	if ProcessAlive(before) {
		t.Fatalf("h2 dockerd (pid %d) survived dockerd-stop --kill", before)
	}
	if err := l.DockerdStart("h2"); err != nil {
		t.Fatal(err)
	}
	if after := l.PIDs()["h2/dockerd"]; after == before || !ProcessAlive(after) {
		t.Fatalf("h2 dockerd: pid %d before, %d after restart", before, after)
	}
	l.MustDocker(t, "h2", "run", "--rm", TestImage, "true")
}

// TestLabPodnetd checks the lab's podnetd wiring: the plugin socket dockerd
// discovers answers, podnetd restarts, and the host's dockerd finds the
// podnet driver and IPAM driver.
func TestLabPodnetd(t *testing.T) {
	RequirePodnetd(t)
	l := Up(t, 1, EtcdEmbedded)

	act := l.MustExec(t, "h1", "curl", "-fsS", "--max-time", "5", "--unix-socket", "/run/docker/plugins/podnet.sock",
		"-X", "POST", "http://podnet/Plugin.Activate")
	if !strings.Contains(act, "NetworkDriver") || !strings.Contains(act, "IpamDriver") {
		t.Fatalf("Plugin.Activate: %s", act)
	}

	before := l.PIDs()["h1/podnetd"]
	if err := l.PodnetdStop("h1", true); err != nil {
		t.Fatal(err)
	}
	if ProcessAlive(before) {
		t.Fatalf("podnetd (pid %d) survived podnetd-stop --kill", before)
	}
	if err := l.PodnetdStart("h1"); err != nil {
		t.Fatal(err)
	}
	if after := l.PIDs()["h1/podnetd"]; after == before || !ProcessAlive(after) {
		t.Fatalf("podnetd: pid %d before, %d after restart", before, after)
	}

	l.MustDocker(t, "h1", "network", "create", "-d", "podnet", "--ipam-driver", "podnet",
		"--subnet", "10.77.0.0/24", "e2e-lab")
	l.MustDocker(t, "h1", "network", "rm", "e2e-lab")
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return " " + err.Error()
}

// assertNothingLeft checks that no netns, link, process, mount, cgroup,
// iptables rule or state directory of the lab remains.
func assertNothingLeft(t *testing.T, l *Lab, pids map[string]int) {
	t.Helper()
	prefix := l.Name + "-"
	if out, _ := exec.Command("ip", "netns", "list").Output(); hasLinePrefix(string(out), prefix) {
		t.Errorf("netns left after down:\n%s", out)
	}
	if out, _ := exec.Command("ip", "-o", "link").Output(); linkLeft(string(out), prefix) {
		t.Errorf("links left after down:\n%s", out)
	}
	for k, pid := range pids {
		if ProcessAlive(pid) {
			t.Errorf("%s (pid %d) still runs after down", k, pid)
		}
	}
	if out, err := exec.Command("pgrep", "-a", "-f", l.Dir+"/").Output(); err == nil {
		t.Errorf("processes mentioning %s still run after down:\n%s", l.Dir, out)
	}
	if mi, err := os.ReadFile("/proc/self/mountinfo"); err == nil {
		for _, line := range strings.Split(string(mi), "\n") {
			if f := strings.Fields(line); len(f) > 4 && (f[4] == l.Dir || strings.HasPrefix(f[4], l.Dir+"/")) {
				t.Errorf("still mounted after down: %s", f[4])
			}
		}
	}
	if out, err := exec.Command("iptables", "-w", "-S", "FORWARD").Output(); err == nil &&
		strings.Contains(string(out), "podnet-lab:"+l.Name) {
		t.Errorf("root FORWARD rules left after down:\n%s", out)
	}
	if m, _ := filepath.Glob("/sys/fs/cgroup/*/" + prefix + "h*"); len(m) > 0 {
		t.Errorf("cgroups left after down: %v", m)
	}
	if _, err := os.Stat(l.Dir); err == nil {
		t.Errorf("%s still exists after down", l.Dir)
	}
}

func hasLinePrefix(s, prefix string) bool {
	for _, line := range strings.Split(s, "\n") {
		if strings.HasPrefix(line, prefix) {
			return true
		}
	}
	return false
}

// linkLeft reports whether `ip -o link` output ("3: name@peer: <...") names a
// link starting with prefix.
func linkLeft(s, prefix string) bool {
	for _, line := range strings.Split(s, "\n") {
		f := strings.SplitN(line, ": ", 3)
		if len(f) >= 2 {
			if _, err := strconv.Atoi(f[0]); err == nil && strings.HasPrefix(f[1], prefix) {
				return true
			}
		}
	}
	return false
}
