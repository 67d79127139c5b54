//go:build e2e

package e2e

import (
	"bufio"
	"fmt"
	"maps"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// podmanImage is the busybox test image, imported into a host's podman.
const podmanImage = "localhost/podnet-test/busybox:latest"

// podman runs podman on host (scripts/lab.sh podman).
func podman(l *Lab, host string, args ...string) (string, error) {
	return l.exec("podman", append([]string{host}, args...)...)
}

func mustPodman(t *testing.T, l *Lab, host string, args ...string) string {
	t.Helper()
	out, err := podman(l, host, args...)
	if err != nil {
		t.Fatalf("%s: podman %s: %v", host, strings.Join(args, " "), err)
	}
	return out
}

// podmanNet readies host's podman for network: the test image, and the
// conflist podnetctl prints (CNI 1.0.0: podman 4's libcni reads no
// newer results). Every podman container is removed when the test ends.
func podmanNet(t *testing.T, l *Lab, host, network string) {
	t.Helper()
	if _, err := podman(l, host, "image", "exists", podmanImage); err != nil {
		mustPodman(t, l, host, "import", "-q", filepath.Join(l.Dir, "busybox.tar"), podmanImage)
	}
	conf := l.MustExec(t, host, "podnetctl", "cni-config", network, "--cni-version", "1.0.0")
	path := filepath.Join(l.HostDir(host), "podman", "net.d", network+".conflist")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if out, err := podman(l, host, "rm", "-af", "-t", "0"); err != nil {
			t.Errorf("%s: podman rm -af: %v %s", host, err, out)
		}
		_ = os.Remove(path)
	})
}

// podmanIP is a podman container's address on network.
func podmanIP(t *testing.T, l *Lab, host, name, network string) string {
	t.Helper()
	return strings.TrimSpace(mustPodman(t, l, host, "inspect", "-f",
		fmt.Sprintf(`{{with index .NetworkSettings.Networks %q}}{{.IPAddress}}{{end}}`, network), name))
}

// podmanService runs podman's API on host (podnetd follows it at its
// default socket, the host's private /run/podman/podman.sock) until the
// test ends.
func podmanService(t *testing.T, l *Lab, host string) {
	t.Helper()
	cmd := exec.Command(l.script, "podman", host, "system", "service", "--time", "0")
	cmd.Env = l.env
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = syscall.Kill(cmd.Process.Pid, syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _, _ = cmd.Process.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = syscall.Kill(cmd.Process.Pid, syscall.SIGKILL)
		}
	})
}

