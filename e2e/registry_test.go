//go:build e2e

package e2e

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/podnet/podnet/internal/testutil"
	"github.com/vishvananda/netns"
)

// startRegistry runs Debian's docker-registry on a free port of the root
// namespace's loopback, storing into a temporary directory, and stops it
// (by PID) and removes its data when the test ends. It returns the port.
func startRegistry(t *testing.T) int {
	t.Helper()
	port := testutil.FreePort(t)
	dir := t.TempDir()
	conf := filepath.Join(dir, "config.yml")
	data := filepath.Join(dir, "data")
	err := os.WriteFile(conf, fmt.Appendf(nil, `version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: %s
http:
  addr: 127.0.0.1:%d
`, data, port), 0o644)
	if err != nil {
		t.Fatal(err)
	}
	startDaemon(t, "docker-registry", dir, data, "serve", conf).waitReady(t, func() (bool, string) {
		resp, err := http.Get(loopbackURL(port) + "/v2/")
		if err != nil {
			return false, err.Error()
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK, resp.Status
	})
	return port
}

// forward makes addr (e.g. 127.0.0.1:5000) in host's network namespace lead
// to the root namespace's 127.0.0.1:port, until the test ends: a lab
// host's loopback is its own, and Docker treats only localhost registries
// as plain-HTTP without daemon configuration.
func forward(t *testing.T, l *Lab, host, addr string, port int) {
	t.Helper()
	ln, err := listenInNetns(l.netnsPath(host), addr)
	if err != nil {
		t.Fatalf("%s: listen on %s: %v", host, addr, err)
	}
	t.Cleanup(func() { ln.Close() })
	go relay(ln, func() (net.Conn, error) { return net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port)) })
}

// relay copies every connection accepted on ln to a connection dial
// opens, both ways, until ln is closed.
func relay(ln net.Listener, dial func() (net.Conn, error)) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			up, err := dial()
			if err != nil {
				return
			}
			defer up.Close()
			done := make(chan struct{}, 2)
			go func() { _, _ = io.Copy(up, c); done <- struct{}{} }()
			go func() { _, _ = io.Copy(c, up); done <- struct{}{} }()
			<-done
		}()
	}
}

// netnsPath is the network namespace of a lab host.
func (l *Lab) netnsPath(host string) string { return "/run/netns/" + l.Name + "-" + host }

// listenInNetns opens a TCP listener inside the network namespace at path.
// The socket stays in that namespace whichever thread later accepts on it.
func listenInNetns(path, addr string) (ln net.Listener, err error) {
	err = inNetns(path, func() error { ln, err = net.Listen("tcp", addr); return err })
	return ln, err
}

// dialInNetns connects from inside the network namespace at path.
func dialInNetns(path, addr string) (c net.Conn, err error) {
	err = inNetns(path, func() error { c, err = net.DialTimeout("tcp", addr, 5*time.Second); return err })
	return c, err
}

// inNetns runs fn on a thread switched into the network namespace at
// path; sockets fn opens belong to that namespace for good.
func inNetns(path string, fn func() error) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	if err != nil {
		return err
	}
	defer orig.Close()
	target, err := netns.GetFromPath(path)
	if err != nil {
		return err
	}
	defer target.Close()
	if err := netns.Set(target); err != nil {
		return err
	}
	ferr := fn()
	if err := netns.Set(orig); err != nil {
		panic(fmt.Sprintf("cannot return to the original netns: %v", err))
	}
	return ferr
}

// buildPodnet builds podnetd and podnetctl from the source tree src with
// the given version string into a temporary directory.
func buildPodnet(t *testing.T, src, version string) string {
	t.Helper()
	dir := t.TempDir()
	for _, b := range []string{"podnetd", "podnetctl"} {
		cmd := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w -X main.version="+version,
			"-o", filepath.Join(dir, b), "./cmd/"+b)
		cmd.Dir = src
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("build %s %s from %s: %v\n%s", b, version, src, err, out)
		}
	}
	return dir
}

// pushPlugin packages the binaries in bin as a managed plugin and pushes it
// to the registry as name, from host (scripts/build-plugin.sh --push).
func pushPlugin(t *testing.T, l *Lab, host, bin, name string) {
	t.Helper()
	repo, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "plugin")
	out, err := l.Exec(host, "env", "PODNET_BIN="+bin, "PLUGIN_NAME="+name, "DOCKER=docker",
		filepath.Join(repo, "scripts", "build-plugin.sh"), "--push", dir)
	if err != nil {
		t.Fatalf("%s: build-plugin.sh --push %s: %v\n%s", host, name, err, out)
	}
}

// pluginSettings keeps a lab plugin's state, admin socket and Docker API
// inside the lab host: its stand-ins for the host's /var/lib and /run
// (pluginDirs). Docker keeps env settings across an upgrade but takes
// mount sources from the new version's config: they are set again after
// each upgrade.
func pluginSettings(l *Lab, host string) []string {
	lib, run := pluginDirs(l, host)
	return []string{"lib.source=" + lib, "run.source=" + run, "docker-sock.source=" + l.DockerSocket(host)}
}

