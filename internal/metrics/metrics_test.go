package metrics

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// unbounded are label names that would carry per-object values (one series
// per container, address, ...): never allowed.
var unbounded = []string{"container", "endpoint", "network", "address", "ip", "host", "id", "name", "upstream", "client", "key"}

var validName = regexp.MustCompile(`^[a-z][a-z0-9_]*[a-z0-9]$`)

// TestSeriesDeclarations checks every declared series against podnet's and
// Prometheus's conventions.
func TestSeriesDeclarations(t *testing.T) {
	if len(all) < 20 {
		t.Fatalf("only %d series declared", len(all))
	}
	seen := map[string]bool{}
	for _, s := range all {
		full := Namespace + "_" + s.name
		if seen[full] {
			t.Errorf("%s declared twice", full)
		}
		seen[full] = true
		if !validName.MatchString(s.name) || strings.Contains(s.name, "__") {
			t.Errorf("%s: not a snake_case name", full)
		}
		switch s.kind {
		case "counter":
			if !strings.HasSuffix(s.name, "_total") {
				t.Errorf("%s: a counter's name ends in _total", full)
			}
		case "histogram":
			if !strings.HasSuffix(s.name, "_seconds") {
				t.Errorf("%s: podnet's histograms are durations, in seconds", full)
			}
		case "gauge":
			if strings.HasSuffix(s.name, "_total") {
				t.Errorf("%s: only counters end in _total", full)
			}
		default:
			t.Errorf("%s: unknown kind %q", full, s.kind)
		}
		for _, l := range s.labels {
			if slices.Contains(unbounded, l) {
				t.Errorf("%s: label %q would have one series per object", full, l)
			}
		}
	}
}

