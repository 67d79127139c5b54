//go:build e2e

package e2e

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// preNDPRev is the last commit whose podnetd put a proxy neighbor entry
// per remote IPv6 container on its bridges and followed every IPv6 address
// record, instead of answering neighbor solicitations itself, and whose
// cluster DNS and service catalog followed every container's metadata
// instead of the name and selection indexes: one old release for both
// changes of layout.
const preNDPRev = "e4d1d6697fef5812cedcaab915c829a39366ee23"

// ping6 waits until container name on host pings dst over IPv6.
func ping6(t *testing.T, l *Lab, host, name, dst string) {
	t.Helper()
	WaitFor(t, shortWait, func() (bool, string) {
		_, err := l.Docker(host, "exec", name, "ping", "-6", "-c", "1", "-W", "1", dst)
		return err == nil, fmt.Sprintf("%s/%s cannot ping %s over IPv6: %v", host, name, dst, err)
	})
}

// ip6Of is a container's IPv6 address in network.
func ip6Of(t *testing.T, l *Lab, host, name, network string) string {
	t.Helper()
	return strings.TrimSpace(l.MustDocker(t, host, "inspect", "-f",
		fmt.Sprintf(`{{(index .NetworkSettings.Networks %q).GlobalIPv6Address}}`, network), name))
}

// bridgeOf is the host's bridge of a podnet network.
func bridgeOf(t *testing.T, l *Lab, host, network string) string {
	t.Helper()
	return "pn-" + strings.TrimSpace(l.MustDocker(t, host, "network", "inspect", "-f", "{{.Id}}", network))[:12]
}

// proxyEntries are the proxy neighbor entries on a host's bridge.
func proxyEntries(t *testing.T, l *Lab, host, bridge string) string {
	t.Helper()
	return strings.TrimSpace(l.MustExec(t, host, "ip", "-6", "neigh", "show", "proxy", "dev", bridge))
}

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
	a, b := ip6Of(t, l, "h1", "v6a", "v6x"), ip6Of(t, l, "h2", "v6b", "v6x")
	ping6(t, l, "h1", "v6a", b)
	ping6(t, l, "h2", "v6b", a)
	br := bridgeOf(t, l, "h1", "v6x")
	brMAC := strings.TrimSpace(l.MustExec(t, "h1", "cat", "/sys/class/net/"+br+"/address"))
	if n := l.MustDocker(t, "h1", "exec", "v6a", "ip", "-6", "neigh", "show", b); !strings.Contains(n, brMAC) {
		t.Errorf("h1's container resolved %s to %q, want the bridge's MAC %s", b, strings.TrimSpace(n), brMAC)
	}
	if p := proxyEntries(t, l, "h1", br); p != "" {
		t.Errorf("proxy neighbor entries on h1's bridge %s: %s", br, p)
	}
	if n := overlayOf(t, l, "h1").NDP[br]; n.Answered == 0 {
		t.Errorf("h1's overlay shows no answer of the NDP responder on %s: %+v", br, n)
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
	ping6(t, l, "h1", "v6a", ip6Of(t, l, "h2", fmt.Sprintf("v6s-%d", starts-1), "v6x"))
}

