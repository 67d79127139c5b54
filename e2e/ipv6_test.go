//go:build e2e

package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestIPv6AcrossHostsFollowsNoAddresses runs a dual-stack vxlan network
// on every host: containers on h1 and h2 ping each other over IPv6, h1's
// container resolves h2's address to h1's bridge (the NDP responder: no
// proxy neighbor entry on the bridge), and containers starting on h2 send
// h1 no address record.
func TestIPv6AcrossHostsFollowsNoAddresses(t *testing.T) {
	l := multi(t)
	vxNet(t, l, "v6x", "10.47.0.0/16", "--ipv6", "--subnet", "fd00:47::/64")
	run(t, l, "h1", "v6a", sleeper("--network", "v6x")...)
	run(t, l, "h2", "v6b", sleeper("--network", "v6x")...)
	ip6 := func(host, name string) string {
		return strings.TrimSpace(l.MustDocker(t, host, "inspect", "-f", `{{(index .NetworkSettings.Networks "v6x").GlobalIPv6Address}}`, name))
	}
	a, b := ip6("h1", "v6a"), ip6("h2", "v6b")
	for _, c := range []struct{ host, name, dst string }{{"h1", "v6a", b}, {"h2", "v6b", a}} {
		WaitFor(t, shortWait, func() (bool, string) {
			_, err := l.Docker(c.host, "exec", c.name, "ping", "-6", "-c", "1", "-W", "1", c.dst)
			return err == nil, fmt.Sprintf("%s/%s cannot ping %s over IPv6: %v", c.host, c.name, c.dst, err)
		})
	}
	br := "pn-" + strings.TrimSpace(l.MustDocker(t, "h1", "network", "inspect", "-f", "{{.Id}}", "v6x"))[:12]
	brMAC := strings.TrimSpace(l.MustExec(t, "h1", "cat", "/sys/class/net/"+br+"/address"))
	if n := l.MustDocker(t, "h1", "exec", "v6a", "ip", "-6", "neigh", "show", b); !strings.Contains(n, brMAC) {
		t.Errorf("h1's container resolved %s to %q, want the bridge's MAC %s", b, strings.TrimSpace(n), brMAC)
	}
	if p := strings.TrimSpace(l.MustExec(t, "h1", "ip", "-6", "neigh", "show", "proxy", "dev", br)); p != "" {
		t.Errorf("proxy neighbor entries on h1's bridge %s: %s", br, p)
	}

	// Containers starting on h2 cost h1 no address record.
	time.Sleep(2 * time.Second) // the first claims settle
	counter := etcdCounter(t, l, "h1")
	before, bytesBefore := overlayOf(t, l, "h1"), counter()
	const starts = 5
	for i := range starts {
		run(t, l, "h2", fmt.Sprintf("v6s-%d", i), sleeper("--network", "v6x")...)
	}
	time.Sleep(2 * time.Second) // every watch event delivered
	d := overlayOf(t, l, "h1").sub(before)
	tot := total(d)
	in := counter() - bytesBefore
	t.Logf("h1 during %d IPv6 container starts on h2: overlay watches %d events, %d bytes (by kind %v); all etcd traffic in: %d bytes (%.0f per start)",
		starts, tot.Events, tot.EventBytes, d, in, float64(in)/starts)
	if w := d["addrs"]; w.Events != 0 || w.Snapshots != 0 {
		t.Errorf("h1 received %d address records (%d listings) for %d IPv6 starts on h2", w.Events, w.Snapshots, starts)
	}
	last := ip6("h2", fmt.Sprintf("v6s-%d", starts-1))
	WaitFor(t, shortWait, func() (bool, string) {
		_, err := l.Docker("h1", "exec", "v6a", "ping", "-6", "-c", "1", "-W", "1", last)
		return err == nil, fmt.Sprintf("h1 cannot ping the new container %s over IPv6: %v", last, err)
	})
}