// TestRegistry registers everything in fresh registries (each series
// exactly once: a duplicate panics), fills every series and runs
// Prometheus's own linter over the result.
func TestRegistry(t *testing.T) {
	_ = NewRegistry("test")
	reg := NewRegistry("v1.2.3")
	SetIPAMUsage(func() []PoolUsage { return []PoolUsage{{Pool: "10.1.0.0/16", Blocks: 2, Addresses: 5, Usable: 65534}} })
	t.Cleanup(func() { SetIPAMUsage(nil) })
	SetProxyPending(func() int { return 3 })
	t.Cleanup(func() { proxyPending.fn.Store(nil) })
	heard := time.Unix(1700000000, 500000000)
	SetEtcdLastHeard(func() time.Time { return heard })
	t.Cleanup(func() { etcdLastHeard.fn.Store(nil) })
	SetHosts(func() (HostCounts, bool) { return HostCounts{Alive: 3, Down: 1}, true })
	t.Cleanup(func() { SetHosts(nil) })
	SetWireGuardPeers(2)
	t.Cleanup(func() { wireGuardPeers.fn.Store(nil) })
	SetPolicyDenials(func() []PolicyDenial {
		return []PolicyDenial{{Policy: "db", Direction: "ingress", Packets: 3}, {Direction: "egress", Packets: 1}}
	})
	t.Cleanup(func() { SetPolicyDenials(nil) })
	SetBGPSessions(func() []BGPSession { return []BGPSession{{Peer: "tor", Up: true, Routes: 3}} })
	t.Cleanup(func() { SetBGPSessions(nil) })
	for _, s := range all {
		values := make([]string, len(s.labels))
		for i := range values {
			values[i] = "lint"
		}
		switch c := s.c.(type) {
		case *prometheus.CounterVec:
			c.WithLabelValues(values...).Inc()
			t.Cleanup(func() { c.DeleteLabelValues(values...) })
		case *prometheus.GaugeVec:
			c.WithLabelValues(values...).Inc()
			t.Cleanup(func() { c.DeleteLabelValues(values...) })
		case *prometheus.HistogramVec:
			c.WithLabelValues(values...).Observe(0.01)
			t.Cleanup(func() { c.DeleteLabelValues(values...) })
		}
	}
	problems, err := testutil.GatherAndLint(reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]*dto.MetricFamily{}
	for _, mf := range mfs {
		got[mf.GetName()] = mf
	}
	for _, s := range all {
		if got[Namespace+"_"+s.name] == nil {
			t.Errorf("%s_%s is declared but not gathered", Namespace, s.name)
		}
	}
	bi := got["podnet_build_info"]
	if bi == nil || len(bi.Metric) != 1 {
		t.Fatalf("podnet_build_info: %v", bi)
	}
	labels := map[string]string{}
	for _, l := range bi.Metric[0].Label {
		labels[l.GetName()] = l.GetValue()
	}
	if labels["version"] != "v1.2.3" || !strings.HasPrefix(labels["go_version"], "go") {
		t.Errorf("podnet_build_info labels = %v", labels)
	}
	for _, name := range []string{"go_goroutines", "process_resident_memory_bytes"} {
		if got[name] == nil {
			t.Errorf("%s missing: the runtime and process collectors are part of the registry", name)
		}
	}
	if v := got["podnet_ipam_addresses_in_use"]; v == nil || v.Metric[0].GetGauge().GetValue() != 5 {
		t.Errorf("podnet_ipam_addresses_in_use = %v, want 5 for 10.1.0.0/16", v)
	}
	if v := got["podnet_ipam_pool_usable_addresses"]; v == nil || v.Metric[0].GetGauge().GetValue() != 65534 {
		t.Errorf("podnet_ipam_pool_usable_addresses = %v, want 65534 for 10.1.0.0/16", v)
	}
	if v := got["podnet_etcd_view_last_heard_timestamp_seconds"]; v == nil || v.Metric[0].GetGauge().GetValue() != 1700000000.5 {
		t.Errorf("podnet_etcd_view_last_heard_timestamp_seconds = %v, want 1700000000.5", v)
	}
	if v := got["podnet_wireguard_peers"]; v == nil || v.Metric[0].GetGauge().GetValue() != 2 {
		t.Errorf("podnet_wireguard_peers = %v, want 2", v)
	}
	states := map[string]float64{}
	for _, m := range got["podnet_hosts"].GetMetric() {
		states[m.GetLabel()[0].GetValue()] = m.GetGauge().GetValue()
	}
	if states["alive"] != 3 || states["down"] != 1 || len(states) != 2 {
		t.Errorf("podnet_hosts = %v, want alive 3, down 1", states)
	}
}

// TestSeriesAbsentUntilKnown: the series that only mean something once
// their source has an answer are absent before: the hosts while the view
// is not loaded (an empty view would count every host gone), the
// WireGuard peers on a host without encryption.
func TestSeriesAbsentUntilKnown(t *testing.T) {
	reg := NewRegistry("t")
	loaded := false
	SetHosts(func() (HostCounts, bool) { return HostCounts{Alive: 1}, loaded })
	t.Cleanup(func() { SetHosts(nil) })
	names := func() map[string]bool {
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]bool{}
		for _, mf := range mfs {
			out[mf.GetName()] = true
		}
		return out
	}
	got := names()
	for _, n := range []string{"podnet_hosts", "podnet_wireguard_peers"} {
		if got[n] {
			t.Errorf("%s gathered before its source knows", n)
		}
	}
	loaded = true
	if !names()["podnet_hosts"] {
		t.Error("podnet_hosts missing once the view is loaded")
	}
}

// TestNames: every declared series is named, under the namespace.
func TestNames(t *testing.T) {
	n := Names()
	if len(n) != len(all)+1 || !slices.Contains(n, "podnet_build_info") || !slices.Contains(n, "podnet_hosts") ||
		!slices.Contains(n, "podnet_ipam_pool_usable_addresses") {
		t.Fatalf("Names() = %v", n)
	}
}