// pluginDirs are a lab host's stand-ins for the host's /var/lib and /run,
// made if missing (on a real host both always exist).
func pluginDirs(l *Lab, host string) (lib, run string) {
	hd := l.HostDir(host)
	lib, run = filepath.Join(hd, "plugin-lib"), filepath.Join(hd, "plugin-run")
	for _, d := range []string{lib, run} {
		_ = os.MkdirAll(d, 0o755)
	}
	return lib, run
}

// freshPluginHost removes podnet's own directories under a host's /var/lib
// and /run stand-ins, as on a host where podnet never ran (or, for /run,
// after a reboot): the plugin must start without them.
func freshPluginHost(t *testing.T, l *Lab, host string) {
	t.Helper()
	lib, run := pluginDirs(l, host)
	for _, d := range []string{filepath.Join(lib, "podnet"), filepath.Join(run, "podnet")} {
		if err := os.RemoveAll(d); err != nil {
			t.Fatal(err)
		}
	}
}

// pluginAdminSocket is where a lab plugin serves podnetctl: podnet/podnet.sock
// under its /run stand-in.
func pluginAdminSocket(l *Lab, host string) string {
	_, run := pluginDirs(l, host)
	return filepath.Join(run, "podnet", "podnet.sock")
}

// pluginDirsMade checks that the plugin made podnet's directories on the
// host: the state directory root's alone, the admin socket root's alone.
func pluginDirsMade(t *testing.T, l *Lab, host string) {
	t.Helper()
	lib, _ := pluginDirs(l, host)
	WaitFor(t, shortWait, func() (bool, string) {
		st, err := os.Stat(pluginAdminSocket(l, host))
		return err == nil && st.Mode().Perm() == 0o600, fmt.Sprintf("admin socket: %v %v", st, err)
	})
	if mode := l.MustExec(t, host, "stat", "-c", "%a %U", filepath.Join(lib, "podnet")); mode != "700 root" {
		t.Fatalf("the plugin's state directory is %q, want 700 root", mode)
	}
}

// pluginVersionLogged waits until host's dockerd log shows the plugin's
// podnetd starting with version v (plugins log through dockerd).
func pluginVersionLogged(t *testing.T, l *Lab, host, v string) {
	t.Helper()
	WaitFor(t, shortWait, func() (bool, string) {
		log := readFile(t, filepath.Join(l.HostDir(host), "dockerd.log"))
		return strings.Contains(log, "podnetd ready") && strings.Contains(log, "version="+v),
			"no plugin podnetd of version " + v + " in the dockerd log"
	})
}

