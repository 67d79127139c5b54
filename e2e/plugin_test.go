//go:build e2e

package e2e

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestManagedPlugin packages podnet as a managed (v2) plugin, installs it
// in a host's dockerd as podnet:latest, and uses it: network, two
// containers that reach each other by name, a published port, removal.
// The host's own podnetd is stopped meanwhile (two podnets on one host
// would fight over the same nftables table).
func TestManagedPlugin(t *testing.T) {
	l := single(t)
	repo, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "plugin")
	if out, err := exec.Command(filepath.Join(repo, "scripts", "build-plugin.sh"), dir).CombinedOutput(); err != nil {
		t.Fatalf("build-plugin.sh: %v\n%s", err, out)
	}
	if err := l.PodnetdStop("h1", false); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = l.Docker("h1", "plugin", "disable", "-f", "podnet:latest")
		_, _ = l.Docker("h1", "plugin", "rm", "-f", "podnet:latest")
		if err := l.PodnetdStart("h1"); err != nil {
			t.Errorf("restart h1's podnetd: %v", err)
		}
	})
	l.MustDocker(t, "h1", "plugin", "create", "podnet:latest", dir)
	// Keep the plugin's state, admin socket and Docker API inside the lab
	// host instead of the machine's real /var/lib, /run and docker.sock.
	freshPluginHost(t, l, "h1")
	l.MustDocker(t, "h1", append([]string{"plugin", "set", "podnet:latest", "PODNET_HOST_NAME=h1"}, pluginSettings(l, "h1")...)...)
	l.MustDocker(t, "h1", "plugin", "enable", "podnet:latest")
	if out := l.MustDocker(t, "h1", "plugin", "ls", "--format", "{{.Name}} {{.Enabled}}"); !strings.Contains(out, "podnet:latest true") {
		t.Fatalf("plugin not enabled: %s", out)
	}

	l.MustDocker(t, "h1", "network", "create", "-d", "podnet:latest", "--ipam-driver", "podnet:latest", "--subnet", "10.71.0.0/24", "mp")
	t.Cleanup(func() { removeNetwork(l, "h1", "mp") })
	run(t, l, "h1", "mp1", webArgs("--network", "mp", "-p", "8480:80")...)
	run(t, l, "h1", "mp2", sleeper("--network", "mp")...)
	if !ping(l, "h1", "mp2", "mp1") {
		t.Fatal("containers on the managed plugin's network cannot reach each other")
	}
	WaitFor(t, shortWait, func() (bool, string) {
		out, err := curlClient(l, "http://"+l.HostIP("h1")+":8480/passwd")
		return err == nil && strings.Contains(out, "root:"), fmt.Sprint(err, out)
	})
	pluginDirsMade(t, l, "h1")
	st := l.MustExec(t, "h1", "podnetctl", "--socket", pluginAdminSocket(l, "h1"), "status")
	mustContain(t, "podnetctl reaches the plugin", st, "etcd:           healthy")
	mustContain(t, "plugin serves two endpoints", st, "endpoints:      2")

	l.MustDocker(t, "h1", "rm", "-f", "mp1", "mp2")
	l.MustDocker(t, "h1", "network", "rm", "mp")
	if vs := links(t, l, "h1", "pn"); len(vs) != 0 {
		t.Fatalf("links left after removal: %v", vs)
	}
}