func TestCheckAddr(t *testing.T) {
	for _, tc := range []struct {
		addr     string
		loopback bool
		bad      bool
	}{
		{addr: DefaultAddr, loopback: true},
		{addr: "[::1]:9477", loopback: true},
		{addr: "localhost:9477", loopback: true},
		{addr: "127.0.0.2:9000", loopback: true},
		{addr: "10.0.0.5:9477"},
		{addr: ":9477"},
		{addr: "0.0.0.0:9477"},
		{addr: "9477", bad: true},
		{addr: "127.0.0.1:0", bad: true},
		{addr: "127.0.0.1:70000", bad: true},
		{addr: "example.com:9477", bad: true},
		{addr: "off", bad: true},
	} {
		lo, err := CheckAddr(tc.addr)
		if (err != nil) != tc.bad || lo != tc.loopback {
			t.Errorf("CheckAddr(%q) = %v, %v; want loopback=%v bad=%v", tc.addr, lo, err, tc.loopback, tc.bad)
		}
		if err != nil && !strings.Contains(err.Error(), tc.addr) {
			t.Errorf("CheckAddr(%q): error %q does not name the value", tc.addr, err)
		}
	}
}

// TestServeRetriesTakenPort: a port held by another process is retried
// until it frees up; nothing but /metrics is served.
func TestServeRetriesTakenPort(t *testing.T) {
	holder, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := holder.Addr().String()
	old := retryListen
	retryListen = 50 * time.Millisecond
	t.Cleanup(func() { retryListen = old })

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); Serve(ctx, addr, Handler(NewRegistry("t"), quiet, nil, false), quiet) }()
	t.Cleanup(func() { cancel(); <-done })

	time.Sleep(120 * time.Millisecond) // a few failed attempts
	holder.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + Path)
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if !strings.Contains(string(body), "podnet_build_info") {
				t.Fatalf("GET %s: no podnet_build_info in\n%s", Path, body)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("metrics never served after the port was freed: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	resp, err := http.Get("http://" + addr + "/debug/pprof/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET /debug/pprof/: %s, want 404", resp.Status)
	}
}

func TestHandlerServesTextFormat(t *testing.T) {
	srv := httptest.NewServer(Handler(NewRegistry("t"), quiet, nil, false))
	defer srv.Close()
	PluginRequests.WithLabelValues("NetworkDriver.Join", OK).Inc()
	resp, err := http.Get(srv.URL + Path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
		t.Errorf("Content-Type %q", resp.Header.Get("Content-Type"))
	}
	if !strings.Contains(string(body), `podnet_plugin_requests_total{method="NetworkDriver.Join",outcome="ok"}`) {
		t.Errorf("series missing from\n%s", body)
	}
}

// TestHealthz: /healthz is 200 while the check finds nothing, 503 with
// the problems as JSON otherwise.
func TestHealthz(t *testing.T) {
	var problems []string
	srv := httptest.NewServer(Handler(NewRegistry("t"), quiet, func() []string { return problems }, false))
	defer srv.Close()
	get := func() (int, string) {
		resp, err := http.Get(srv.URL + HealthPath)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get(); code != http.StatusOK || !strings.Contains(body, `"healthy":true`) {
		t.Fatalf("healthy: %d %s", code, body)
	}
	problems = []string{"etcd view stale: alive/"}
	if code, body := get(); code != http.StatusServiceUnavailable || !strings.Contains(body, "etcd view stale: alive/") {
		t.Fatalf("unhealthy: %d %s", code, body)
	}
}

// TestHandlerProfiling: Go's profiles are served only when asked for.
func TestHandlerProfiling(t *testing.T) {
	for _, on := range []bool{false, true} {
		srv := httptest.NewServer(Handler(NewRegistry("t"), quiet, nil, on))
		resp, err := http.Get(srv.URL + ProfilePath + "heap?debug=1")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		srv.Close()
		served := resp.StatusCode == http.StatusOK && strings.Contains(string(body), "heap profile")
		if served != on {
			t.Errorf("profiling %v: GET %sheap: %s (served: %v)", on, ProfilePath, resp.Status, served)
		}
	}
}
