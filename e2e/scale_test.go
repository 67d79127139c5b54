//go:build e2e

package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// watchStats and overlayStats mirror GET /v1/overlay (podnetd's overlay
// counters), the fields these tests read.
type watchStats struct {
	Snapshots     int   `json:"snapshots"`
	SnapshotKeys  int   `json:"snapshotKeys"`
	SnapshotBytes int64 `json:"snapshotBytes"`
	Events        int   `json:"events"`
	EventBytes    int64 `json:"eventBytes"`
}

type overlayStats struct {
	Syncs  int                   `json:"syncs"`
	Steps  int                   `json:"steps"`
	Errors int                   `json:"errors"`
	Legacy bool                  `json:"legacy"`
	Watch  map[string]watchStats `json:"watch"`
	// NDP is what each IPv6 bridge's NDP responder did, by bridge.
	NDP map[string]struct {
		Answered int `json:"answered"`
		Declined int `json:"declined"`
	} `json:"ndp"`
}

// overlayOf reads host's overlay counters from its podnetd admin socket.
func overlayOf(t *testing.T, l *Lab, host string) overlayStats {
	t.Helper()
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", l.AdminSocket(host))
		}}}
	resp, err := c.Get("http://podnetd/v1/overlay")
	if err != nil {
		t.Fatalf("%s: GET /v1/overlay: %v", host, err)
	}
	defer resp.Body.Close()
	var s overlayStats
	if err := json.NewDecoder(resp.Body).Decode(&s); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("%s: GET /v1/overlay: status %d, %v", host, resp.StatusCode, err)
	}
	return s
}

// sub is what a watch delivered between two readings.
func (s overlayStats) sub(before overlayStats) map[string]watchStats {
	out := map[string]watchStats{}
	for kind, w := range s.Watch {
		b := before.Watch[kind]
		out[kind] = watchStats{Snapshots: w.Snapshots - b.Snapshots, SnapshotKeys: w.SnapshotKeys - b.SnapshotKeys,
			SnapshotBytes: w.SnapshotBytes - b.SnapshotBytes, Events: w.Events - b.Events, EventBytes: w.EventBytes - b.EventBytes}
	}
	return out
}

func total(ws map[string]watchStats) watchStats {
	var t watchStats
	for _, w := range ws {
		t.Snapshots += w.Snapshots
		t.SnapshotKeys += w.SnapshotKeys
		t.SnapshotBytes += w.SnapshotBytes
		t.Events += w.Events
		t.EventBytes += w.EventBytes
	}
	return t
}

// etcdCounter counts, in host's namespace, the bytes arriving from etcd
// (TCP source port 2379): everything every podnetd component reads, not
// only the overlay's watches. The table goes when the test ends.
func etcdCounter(t *testing.T, l *Lab, host string) func() int64 {
	t.Helper()
	table := l.Name + "etcdin"
	l.MustExec(t, host, "nft", "add", "table", "inet", table)
	t.Cleanup(func() { _, _ = l.Exec(host, "nft", "delete", "table", "inet", table) })
	l.MustExec(t, host, "nft", "add", "chain", "inet", table, "in", "{ type filter hook input priority 0 ; policy accept ; }")
	l.MustExec(t, host, "nft", "add", "rule", "inet", table, "in", "tcp", "sport", "2379", "counter")
	return func() int64 {
		out := l.MustExec(t, host, "nft", "list", "chain", "inet", table, "in")
		f := strings.Fields(out[strings.Index(out, "counter"):])
		for i := 0; i+1 < len(f); i++ {
			if f[i] == "bytes" {
				n, _ := strconv.ParseInt(f[i+1], 10, 64)
				return n
			}
		}
		t.Fatalf("%s: no byte counter in %s", host, out)
		return 0
	}
}

