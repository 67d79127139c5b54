//go:build e2e

package e2e

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// metricOf reads one unlabelled series of host's podnetd metrics.
func metricOf(t *testing.T, l *Lab, host, name string) float64 {
	t.Helper()
	out := l.MustExec(t, host, "curl", "-s", "http://127.0.0.1:9477/metrics")
	for _, line := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err == nil {
				return f
			}
		}
	}
	t.Fatalf("%s: no %s in the metrics", host, name)
	return 0
}

func watchKeys(t *testing.T, l *Lab, host string) float64 {
	t.Helper()
	out := l.MustExec(t, host, "curl", "-s", "http://127.0.0.1:9477/metrics")
	var sum float64
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, "podnet_etcd_watch_keys_total{") {
			f := strings.Fields(line)
			v, _ := strconv.ParseFloat(f[len(f)-1], 64)
			sum += v
		}
	}
	return sum
}

// TestFakeContainersScale is the measurement of docs/scale.md (make
// bench, SCALE rows; skipped unless PODNET_E2E_FAKE_CONTAINERS is set):
// PODNET_E2E_FAKE_HOSTS stand-in hosts (default 1000) with
// PODNET_E2E_FAKE_CONTAINERS containers each in the lab's etcd (metadata,
// name index, and for one in PODNET_E2E_FAKE_SELECT a service's
// selection, 10 per service), then, on h1's real podnetd: its resident
// memory and heap; the etcd keys and bytes its watches receive per
// container start on h2, unselected and selected; the cluster DNS's
// first and cached lookups of stand-in names; the time from a remote
// container's removal to its name failing. Lines "SCALEC key value" are
// what scripts/bench reads.
func TestFakeContainersScale(t *testing.T) {
	perHost, _ := strconv.Atoi(os.Getenv("PODNET_E2E_FAKE_CONTAINERS"))
	if perHost <= 0 {
		t.Skip("set PODNET_E2E_FAKE_CONTAINERS (make bench runs it: SCALE)")
	}
	hosts := 1000
	if v, err := strconv.Atoi(os.Getenv("PODNET_E2E_FAKE_HOSTS")); err == nil && v > 0 {
		hosts = v
	}
	every := 50
	if v, err := strconv.Atoi(os.Getenv("PODNET_E2E_FAKE_SELECT")); err == nil && v > 0 {
		every = v
	}
	services := hosts * perHost / every / 10
	l := multi(t)
	const pool = "100.64.0.0/10"
	report := func(key string, v any) { t.Logf("SCALEC %s %v", key, v) }
	vxNet(t, l, "scc", pool)
	service(t, l, "h1", "sccsel", "--selector", "app=sccsel", "--port", "80")
	run(t, l, "h2", "scc-first", sleeper("--network", "scc")...)
	pid := l.PIDs()["h1/podnetd"]
	rssBefore := rssOf(t, pid)
	heapBefore := metricOf(t, l, "h1", "go_memstats_heap_inuse_bytes")
	keysBefore := watchKeys(t, l, "h1")
	base := podnetRoutes(t, l, "h1")
	start := time.Now()
	blocks := (perHost + 59) / 60
	fakeHosts(t, l, pool, hosts, "-blocks", strconv.Itoa(blocks), "-containers", strconv.Itoa(perHost),
		"-services", strconv.Itoa(services), "-per-service", "10")
	report("written_s", time.Since(start).Seconds())
	// Every stand-in's blocks and (nearly) every borrowed address routed:
	// fakehosts' borrowed addresses may land where no route is needed.
	want := base + hosts*blocks + hosts*99/100
	WaitFor(t, 10*time.Minute, func() (bool, string) {
		got := podnetRoutes(t, l, "h1")
		return got >= want, fmt.Sprintf("h1 has %d podnet routes, want %d", got, want)
	})
	// Settled: nothing more arrives for two seconds.
	WaitFor(t, 10*time.Minute, func() (bool, string) {
		a := watchKeys(t, l, "h1")
		time.Sleep(2 * time.Second)
		b := watchKeys(t, l, "h1")
		return a == b, fmt.Sprintf("h1 still receives keys (%v → %v)", a, b)
	})
	report("hosts", hosts)
	report("containers", hosts*perHost)
	report("services", services)
	report("h1_watch_keys_loaded", watchKeys(t, l, "h1")-keysBefore)
	rss := rssOf(t, pid)
	heap := metricOf(t, l, "h1", "go_memstats_heap_inuse_bytes")
	report("rss_mib", rss>>20)
	report("rss_before_mib", rssBefore>>20)
	report("heap_inuse_mib", int64(heap)>>20)
	report("heap_inuse_before_mib", int64(heapBefore)>>20)

	// Remote starts on h2: what reaches h1's watches per start.
	perStart := func(kind, label string, n int) {
		before, kb := watchBytes(t, l, "h1"), watchKeys(t, l, "h1")
		for i := range n {
			run(t, l, "h2", fmt.Sprintf("scc-%s-%d", kind, i), sleeper("--network", "scc", "--label", "app="+label)...)
		}
		WaitFor(t, shortWait, func() (bool, string) {
			out, err := l.Exec("h2", "sh", "-c", `etcdctl --endpoints "$LAB_ETCD_ENDPOINTS" get --prefix --keys-only /podnet/v1/epmeta/h2/ | grep -c .`)
			n2, _ := strconv.Atoi(strings.TrimSpace(out))
			return err == nil && n2 >= n+1, "h2's metadata not all written: " + out
		})
		time.Sleep(3 * time.Second)
		after, ka := watchBytes(t, l, "h1"), watchKeys(t, l, "h1")
		report("start_"+kind+"_bytes", (sumBytes(after)-sumBytes(before))/float64(n))
		report("start_"+kind+"_keys", (ka-kb)/float64(n))
		for i := range n {
			_, _ = l.Docker("h2", "rm", "-f", fmt.Sprintf("scc-%s-%d", kind, i))
		}
	}
	perStart("unselected", "sccother", 5)
	perStart("selected", "sccsel", 5)

	// DNS: first and cached lookups of 200 stand-in names, from h1.
	nc := filepath.Join(PodnetBin(), "netcheck")
	names := make([]string, 200)
	for i := range names {
		names[i] = fmt.Sprintf("%sfakec%05d-%03d", l.Name, rand.IntN(hosts), rand.IntN(perHost))
	}
	out := l.MustExec(t, "h1", append([]string{nc, "dns-times", dnsAddr, "20"}, names...)...)
	t.Logf("DNS lookups from h1: %s", out)
	f := strings.Fields(out) // first p50 X p99 Y cached p50 X p99 Y answered N of M
	if len(f) < 14 || f[11] != f[13] {
		t.Fatalf("stand-in names not all answered: %s", out)
	}
	report("dns_first_p50_us", f[2])
	report("dns_first_p99_us", f[4])
	report("dns_cached_p50_us", f[7])
	report("dns_cached_p99_us", f[9])
	report("h1_rss_after_dns_mib", rssOf(t, pid)>>20)

	// Removal to failure: a container of h2, asked for (cached) on h1,
	// removed; h1 asks every millisecond until the name fails.
	run(t, l, "h2", "scc-gone", sleeper("--network", "scc")...)
	WaitFor(t, shortWait, func() (bool, string) {
		out, err := l.Exec("h1", nc, "dns-times", dnsAddr, "0", "scc-gone")
		return err == nil && strings.HasSuffix(out, "answered 1 of 1"), out + errString(err)
	})
	type gone struct {
		out string
		err error
	}
	ch := make(chan gone, 1)
	go func() {
		out, err := l.Exec("h1", nc, "dns-gone", dnsAddr, "scc-gone", "20000")
		ch <- gone{out, err}
	}()
	time.Sleep(time.Second) // asking by now
	rmStart := time.Now()
	l.MustDocker(t, "h2", "rm", "-f", "scc-gone")
	rmEnd := time.Now()
	g := <-ch
	if g.err != nil {
		t.Fatalf("dns-gone: %v: %s", g.err, g.out)
	}
	var ns int64
	for _, line := range strings.Split(g.out, "\n") {
		if v, ok := strings.CutPrefix(line, "gone "); ok {
			ns, _ = strconv.ParseInt(v, 10, 64)
		}
	}
	at := time.Unix(0, ns)
	report("rm_s", rmEnd.Sub(rmStart).Seconds())
	report("gone_after_rm_start_s", at.Sub(rmStart).Seconds())
	report("gone_after_rm_end_s", at.Sub(rmEnd).Seconds())
	if at.Before(rmStart) {
		t.Fatalf("scc-gone failed before its removal (%v early): the measurement is void", rmStart.Sub(at))
	}
}