// TestPodmanBesideDocker: podman containers on a podnet network share it
// with Docker's, on one host and across hosts: each reaches the others by
// address and by name (podman's --network-alias too), `podman run -p`
// publishes through podnet's table, a service selects a podman container
// by its label, and `podman rm` frees the address, the published port
// and the endpoint.
func TestPodmanBesideDocker(t *testing.T) {
	l := multi(t)
	const network, subnet, pool = "pmix", "10.62.0.0/16", "10.62.0.0-16"
	clusterNet(t, l, network, subnet)
	podmanNet(t, l, "h1", network)
	podmanNet(t, l, "h2", network)
	podmanService(t, l, "h1")

	mustPodman(t, l, "h1", "run", "-d", "--name", "pmweb", "--network", network, "--network-alias", "pmalias",
		"--label", "app=pmweb", "-p", "18480:80", podmanImage, "httpd", "-f", "-p", "80", "-h", "/etc")
	mustPodman(t, l, "h2", "run", "-d", "--name", "pmsleep", "--network", network, podmanImage, "sleep", "1d")
	run(t, l, "h1", "dkone", sleeper("--network", network, "--dns", dnsAddr)...)
	run(t, l, "h2", "dktwo", sleeper("--network", network, "--dns", dnsAddr)...)
	webIP, sleepIP := podmanIP(t, l, "h1", "pmweb", network), podmanIP(t, l, "h2", "pmsleep", network)
	dk1, dk2 := ipOf(t, l, "h1", "dkone", network), ipOf(t, l, "h2", "dktwo", network)
	for _, ip := range []string{webIP, sleepIP} {
		if !netip.MustParsePrefix(subnet).Contains(netip.MustParseAddr(ip)) {
			t.Fatalf("podman container address %s is not in %s", ip, subnet)
		}
	}

	// By address and by name: podman -> Docker and podman on the same and
	// the other host, Docker -> podman likewise.
	podmanReaches := func(host, from, to string) {
		t.Helper()
		WaitFor(t, shortWait, func() (bool, string) {
			out, err := podman(l, host, "exec", from, "ping", "-c", "1", "-W", "2", to)
			return err == nil, fmt.Sprintf("podman %s on %s cannot reach %s: %v %s", from, host, to, err, out)
		})
	}
	dockerReaches := func(host, from, to string) {
		t.Helper()
		WaitFor(t, shortWait, func() (bool, string) {
			return ping(l, host, from, to), fmt.Sprintf("%s on %s cannot reach %s", from, host, to)
		})
	}
	for _, to := range []string{dk1, dk2, sleepIP, "dkone", "dktwo", "pmsleep"} {
		podmanReaches("h1", "pmweb", to)
	}
	for _, to := range []string{webIP, dk1, "pmweb", "pmalias", "dkone"} {
		podmanReaches("h2", "pmsleep", to)
	}
	for _, to := range []string{webIP, "pmweb", "pmalias", "pmsleep"} {
		dockerReaches("h1", "dkone", to)
		dockerReaches("h2", "dktwo", to)
	}
	// podman writes the cluster DNS into the container's resolv.conf.
	mustContain(t, "podman container's resolv.conf", mustPodman(t, l, "h2", "exec", "pmsleep", "cat", "/etc/resolv.conf"), "nameserver "+dnsAddr)

	// podman run -p: from the outside client, and from a Docker container.
	WaitFor(t, shortWait, func() (bool, string) {
		out, err := curlClient(l, "http://"+l.HostIP("h1")+":18480/passwd")
		return err == nil && strings.Contains(out, "root:"), fmt.Sprintf("podman -p 18480: %v %s", err, out)
	})
	if out, err := fetch(l, "h2", "dktwo", "http://pmweb/group"); err != nil || !strings.Contains(out, "root:") {
		t.Fatalf("dktwo fetching from pmweb by name: %v %s", err, out)
	}

	// A service selects the podman container by its label (podnetd reads
	// labels from podman's API), and serves from every host.
	service(t, l, "h1", "pmweb", "--selector", "app=pmweb", "--port", "http:80:80")
	endpointsAre(t, l, "pmweb", "h1/pmweb/"+webIP+"/true")
	WaitFor(t, shortWait, func() (bool, string) {
		out, err := fetch(l, "h2", "dktwo", "http://pmweb.svc.podnet.local/passwd")
		return err == nil && strings.Contains(out, "root:"), fmt.Sprintf("service pmweb from h2: %v %s", err, out)
	})

	// podman rm frees the address, the port and the endpoint.
	mustPodman(t, l, "h1", "rm", "-f", "-t", "0", "pmweb")
	if _, ok := containerAddrs(t, l, pool)[webIP]; ok {
		t.Fatalf("address %s still recorded after podman rm", webIP)
	}
	for _, a := range attachments(t, l, "h1", network) {
		if a.IPv4 == webIP+"/16" {
			t.Fatalf("attachment left after podman rm: %+v", a)
		}
	}
	if rules := l.MustExec(t, "h1", "nft", "list", "table", "inet", "podnet"); strings.Contains(rules, "18480") {
		t.Fatal("published port 18480 still in podnet's table after podman rm")
	}
	endpointsAre(t, l, "pmweb")
}