// startAll starts perHost sleeping containers on every host at once, on
// network net, named <prefix><host>-<i> (removed when the test ends).
func startAll(t *testing.T, l *Lab, net, prefix string, perHost int) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, perHost*len(l.Hosts()))
	for _, h := range l.Hosts() {
		for i := range perHost {
			name := fmt.Sprintf("%s%s-%d", prefix, h, i)
			t.Cleanup(func() { _, _ = l.Docker(h, "rm", "-f", name) })
			wg.Go(func() {
				if _, err := l.Docker(h, append([]string{"run", "-d", "--name", name}, sleeper("--network", net)...)...); err != nil {
					errs <- err
				}
			})
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// TestWatchReadBackAfterStartsAndLeaderChange starts 30 containers at once
// across the three hosts, then moves etcd's leadership, and counts what
// each host's overlay watches read: during the starts no address record at
// all (each start writes one; none reaches another host) and only the few
// blocks claimed; after the leader change no host reads the pool's
// addresses back. The etcd bytes each host received in all (every
// component) are logged for the record.
func TestWatchReadBackAfterStartsAndLeaderChange(t *testing.T) {
	l := multi(t)
	vxNet(t, l, "wrb", "10.244.0.0/16")
	counters := map[string]func() int64{}
	before := map[string]overlayStats{}
	bytesBefore := map[string]int64{}
	for _, h := range l.Hosts() {
		counters[h] = etcdCounter(t, l, h)
		run(t, l, h, "wrb-"+h, sleeper("--network", "wrb")...) // claims the host's block
	}
	// Let the first claims settle, then read.
	time.Sleep(2 * time.Second)
	for _, h := range l.Hosts() {
		before[h] = overlayOf(t, l, h)
		bytesBefore[h] = counters[h]()
	}

	startAll(t, l, "wrb", "wrb", 10)
	time.Sleep(2 * time.Second) // every watch event delivered
	afterStarts := map[string]overlayStats{}
	for _, h := range l.Hosts() {
		afterStarts[h] = overlayOf(t, l, h)
		d := afterStarts[h].sub(before[h])
		tot := total(d)
		t.Logf("%s during 30 starts: overlay watches %d events, %d bytes (%.0f bytes per start; by kind %v); all etcd traffic in: %d bytes (%.0f per start)",
			h, tot.Events, tot.EventBytes, float64(tot.EventBytes)/30, d, counters[h]()-bytesBefore[h], float64(counters[h]()-bytesBefore[h])/30)
		if d["addrs"].Events != 0 {
			t.Errorf("%s received %d address records: every container start would reach every host", h, d["addrs"].Events)
		}
		// One block per host holds 10 more containers: at most a claim or
		// two per host, never one event per start.
		if tot.Events >= 10 {
			t.Errorf("%s's overlay received %d events for 30 starts: they grow with the starts", h, tot.Events)
		}
		if afterStarts[h].Legacy {
			t.Errorf("%s follows address records (an old podnetd is alive?)", h)
		}
	}

	// Leader change: stop the leader, wait for a new one, start it again.
	leader := etcdLeader(t, l)
	for _, h := range l.Hosts() {
		bytesBefore[h] = counters[h]()
	}
	if err := l.EtcdStop(leader, false); err != nil {
		t.Fatal(err)
	}
	restarted := false
	t.Cleanup(func() {
		if !restarted {
			_ = l.EtcdStart(leader)
		}
	})
	if nl := etcdLeader(t, l); nl == leader {
		t.Fatalf("member %d still leads after it stopped", leader)
	}
	if err := l.EtcdStart(leader); err != nil {
		t.Fatal(err)
	}
	restarted = true
	time.Sleep(10 * time.Second) // watches resumed or relisted
	for _, h := range l.Hosts() {
		s := overlayOf(t, l, h)
		d := s.sub(afterStarts[h])
		tot := total(d)
		t.Logf("%s after the leader change of member %d: overlay watches re-read %d keys (%d bytes) in %d listings, %d events (%d bytes); by kind %v; all etcd traffic in: %d bytes",
			h, leader, tot.SnapshotKeys, tot.SnapshotBytes, tot.Snapshots, tot.Events, tot.EventBytes, d, counters[h]()-bytesBefore[h])
		if d["addrs"].Snapshots != 0 || d["addrs"].SnapshotKeys != 0 {
			t.Errorf("%s re-read the pool's %d address records after the leader change", h, d["addrs"].SnapshotKeys)
		}
		if s.Errors != before[h].Errors {
			t.Errorf("%s: %d failed kernel operations", h, s.Errors-before[h].Errors)
		}
	}
	// The data plane kept working and follows new starts.
	run(t, l, "h1", "wrb-late", sleeper("--network", "wrb")...)
	ip := ipOf(t, l, "h1", "wrb-late", "wrb")
	WaitFor(t, 30*time.Second, func() (bool, string) {
		return ping(l, "h2", "wrb-h2", ip), "h2 cannot reach a container started after the leader change"
	})
}

// fakeHosts runs bin/fakehosts against the lab's etcd with n hosts in
// pool and waits until it has written everything. The returned stop (also
// run when the test ends) makes it remove its records and waits for that.
func fakeHosts(t *testing.T, l *Lab, pool string, n int, extra ...string) (stop func()) {
	t.Helper()
	bin := filepath.Join(PodnetBin(), "fakehosts")
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("this test needs %s: run `make build` first", bin)
	}
	args := append([]string{"-endpoints", strings.Join(l.EtcdEndpoints(), ","), "-pool", pool, "-hosts", strconv.Itoa(n), "-name", l.Name + "fake"}, extra...)
	if l.Etcd == EtcdCluster {
		args = append(args, "-etcd-cacert", filepath.Join(l.PKI(), "ca.crt"), "-etcd-cert", filepath.Join(l.PKI(), "admin.crt"),
			"-etcd-key", filepath.Join(l.PKI(), "admin.key"))
	}
	cmd := exec.Command(bin, args...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := bufio.NewScanner(out)
	done := make(chan struct{})
	var once sync.Once
	stop = func() {
		once.Do(func() {
			_ = cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-done:
			case <-time.After(2 * time.Minute):
				_ = cmd.Process.Kill()
			}
			_ = cmd.Wait()
		})
	}
	t.Cleanup(stop)
	ready := make(chan string, 1)
	go func() {
		defer close(done)
		for lines.Scan() {
			if strings.HasPrefix(lines.Text(), "ready") {
				ready <- lines.Text()
			} else if strings.HasPrefix(lines.Text(), "containers") {
				t.Logf("fakehosts: %s", lines.Text())
			}
		}
	}()
	select {
	case r := <-ready:
		t.Logf("fakehosts: %s", r)
	case <-done:
		t.Fatal("fakehosts exited before it was ready")
	case <-time.After(30 * time.Minute):
		t.Fatal("fakehosts not ready after 30 minutes")
	}
	return stop
}

// rssOf is the resident set of pid in bytes.
func rssOf(t *testing.T, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb * 1024
		}
	}
	t.Fatalf("no VmRSS for pid %d", pid)
	return 0
}

