//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/podnet/podnet/internal/testutil"
)

// podnetMetrics is podnetd's default metrics address, on each host's own
// loopback.
const podnetMetrics = "127.0.0.1:9477"

// podnetRules are the Prometheus rules podnet ships, in the repository.
const podnetRules = "dist/prometheus/podnet-rules.yml"

// prometheus is a real Prometheus server scraping the lab's podnetds.
type prometheus struct {
	base string // http://127.0.0.1:port
}

// startPrometheus runs Debian's prometheus on a free port of the root
// namespace's loopback, scraping every lab host's podnetd each second
// (labelled host="h1", ...) and evaluating podnet's rules
// (dist/prometheus/podnet-rules.yml, as shipped) every 2 s, with its own
// data directory. podnetd serves metrics on its host's loopback only, so
// each host gets a relay from a root-namespace loopback port into its
// namespace, as a node-local agent would scrape it. Prometheus is stopped
// by PID, and its data removed, when the test ends. It returns once every
// target is up.
func startPrometheus(t *testing.T, l *Lab) *prometheus {
	t.Helper()
	var targets strings.Builder
	for _, h := range l.Hosts() {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ln.Close() })
		path := l.netnsPath(h)
		go relay(ln, func() (net.Conn, error) { return dialInNetns(path, podnetMetrics) })
		fmt.Fprintf(&targets, "      - targets: ['%s']\n        labels: {host: %s}\n", ln.Addr(), h)
	}
	port := testutil.FreePort(t)
	dir := t.TempDir()
	conf := filepath.Join(dir, "prometheus.yml")
	data := filepath.Join(dir, "data")
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	cfg := fmt.Sprintf(`global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 2s
rule_files:
  - %s
scrape_configs:
  - job_name: podnet
    static_configs:
%s`, filepath.Join(root, podnetRules), targets.String())
	if err := os.WriteFile(conf, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	d := startDaemon(t, "prometheus", dir, data, "--config.file="+conf, "--storage.tsdb.path="+data,
		fmt.Sprintf("--web.listen-address=127.0.0.1:%d", port), "--log.level=warn")
	p := &prometheus{base: loopbackURL(port)}
	d.waitReady(t, func() (bool, string) {
		n, err := p.value(`count(up{job="podnet"} == 1)`)
		return err == nil && n == float64(len(l.Hosts())), fmt.Sprintf("targets up: %v %v", n, err)
	})
	return p
}