// TestPodmanPodnetdKilled: podnetd is killed with SIGKILL in the middle
// of podman starts, twice, and started again: once right after IPAM
// wrote a new address (the endpoint is not recorded yet), once right
// after the endpoint was recorded (the plugin has not configured the
// container yet). Starts that failed leave nothing once garbage
// collection ran; those that succeeded keep unique addresses that etcd
// records for them; every address has a live owner, every interface an
// endpoint.
func TestPodmanPodnetdKilled(t *testing.T) {
	l := multi(t)
	const network, subnet, pool = "pmkill", "10.63.0.0/16", "10.63.0.0-16"
	clusterNet(t, l, network, subnet)
	podmanNet(t, l, "h1", network)
	writes := etcdWatch(t, l, "h1", "/podnet/v1/")

	const starts = 10
	results := make(chan error, starts)
	go func() {
		for i := range starts {
			_, err := podman(l, "h1", "run", "-d", "--name", fmt.Sprintf("pk%d", i), "--network", network, podmanImage, "sleep", "1d")
			results <- err
		}
	}()
	// The moments to kill at, in order: a container address written
	// without its endpoint yet, then an endpoint record of h1 written.
	moments := []func(key, value string) bool{
		func(key, value string) bool {
			return strings.Contains(key, "/ipam/"+pool+"/addrs/") && strings.Contains(value, `"kind":"container"`) && !strings.Contains(value, `"endpoint"`)
		},
		func(key, _ string) bool { return strings.HasPrefix(key, "/podnet/v1/endpoints/h1/") },
	}
	kills, failed := 0, 0
	deadline := time.After(3 * time.Minute)
	for done := 0; done < starts; {
		select {
		case err := <-results:
			done++
			if err != nil {
				failed++
			}
		case w := <-writes:
			// After a first start that worked, so the network is in use.
			if kills == len(moments) || done < 1 || !moments[kills](w.key, w.value) {
				continue
			}
			// etcd stops first, so that podnetd's next write (if it has
			// not sent it yet) cannot land before podnetd dies.
			pids := l.PIDs()
			members := []int{pids["etcd1"], pids["etcd2"], pids["etcd3"]}
			for _, m := range members {
				_ = syscall.Kill(m, syscall.SIGSTOP)
			}
			err := syscall.Kill(pids["h1/podnetd"], syscall.SIGKILL)
			for _, m := range members {
				_ = syscall.Kill(m, syscall.SIGCONT)
			}
			if err != nil {
				t.Fatalf("kill -9 podnetd (pid %d): %v", pids["h1/podnetd"], err)
			}
			kills++
			t.Logf("podnetd killed right after writing %s", w.key)
			WaitFor(t, shortWait, func() (bool, string) {
				return !ProcessAlive(pids["h1/podnetd"]), "the killed podnetd is still alive"
			})
			if err := l.PodnetdStart("h1"); err != nil {
				t.Fatal(err)
			}
		case <-deadline:
			t.Fatalf("podman starts still running after 3 minutes (%d done)", done)
		}
	}
	if kills != len(moments) {
		t.Fatalf("podnetd was killed %d times, want %d (the moments never came)", kills, len(moments))
	}
	// Collect what was left behind, at once (nothing is starting now).
	WaitFor(t, shortWait, func() (bool, string) {
		out, err := l.Exec("h1", "podnetctl", "gc", "--grace", "0s")
		if err == nil {
			t.Logf("%d of %d starts failed; podnetctl gc:\n%s", failed, starts, out)
		}
		return err == nil, fmt.Sprintf("podnetctl gc: %v %s", err, out)
	})
	running := map[string]string{} // address -> container ID
	for _, line := range strings.Split(mustPodman(t, l, "h1", "ps", "--format", "{{.ID}}", "--no-trunc"), "\n") {
		id := strings.TrimSpace(line)
		if id == "" {
			continue
		}
		ip := podmanIP(t, l, "h1", id, network)
		if other, dup := running[ip]; dup {
			t.Fatalf("containers %s and %s share address %s", other, id, ip)
		}
		running[ip] = id
	}
	if len(running) < 2 {
		t.Fatalf("only %d podman containers survived to check", len(running))
	}
	as := attachments(t, l, "h1", network)
	byIP := map[string]attachment{}
	for _, a := range as {
		byIP[strings.Split(a.IPv4, "/")[0]] = a
	}
	addrs := containerAddrs(t, l, pool)
	for ip, id := range running {
		if a, ok := byIP[ip]; !ok || a.CNI.ContainerID != id {
			t.Fatalf("running container %s (%s) has no attachment of its own: %+v", id, ip, a)
		}
		if addrs[ip] != byIP[ip].ID {
			t.Fatalf("address %s is recorded for %q, not its container's endpoint %s", ip, addrs[ip], byIP[ip].ID)
		}
	}
	for ip, owner := range addrs {
		if _, ok := running[ip]; !ok {
			t.Fatalf("address %s (endpoint %q) leaked: no running container has it", ip, owner)
		}
	}
	if len(as) != len(running) {
		t.Fatalf("%d attachments for %d running containers: %+v", len(as), len(running), as)
	}
	if vs := links(t, l, "h1", "pnh"); len(vs) != len(endpoints(t, l, "h1")) {
		t.Fatalf("host veths %v for %d endpoints", vs, len(endpoints(t, l, "h1")))
	}
	// The survivors still talk.
	ips := slices.Collect(maps.Keys(running))
	WaitFor(t, shortWait, func() (bool, string) {
		out, err := podman(l, "h1", "exec", running[ips[0]], "ping", "-c", "1", "-W", "2", ips[1])
		return err == nil, fmt.Sprintf("survivors cannot reach each other: %v %s", err, out)
	})
}

type etcdWrite struct{ key, value string }

// etcdWatch follows the puts under prefix (etcdctl watch on host) until
// the test ends.
func etcdWatch(t *testing.T, l *Lab, host, prefix string) <-chan etcdWrite {
	t.Helper()
	cmd := exec.Command(l.script, "exec", host, "sh", "-c", `exec etcdctl --endpoints "$LAB_ETCD_ENDPOINTS" watch --prefix "$1"`, "sh", prefix)
	cmd.Env = l.env
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = syscall.Kill(cmd.Process.Pid, syscall.SIGKILL)
		_ = cmd.Wait()
	})
	out := make(chan etcdWrite, 1024)
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			if sc.Text() != "PUT" || !sc.Scan() {
				continue
			}
			key := sc.Text()
			if !sc.Scan() {
				return
			}
			out <- etcdWrite{key: key, value: sc.Text()}
		}
	}()
	// etcdctl watches from the current revision once it connected: a
	// write made now must come through before the test relies on it.
	probe := prefix + "e2e-watch-probe"
	WaitFor(t, shortWait, func() (bool, string) {
		l.MustExec(t, host, "sh", "-c", `etcdctl --endpoints "$LAB_ETCD_ENDPOINTS" put "$1" x >/dev/null`, "sh", probe)
		select {
		case w := <-out:
			return w.key == probe, "etcd watch saw " + w.key
		case <-time.After(time.Second):
			return false, "etcd watch saw nothing yet"
		}
	})
	l.MustExec(t, host, "sh", "-c", `etcdctl --endpoints "$LAB_ETCD_ENDPOINTS" del "$1" >/dev/null`, "sh", probe)
	return out
}