// TestPluginFromRegistry: the managed plugin is pushed to a registry and
// installed from it with `docker plugin install`, as a user would: h2 runs
// podnet as the plugin localhost:5000/podnet:<v1> (its own podnetd
// stopped), h1 and h3 run podnetd; one vxlan network spans all three. A
// container on h2 publishes a port and talks to h1 and to its neighbour;
// then `docker plugin upgrade` to <v2> (disable -f, upgrade, set, enable —
// what Docker requires) runs while those connections are open, and none
// of them breaks; the new version serves new containers.
func TestPluginFromRegistry(t *testing.T) {
	l := multi(t)
	port := startRegistry(t)
	for _, h := range []string{"h1", "h2"} {
		forward(t, l, h, "127.0.0.1:5000", port)
	}
	v1, v2 := "e2e-1", "e2e-2"
	name1, name2 := "localhost:5000/podnet:"+v1, "localhost:5000/podnet:"+v2
	repo, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	pushPlugin(t, l, "h1", buildPodnet(t, repo, v1), name1)
	pushPlugin(t, l, "h1", buildPodnet(t, repo, v2), name2)
	if out := l.MustDocker(t, "h1", "plugin", "ls", "-q"); out != "" {
		t.Fatalf("the build host kept a plugin after pushing: %s", out)
	}

	if err := l.PodnetdStop("h2", false); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = l.Docker("h2", "plugin", "disable", "-f", name1)
		_, _ = l.Docker("h2", "plugin", "rm", "-f", name1)
		if err := l.PodnetdStart("h2"); err != nil {
			t.Errorf("restart h2's podnetd: %v", err)
		}
	})
	// The lab's etcd wants a client certificate: the plugin reads it from
	// the host's /var/lib, as the README tells users to do; here beside
	// podnet's state directory, which the test removes: a host where
	// podnet never ran has neither /var/lib/podnet nor /run/podnet.
	lib, _ := pluginDirs(l, "h2")
	tls := filepath.Join(lib, "podnet-tls")
	l.MustExec(t, "h2", "mkdir", "-p", tls)
	for _, f := range []string{"ca.crt", "h2.crt", "h2.key"} {
		l.MustExec(t, "h2", "cp", filepath.Join(l.PKI(), f), tls)
	}
	freshPluginHost(t, l, "h2")
	// --disable: the lab sets the mount sources before the first start (a
	// real host keeps the defaults and needs no set).
	l.MustDocker(t, "h2", "plugin", "install", "--grant-all-permissions", "--disable", name1,
		"PODNET_ETCD_ENDPOINTS="+strings.Join(l.EtcdEndpoints(), ","), "PODNET_HOST_NAME=h2", "PODNET_DRIVER_NAME="+name1,
		"PODNET_EXTERNAL_IP_CIDRS="+l.ExternalIPCIDRs(),
		"args=--etcd-cacert /var/lib/podnet-tls/ca.crt --etcd-cert /var/lib/podnet-tls/h2.crt --etcd-key /var/lib/podnet-tls/h2.key")
	l.MustDocker(t, "h2", append([]string{"plugin", "set", name1}, pluginSettings(l, "h2")...)...)
	l.MustDocker(t, "h2", "plugin", "enable", name1)
	pluginVersionLogged(t, l, "h2", v1)
	pluginDirsMade(t, l, "h2")

	const subnet = "10.228.0.0/16"
	for _, h := range []string{"h1", "h3"} {
		podnetNet(t, l, h, "reg", "-o", "mode=vxlan", "--subnet", subnet)
	}
	l.MustDocker(t, "h2", "network", "create", "-d", name1, "--ipam-driver", name1, "-o", "mode=vxlan", "--subnet", subnet, "reg")
	t.Cleanup(func() { removeNetwork(l, "h2", "reg") })
	run(t, l, "h2", "rsrv", serverArgs("--network", "reg", "-p", "18180:9000")...)
	run(t, l, "h2", "rnear", sleeper("--network", "reg")...)
	run(t, l, "h1", "rfar", sleeper("--network", "reg")...)
	srv := ipOf(t, l, "h2", "rsrv", "reg")
	WaitFor(t, shortWait, func() (bool, string) {
		return ping(l, "h1", "rfar", srv), "h1 cannot reach the plugin host's container"
	})
	if !ping(l, "h2", "rnear", srv) {
		t.Fatal("containers of the plugin's network on h2 cannot reach each other")
	}

	// Upgrade with connections open: across hosts, on the host, and through
	// the published port from outside.
	const secs = 40
	streams := []<-chan error{
		stream(l, "h1", "rfar", srv+":9000", secs),
		stream(l, "h2", "rnear", srv+":9000", secs),
		stream(l, "", "", l.HostIP("h2")+":18180", secs),
	}
	time.Sleep(2 * time.Second)
	start := time.Now()
	// A plugin that networks use cannot be disabled without -f; disabled is
	// what `docker plugin upgrade` requires.
	if _, err := l.Docker("h2", "plugin", "disable", name1); err == nil {
		t.Fatal("docker plugin disable of a plugin in use succeeded without -f")
	}
	l.MustDocker(t, "h2", "plugin", "disable", "-f", name1)
	l.MustDocker(t, "h2", "plugin", "upgrade", "--grant-all-permissions", "--skip-remote-check", name1, name2)
	l.MustDocker(t, "h2", append([]string{"plugin", "set", name1}, pluginSettings(l, "h2")...)...)
	// As after a reboot (an empty /run) and a lost state directory: the
	// plugin enables all the same.
	freshPluginHost(t, l, "h2")
	l.MustDocker(t, "h2", "plugin", "enable", name1)
	t.Logf("plugin upgraded (disable, upgrade, set, enable) in %v", time.Since(start).Round(100*time.Millisecond))
	pluginVersionLogged(t, l, "h2", v2)
	pluginDirsMade(t, l, "h2")
	if ref := l.MustDocker(t, "h2", "plugin", "inspect", "-f", "{{.PluginReference}}", name1); ref != name2 {
		t.Fatalf("plugin reference after upgrade: %s, want %s", ref, name2)
	}
	for _, s := range streams {
		if err := <-s; err != nil {
			t.Errorf("a connection broke during docker plugin upgrade: %v", err)
		}
	}
	if t.Failed() {
		return
	}

	// The upgraded plugin serves: a new container on h2 is reachable from
	// h1, and podnetctl reaches the plugin's admin socket.
	run(t, l, "h2", "rlate", serverArgs("--network", "reg")...)
	late := ipOf(t, l, "h2", "rlate", "reg")
	WaitFor(t, shortWait, func() (bool, string) {
		return ping(l, "h1", "rfar", late), "h1 cannot reach a container started after the upgrade"
	})
	st := l.MustExec(t, "h2", "podnetctl", "--socket", pluginAdminSocket(l, "h2"), "status")
	mustContain(t, "podnetctl reaches the upgraded plugin", st, "etcd:           healthy")
}