func podnetRoutes(t *testing.T, l *Lab, host string) int {
	t.Helper()
	out := l.MustExec(t, host, "ip", "route", "show", "proto", "152")
	return strings.Count(out, "\n")
}

// TestThousandHosts adds 1000 stand-in hosts (4 blocks and one borrowed
// address each) to the lab's etcd: every podnetd programs them as they
// arrive, stays under 100 MB of resident memory, receives nothing more per
// container start than with three hosts, and removes them when they go.
func TestThousandHosts(t *testing.T) {
	l := multi(t)
	const pool = "100.64.0.0/10"
	n := 1000
	if v, err := strconv.Atoi(os.Getenv("PODNET_E2E_FAKE_HOSTS")); err == nil && v > 0 {
		n = v // a measurement at another size (the RSS bound is for 1000)
	}
	vxNet(t, l, "thou", pool)
	run(t, l, "h2", "thou-h2", sleeper("--network", "thou")...)
	base := podnetRoutes(t, l, "h1")
	pid := l.PIDs()["h1/podnetd"]
	rssBefore := rssOf(t, pid)
	start := time.Now()
	stop := fakeHosts(t, l, pool, n)
	written := time.Since(start)
	want := base + n*4 + n // blocks and borrowed addresses
	var got int
	WaitFor(t, 5*time.Minute, func() (bool, string) {
		got = podnetRoutes(t, l, "h1")
		return got >= want, fmt.Sprintf("h1 has %d podnet routes, want %d", got, want)
	})
	programmed := time.Since(start)
	rss := rssOf(t, pid)
	s := overlayOf(t, l, "h1")
	t.Logf("%d hosts: written to etcd in %v, programmed on h1 %v after the first write (%d routes); h1 podnetd RSS %d MiB (before %d MiB); overlay: %d full passes, %d incremental passes, %d errors",
		n, written.Round(time.Millisecond), programmed.Round(time.Millisecond), got, rss>>20, rssBefore>>20, s.Syncs, s.Steps, s.Errors)
	if n <= 1000 && rss > 100<<20 {
		t.Errorf("podnetd RSS %d MiB with 1000 hosts, want ≤ 100 MiB", rss>>20)
	}
	if s.Errors != 0 {
		t.Errorf("h1: %d failed kernel operations", s.Errors)
	}

	// Container starts cost the same watch traffic as with three hosts.
	before := overlayOf(t, l, "h1")
	for i := range 10 {
		run(t, l, "h2", fmt.Sprintf("thou-%d", i), sleeper("--network", "thou")...)
	}
	time.Sleep(2 * time.Second)
	d := overlayOf(t, l, "h1").sub(before)
	tot := total(d)
	t.Logf("h1 during 10 starts on h2 with %d hosts: overlay watches %d events, %d bytes (by kind %v)", n, tot.Events, tot.EventBytes, d)
	if d["addrs"].Events != 0 || tot.Events >= 10 {
		t.Errorf("h1 received %d events (%d address records) for 10 starts on h2", tot.Events, d["addrs"].Events)
	}

	// The stand-ins go (leases revoked, records deleted): so do their routes.
	stop()
	WaitFor(t, time.Minute, func() (bool, string) {
		got = podnetRoutes(t, l, "h1")
		return got == base, fmt.Sprintf("h1 has %d podnet routes, want %d", got, base)
	})
}
