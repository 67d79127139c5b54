//go:build e2e

package e2e

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"
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
		out, _ := resolve("odweb")
		return !strings.Contains(out, ip), "odweb still resolves after the rename: " + out
	})
	// Removed: the name stops resolving.
	l.MustDocker(t, "h2", "rm", "-f", "odshop")
	WaitFor(t, shortWait, func() (bool, string) {
		out, _ := resolve("odshop")
		return !strings.Contains(out, ip), "odshop still resolves after its removal: " + out
	})
}

// watchBytes reads host's podnet_etcd_watch_bytes_total by prefix label.
func watchBytes(t *testing.T, l *Lab, host string) map[string]float64 {
	t.Helper()
	out := l.MustExec(t, host, "curl", "-s", "http://127.0.0.1:9477/metrics")
	got := map[string]float64{}
	for _, line := range strings.Split(out, "\n") {
		rest, ok := strings.CutPrefix(line, `podnet_etcd_watch_bytes_total{prefix="`)
		if !ok {
			continue
		}
		label, val, _ := strings.Cut(rest, `"} `)
		v, err := strconv.ParseFloat(strings.TrimSpace(val), 64)
		if err == nil {
			got[label] = v
		}
	}
	return got
}

func sumBytes(m map[string]float64) float64 {
	var s float64
	for _, v := range m {
		s += v
	}
	return s
}

// TestContainerStartFanOut: a container start on another host that no
// service or policy selects sends this host's watches 0 bytes; one a
// service selects sends it that container's entry in the selection index
// only (no endpoint metadata, no names).
func TestContainerStartFanOut(t *testing.T) {
	l := multi(t)
	vxNet(t, l, "fanout", "10.86.0.0/16")
	service(t, l, "h1", "fanout", "--selector", "app=fanout", "--port", "80")
	// The first container claims h2's block (an overlay event for every
	// host, once per block): before the counting starts.
	run(t, l, "h2", "fanfirst", sleeper("--network", "fanout")...)
	WaitFor(t, shortWait, func() (bool, string) {
		time.Sleep(time.Second) // nothing more arrives for a second
		a := watchBytes(t, l, "h1")
		time.Sleep(time.Second)
		b := watchBytes(t, l, "h1")
		return sumBytes(b) == sumBytes(a), fmt.Sprintf("h1 still receives: %v then %v", a, b)
	})

	before := watchBytes(t, l, "h1")
	run(t, l, "h2", "fanplain", sleeper("--network", "fanout", "--label", "app=other")...)
	WaitFor(t, shortWait, func() (bool, string) {
		out, err := l.Exec("h2", "sh", "-c", `etcdctl --endpoints "$LAB_ETCD_ENDPOINTS" get --prefix --keys-only /podnet/v1/epmeta/h2/ | grep -c .`)
		return err == nil && strings.TrimSpace(out) == "2", "h2's metadata of fanplain not written yet: " + out
	})
	time.Sleep(2 * time.Second) // whatever would have reached h1 has
	after := watchBytes(t, l, "h1")
	if d := sumBytes(after) - sumBytes(before); d != 0 {
		t.Errorf("an unselected container start on h2 sent h1's watches %.0f bytes (%v → %v)", d, before, after)
	}

	before = after
	run(t, l, "h2", "fansel", sleeper("--network", "fanout", "--label", "app=fanout")...)
	ip := ipOf(t, l, "h2", "fansel", "fanout")
	endpointsAre(t, l, "fanout", "h2/fansel/"+ip+"/true")
	after = watchBytes(t, l, "h1")
	for p, v := range after {
		if d := v - before[p]; d != 0 && p != "sel" && p != "svcstatus" {
			t.Errorf("a selected container start on h2 sent h1's %s watch %.0f bytes; want only sel/", p, d)
		}
	}
	t.Logf("selected start: %.0f bytes of sel/ into h1", after["sel"]-before["sel"])
}