// value runs an instant query through Prometheus's HTTP API and returns
// the sum of the resulting vector (0 for an empty one).
func (p *prometheus) value(query string) (float64, error) {
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(p.base + "/api/v1/query?query=" + url.QueryEscape(query))
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var r struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			ResultType string `json:"resultType"`
			Result     []struct {
				Value [2]any `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		return 0, fmt.Errorf("query %s: %w", query, err)
	}
	if r.Status != "success" || r.Data.ResultType != "vector" {
		return 0, fmt.Errorf("query %s: %s %s (%s)", query, r.Status, r.Error, r.Data.ResultType)
	}
	sum := 0.0
	for _, s := range r.Data.Result {
		str, _ := s.Value[1].(string)
		v, err := strconv.ParseFloat(str, 64)
		if err != nil {
			return 0, fmt.Errorf("query %s: value %v", query, s.Value[1])
		}
		sum += v
	}
	return sum, nil
}

// must returns a query's value now, failing the test on error.
func (p *prometheus) must(t *testing.T, query string) float64 {
	t.Helper()
	v, err := p.value(query)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// await waits until the query's value satisfies cond.
func (p *prometheus) await(t *testing.T, what, query string, cond func(float64) bool) {
	t.Helper()
	WaitFor(t, 30*time.Second, func() (bool, string) {
		v, err := p.value(query)
		return err == nil && cond(v), fmt.Sprintf("%s: %s = %v (%v)", what, query, v, err)
	})
}

func above(x float64) func(float64) bool { return func(v float64) bool { return v > x } }

// TestPrometheusMetrics scrapes the 3-host lab's podnetds with a real
// Prometheus and checks through its API that the series move when
// containers start, a port is published and a network spans hosts; and
// that the metrics port is reachable neither from the network nor from a
// container.
func TestPrometheusMetrics(t *testing.T) {
	l := multi(t)
	p := startPrometheus(t, l)
	if n := p.must(t, `count(podnet_build_info{job="podnet"} == 1)`); n != 3 {
		t.Fatalf("podnet_build_info on %v hosts, want 3", n)
	}
	if n := p.must(t, `count(go_goroutines{job="podnet"})`); n != 3 {
		t.Fatalf("go_goroutines on %v hosts, want 3", n)
	}
	creates := func(h string) string {
		return fmt.Sprintf(`sum(podnet_plugin_requests_total{host=%q,method="NetworkDriver.CreateEndpoint",outcome="ok"}) or vector(0)`, h)
	}
	creates1, creates2 := p.must(t, creates("h1")), p.must(t, creates("h2"))
	incremental := `sum(podnet_nft_syncs_total{host="h1",kind="incremental",outcome="ok"})`
	incremental0 := p.must(t, incremental)
	localDNS := `sum(podnet_dns_queries_total{host="h2",result="local"})`
	localDNS0 := p.must(t, localDNS)

	const pool = "10.73.0.0/16" // clear of every lab underlay (LAB_NET)
	vxNet(t, l, "mpods", pool)
	run(t, l, "h1", "mweb", webArgs("--network", "mpods", "-p", "18200:80")...)
	run(t, l, "h2", "mpeer", sleeper("--network", "mpods")...)
	web := ipOf(t, l, "h1", "mweb", "mpods")
	WaitFor(t, shortWait, func() (bool, string) { return ping(l, "h2", "mpeer", web), "h2 cannot ping h1's container" })
	WaitFor(t, shortWait, func() (bool, string) {
		out, err := curlClient(l, "http://"+l.HostIP("h1")+":18200/passwd")
		return err == nil && strings.Contains(out, "root:"), fmt.Sprintf("published port: %v %s", err, out)
	})
	WaitFor(t, shortWait, func() (bool, string) {
		out, err := l.Docker("h2", "exec", "mpeer", "nslookup", "mweb", "10.96.0.10")
		return err == nil && strings.Contains(out, web), fmt.Sprintf("cluster DNS: %v %s", err, out)
	})

	t.Run("container starts", func(t *testing.T) {
		p.await(t, "CreateEndpoint on h1", creates("h1"), above(creates1))
		p.await(t, "CreateEndpoint on h2", creates("h2"), above(creates2))
		p.await(t, "its latency", `sum(podnet_plugin_request_duration_seconds_count{host="h1",method="NetworkDriver.CreateEndpoint"})`, above(0))
		p.await(t, "addresses allocated on h2", fmt.Sprintf(`sum(podnet_ipam_allocations_total{host="h2",pool=%q,kind="dynamic"})`, pool), above(0))
		p.await(t, "addresses in use on h1", fmt.Sprintf(`sum(podnet_ipam_addresses_in_use{host="h1",pool=%q})`, pool), above(0))
		p.await(t, "blocks owned on h1", fmt.Sprintf(`sum(podnet_ipam_blocks_owned{host="h1",pool=%q})`, pool), above(0))
		p.await(t, "etcd requests timed", `sum(podnet_etcd_request_duration_seconds_count{host="h1",method="Txn"})`, above(0))
		p.await(t, "Docker reachable", `min(podnet_docker_reachable)`, func(v float64) bool { return v == 1 })
		p.await(t, "Docker events followed", `sum(podnet_docker_watcher_lag_seconds_count{host="h2"})`, above(0))
		p.await(t, "the pool's size on h1", fmt.Sprintf(`sum(podnet_ipam_pool_usable_addresses{host="h1",pool=%q})`, pool),
			func(v float64) bool { return v == 65534 })
	})
	t.Run("published port", func(t *testing.T) {
		p.await(t, "map elements on h1", `sum(podnet_nft_map_elements{host="h1"})`, above(0))
		p.await(t, "incremental nftables syncs on h1", incremental, above(incremental0))
		p.await(t, "nftables sync latency", `sum(podnet_nft_sync_duration_seconds_count{host="h1",kind="incremental"})`, above(0))
	})
	t.Run("cross-host network", func(t *testing.T) {
		p.await(t, "h1 programs h2 and h3", `sum(podnet_overlay_remote_hosts{host="h1"})`, func(v float64) bool { return v == 2 })
		p.await(t, "h1 routes h2's block", `sum(podnet_overlay_remote_blocks{host="h1"})`, above(0))
		p.await(t, "h2 routes h1's block", `sum(podnet_overlay_remote_blocks{host="h2"})`, above(0))
		p.await(t, "overlay passes", `sum(podnet_overlay_syncs_total{host="h3",kind="incremental"})`, above(0))
		p.await(t, "cross-host name answered locally by h2", localDNS, above(localDNS0))
		p.await(t, "every host sees 3 hosts alive", `count(podnet_hosts{state="alive"} == 3)`, func(v float64) bool { return v == 3 })
		p.await(t, "and none down", `sum(podnet_hosts{state="down"})`, func(v float64) bool { return v == 0 })
		p.await(t, "every host hears from etcd", `count(time() - podnet_etcd_view_last_heard_timestamp_seconds < 15)`,
			func(v float64) bool { return v == 3 })
		p.await(t, "no load-balancer address unannounced", `sum(podnet_lb_unannounced_addresses)`, func(v float64) bool { return v == 0 })
		if n := p.must(t, `count(podnet_wireguard_peers)`); n != 0 {
			t.Fatalf("podnet_wireguard_peers on %v hosts of a lab without encryption", n)
		}
	})
	t.Run("service proxy", func(t *testing.T) {
		l.MustExec(t, "h2", "podnetctl", "service", "create", "mprom", "--selector", "app=mprom", "--port", "80")
		t.Cleanup(func() { _, _ = l.Exec("h2", "podnetctl", "service", "rm", "mprom") })
		run(t, l, "h1", "mprom1", sleeper("--network", "mpods", "-l", "app=mprom")...)
		p.await(t, "h1 holds the service", `sum(podnet_proxy_services{host="h1"})`, above(0))
		p.await(t, "h3 timed its endpoint's programming", `sum(podnet_proxy_network_programming_duration_seconds_count{host="h3"})`, above(0))
		p.await(t, "incremental rounds", `sum(podnet_proxy_syncs_total{host="h2",kind="incremental",outcome="ok"})`, above(0))
		p.await(t, "round durations", `sum(podnet_proxy_sync_duration_seconds_count{host="h1",kind="full"})`, above(0))
		p.await(t, "last round recent", `time() - max(podnet_proxy_last_sync_timestamp_seconds{host="h1"})`, func(v float64) bool { return v < 600 })
		p.await(t, "nothing pending or failing", `sum(podnet_proxy_pending_changes) + sum(podnet_proxy_services_failing)`, func(v float64) bool { return v == 0 })
		for _, h := range l.Hosts() {
			out, err := curl(l, h, "http://"+podnetMetrics+"/healthz")
			if err != nil || !strings.Contains(out, `"healthy":true`) {
				t.Fatalf("%s's /healthz: %v %s", h, err, out)
			}
		}
	})
	t.Run("not exposed", func(t *testing.T) {
		if out, err := curlClient(l, "http://"+l.HostIP("h1")+":9477/metrics"); err == nil {
			t.Fatalf("the client reached h1's metrics on the underlay:\n%.200s", out)
		}
		// A container routing the host's loopback through its gateway
		// (route_localnet is on for podnet bridges) gets nothing either.
		out, err := l.Docker("h1", "run", "--rm", "--cap-add", "NET_ADMIN", "--sysctl", "net.ipv4.conf.all.route_localnet=1",
			"--network", "mpods", TestImage, "sh", "-c",
			"ip addr del 127.0.0.1/8 dev lo && ip route add 127.0.0.1/32 via 10.73.0.1 dev eth0 && "+
				"timeout 3 wget -q -O - http://"+podnetMetrics+"/metrics; echo rc=$?")
		if err != nil || !strings.Contains(out, "rc=") {
			t.Fatalf("probe container: %v %s", err, out)
		}
		if strings.Contains(out, "podnet_") || strings.Contains(out, "rc=0") {
			t.Fatalf("a container read h1's metrics through its gateway:\n%.300s", out)
		}
	})
}
