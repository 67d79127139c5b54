//go:build e2e

package e2e

import (
	"strings"
	"testing"
)

// TestClusterNetworkRefusesWhatTheDriverRefuses: podnetctl network create
// with an option the driver would refuse (a typo) fails at once, with the
// driver's own message, whether the option is given as --opt or with
// Docker's -o habit, and stores nothing: no definition for every host's
// network sync to retry forever, no Docker network anywhere. An unknown
// output format is an error too.
func TestClusterNetworkRefusesWhatTheDriverRefuses(t *testing.T) {
	l := multi(t)
	before := strings.Join(etcdKeys(t, l, "h1", "lnets/"), " ")
	const want = `unknown option "podnet.masqurade" (did you mean "podnet.masquerade"?`
	var msgs []string
	for _, flag := range []string{"--opt", "-o"} {
		_, err := l.Exec("h1", "podnetctl", "network", "create", "typo2", "--subnet", "10.71.0.0/16", flag, "podnet.masqurade=false", "--wait", "5s")
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("podnetctl network create %s podnet.masqurade=false: got %v, want %q", flag, err, want)
		}
		_, msg, _ := strings.Cut(err.Error(), "podnetctl: ")
		msgs = append(msgs, msg)
	}
	t.Cleanup(func() {
		for _, h := range l.Hosts() {
			removeNetwork(l, h, "typo2")
			removeNetwork(l, h, "typo3")
		}
	})
	// The docker CLI gets the same words from the driver.
	dockerFails(t, l, "h2", []string{msgs[0]}, "network", "create", "-d", "podnet", "--ipam-driver", "podnet",
		"-o", "mode=vxlan", "-o", "podnet.masqurade=false", "--subnet", "10.71.0.0/16", "typo3")
	if after := strings.Join(etcdKeys(t, l, "h1", "lnets/"), " "); after != before {
		t.Fatalf("a refused definition reached etcd:\nbefore %s\nafter  %s", before, after)
	}
	for _, h := range l.Hosts() {
		if out, _ := l.Docker(h, "network", "ls", "-q", "--filter", "name=^typo"); out != "" {
			t.Fatalf("%s has a typo network: %s", h, out)
		}
	}
	if _, err := l.Exec("h1", "podnetctl", "network", "ls", "--cluster", "-o", "xml"); err == nil || !strings.Contains(err.Error(), `unknown output format "xml"`) {
		t.Fatalf("podnetctl network ls -o xml: %v", err)
	}
	if _, err := l.Exec("h1", "podnetctl", "network", "create", "n", "--subnet", "10.71.0.0/16", "-o", "json"); err == nil || !strings.Contains(err.Error(), "want KEY=VALUE") {
		t.Fatalf("podnetctl network create -o json: %v", err)
	}
}
