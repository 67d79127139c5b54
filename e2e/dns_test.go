//go:build e2e

package e2e

import (
	"strings"
	"testing"
)

// TestClusterDNSOnDemand: a name of another host's container resolves
// when first asked (read from its name index in etcd), follows a rename,
// and stops resolving once the container is removed; a container nobody
// asks for is never read.
func TestClusterDNSOnDemand(t *testing.T) {
	l := multi(t)
	vxNet(t, l, "dnsod", "10.85.0.0/16")
	run(t, l, "h1", "odasker", sleeper("--network", "dnsod", "--dns", "10.96.0.10")...)
	run(t, l, "h2", "odweb", sleeper("--network", "dnsod")...)
	ip := ipOf(t, l, "h2", "odweb", "dnsod")
	resolve := func(name string) (string, error) {
		return l.Docker("h1", "exec", "odasker", "netcheck", "dns", "10.96.0.10", name)
	}
	WaitFor(t, shortWait, func() (bool, string) {
		out, err := resolve("odweb")
		return err == nil && strings.Contains(out, ip), out + errString(err)
	})
	// A rename: the old name goes, the new one answers.
	l.MustDocker(t, "h2", "rename", "odweb", "odshop")
	t.Cleanup(func() { _, _ = l.Docker("h2", "rm", "-f", "odshop") })
	WaitFor(t, shortWait, func() (bool, string) {
		out, err := resolve("odshop")
		return err == nil && strings.Contains(out, ip), out + errString(err)
	})
	WaitFor(t, shortWait, func() (bool, string) {
		out, err := resolve("odweb")
		return err != nil && !strings.Contains(out, ip), "odweb still resolves after the rename: " + out
	})
	// Removed: the name stops resolving.
	l.MustDocker(t, "h2", "rm", "-f", "odshop")
	WaitFor(t, shortWait, func() (bool, string) {
		out, err := resolve("odshop")
		return err != nil && !strings.Contains(out, ip), "odshop still resolves after its removal: " + out
	})
}