// TestIPv6RollingUpgrade upgrades a 2-host cluster from the podnetd that
// kept a proxy entry per remote IPv6 container to this build, one host at
// a time: an upgraded host removes the entries its predecessor left on
// its bridge, and containers of upgraded and old hosts, old and new
// containers, keep reaching each other over IPv6 (an old host still
// follows the address records the new one still writes). While the hosts
// differ, the upgraded host resolves the old host's containers by name
// and selects them into a service (it follows an older host's metadata
// whole while that host is alive), and the old host resolves the new
// host's containers (every podnetd still writes the metadata it reads).
func TestIPv6RollingUpgrade(t *testing.T) {
	RequirePodnetd(t)
	old, rev := oldBinariesAt(t, "PODNET_PRE_NDP_BIN", "PODNET_PRE_NDP_REV", preNDPRev)
	newd := filepath.Join(PodnetBin(), "podnetd")
	l := UpWith(t, Options{N: 2, Etcd: EtcdCluster, Bin: old})
	t.Logf("cluster on podnetd %s", rev)
	vxNet(t, l, "up6", "10.48.0.0/16", "--ipv6", "--subnet", "fd00:48::/64")
	run(t, l, "h1", "a1", sleeper("--network", "up6", "--label", "app=up6")...)
	run(t, l, "h2", "b1", sleeper("--network", "up6", "--label", "app=up6")...)
	a1, b1 := ip6Of(t, l, "h1", "a1", "up6"), ip6Of(t, l, "h2", "b1", "up6")
	ping6(t, l, "h1", "a1", b1)
	ping6(t, l, "h2", "b1", a1)
	br1, br2 := bridgeOf(t, l, "h1", "up6"), bridgeOf(t, l, "h2", "up6")
	if p := proxyEntries(t, l, "h1", br1); !strings.Contains(p, b1) {
		t.Fatalf("the old podnetd on h1 has proxy entries %q, want one for %s", p, b1)
	}

	upgrade := func(h, bridge string) {
		t.Helper()
		if err := l.PodnetdStop(h, false); err != nil {
			t.Fatal(err)
		}
		if err := l.PodnetdStartBin(h, newd); err != nil {
			t.Fatalf("%s: new podnetd: %v", h, err)
		}
		WaitFor(t, shortWait, func() (bool, string) {
			p := proxyEntries(t, l, h, bridge)
			return p == "", fmt.Sprintf("%s's bridge still has proxy entries: %s", h, p)
		})
	}
	// h1 new, h2 old: old and new containers on both sides.
	upgrade("h1", br1)
	run(t, l, "h1", "a2", sleeper("--network", "up6", "--label", "app=up6")...)
	run(t, l, "h2", "b2", sleeper("--network", "up6", "--label", "app=up6")...)
	a2, b2 := ip6Of(t, l, "h1", "a2", "up6"), ip6Of(t, l, "h2", "b2", "up6")
	ping6(t, l, "h1", "a2", b1)
	ping6(t, l, "h1", "a2", b2)
	ping6(t, l, "h2", "b2", a1)
	ping6(t, l, "h2", "b2", a2)
	ping6(t, l, "h1", "a1", b2)
	// Names and selections across the two layouts.
	names := func(host, from, name string, want string) {
		t.Helper()
		WaitFor(t, shortWait, func() (bool, string) {
			got, out := lookupIn(l, host, from, name)
			return slices.Contains(got, want), fmt.Sprintf("%s/%s: %s resolves to %v, want %s:\n%s", host, from, name, got, want, out)
		})
	}
	names("h1", "a2", "b1", ipOf(t, l, "h2", "b1", "up6"))
	names("h1", "a2", "b2", ipOf(t, l, "h2", "b2", "up6"))
	names("h2", "b2", "a2", ipOf(t, l, "h1", "a2", "up6"))
	service(t, l, "h1", "up6svc", "--selector", "app=up6", "--port", "80")
	WaitFor(t, shortWait, func() (bool, string) {
		var got []string
		for _, e := range svcGet(t, l, "h1", "up6svc").Status.Endpoints {
			got = append(got, e.Host+"/"+e.Container)
		}
		slices.Sort(got)
		want := []string{"h1/a1", "h1/a2", "h2/b1", "h2/b2"}
		return slices.Equal(got, want), fmt.Sprintf("the upgraded h1 sees endpoints %v of up6svc, want %v", got, want)
	})

	// Both new.
	upgrade("h2", br2)
	run(t, l, "h2", "b3", sleeper("--network", "up6", "--label", "app=up6")...)
	b3 := ip6Of(t, l, "h2", "b3", "up6")
	ping6(t, l, "h1", "a1", b3)
	ping6(t, l, "h2", "b3", a2)
	ping6(t, l, "h2", "b1", a1)
}
