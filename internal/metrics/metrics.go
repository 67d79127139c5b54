package metrics

import (
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Namespace starts every podnet series name.
const Namespace = "podnet"

// Label values shared by several series. Outcome labels are always one of
// these.
const (
	OK    = "ok"
	Error = "error"
	// BadRequest is a plugin request whose body could not be decoded.
	BadRequest = "bad_request"
	// Other stands for a value podnet does not recognise (labels stay
	// bounded whatever a client sends).
	Other = "other"
)

// Every series podnet exports. Keep this list the only place a series is
// declared; the registration test checks each of them.
var (
	// Plugin socket (dockerd's NetworkDriver and IpamDriver calls).
	PluginRequests = counterVec("plugin_requests_total",
		"Requests dockerd sent to the plugin socket, by method (NetworkDriver.CreateEndpoint, IpamDriver.RequestAddress, ...) and outcome (ok; error: podnet refused or failed it; bad_request: undecodable).",
		"method", "outcome")
	PluginRequestDuration = histogramVec("plugin_request_duration_seconds",
		"Time podnet took to answer a plugin request, by method.",
		"method")

	// IPAM.
	IPAMAllocations = counterVec("ipam_allocations_total",
		"Addresses this host allocated, by pool and kind (dynamic, explicit: --ip or --aux-address, gateway).",
		"pool", "kind")
	IPAMAllocationFailures = counterVec("ipam_allocation_failures_total",
		"RequestAddress calls that failed, by reason (exhausted: no free address; etcd: etcd unreachable; unknown_pool; other: refused, e.g. an address in use or invalid).",
		"reason")
	ipamUsage = newUsageCollector()

	// Overlay (VXLAN routes, neighbors and FDB entries for remote blocks).
	OverlaySyncs = counterVec("overlay_syncs_total",
		"Overlay programming passes, by kind (incremental: the desired state changed; full: periodic resync against the kernel; unchanged: nothing to program).",
		"kind")
	OverlaySyncDuration = histogramVec("overlay_sync_duration_seconds",
		"Duration of overlay programming passes, by kind.",
		"kind")
	OverlaySyncErrors = counter("overlay_sync_errors_total",
		"Kernel operations that failed during overlay programming passes (each failed pass is retried).")
	OverlayChanges = counterVec("overlay_kernel_changes_total",
		"Kernel changes overlay passes made, by object (route, neighbor, fdb, proxy, wireguard_peer, address) and operation (add, replace, delete, set).",
		"object", "op")
	OverlayNDP = counterVec("overlay_ndp_solicitations_total",
		"Neighbor solicitations the NDP responders of IPv6 bridges handled, by outcome (answered: another host's address; declined: local, outside the pools or not routed; ignored: malformed or duplicate address detection; limited: over the rate limit).",
		"outcome")
	OverlayRemoteHosts = gauge("overlay_remote_hosts",
		"Remote hosts the last clean overlay pass programmed (neighbor and FDB entries), counted once across networks.")
	OverlayRemoteBlocks = gauge("overlay_remote_blocks",
		"Routes to other hosts' address blocks the last clean overlay pass programmed.")

	// nftables (published ports, masquerade, isolation).
	NFTSyncs = counterVec("nft_syncs_total",
		"Changes of podnet's nftables table, by kind (full: the whole table replaced in one batch; incremental: map elements of one endpoint) and outcome (ok, error).",
		"kind", "outcome")
	NFTSyncDuration = histogramVec("nft_sync_duration_seconds",
		"Duration of nftables table changes, by kind.",
		"kind")
	NFTMapElements = gauge("nft_map_elements",
		"Elements in podnet's published-port maps (one per published port and address family) after the last change.")
	NFTCanaryResyncs = counterVec("nft_canary_resyncs_total",
		"Full resyncs the canary triggered, by reason (missing: podnet's table or iptables jump was gone; check_failed: the check itself failed).",
		"reason")

	// Service proxy (the agent turning the catalog into the data plane's
	// services), kube-proxy's series under podnet's names.
	ProxySyncs = counterVec("proxy_syncs_total",
		"Rounds in which the service proxy handed changes to the data plane, by kind (full: the whole set, compared with the kernel, at start and every resync; incremental: the services that changed) and outcome (ok, error: the data plane took none of it and the round is retried).",
		"kind", "outcome")
	ProxySyncDuration = histogramVec("proxy_sync_duration_seconds",
		"Duration of the service proxy's rounds, by kind: the change computed and programmed as one nftables transaction (kube-proxy's sync_proxy_rules_duration_seconds).",
		"kind")
	ProxyProgrammingDuration = histogram("proxy_network_programming_duration_seconds",
		"Time from a change's write to etcd (a service, or a container record that changes a service's endpoints; the writer's clock) to its rules being live on this host (kube-proxy's network_programming_duration_seconds).")
	ProxyLastSync = gauge("proxy_last_sync_timestamp_seconds",
		"Unix time of the service proxy's last successful round; a full one runs at least every resync interval (5 min).")
	proxyPending = newFuncGauge("proxy_pending_changes",
		"Services changed in etcd, or refused by the data plane and waiting for a retry, that this host has not programmed yet.")
	ProxyServices = gauge("proxy_services",
		"Services with rules that the data plane of this host was given (headless services have none).")
	ProxyServicesFailing = gauge("proxy_services_failing",
		"Services this host cannot program (an address or port another service holds, the kernel refusing their rules); podnetctl service get names the host and the reason.")

	// etcd.
	EtcdRequestDuration = histogramVec("etcd_request_duration_seconds",
		"Duration of etcd requests (each attempt of the client's retries), by gRPC method (Range, Txn, LeaseGrant, ...).",
		"method")
	EtcdRequestErrors = counterVec("etcd_request_errors_total",
		"etcd requests that failed, by gRPC method and status code (Unavailable, DeadlineExceeded, Canceled, ...).",
		"method", "code")
	EtcdWatchKeys = counterVec("etcd_watch_keys_total",
		"Keys received by the watches of this podnetd (listed, or changed), by key prefix (hosts, alive, ipam, epmeta, sel, dns, ...).",
		"prefix")
	EtcdWatchBytes = counterVec("etcd_watch_bytes_total",
		"Key and value bytes received by the watches of this podnetd (listings and changes), by key prefix.",
		"prefix")
	EtcdWatchRestarts = counterVec("etcd_watch_restarts_total",
		"Watches that ended and were started again (connection lost, leader lost, compaction), by key prefix (hosts, alive, ipam, epmeta, ...).",
		"prefix")
	etcdLastHeard = newFuncGauge("etcd_view_last_heard_timestamp_seconds",
		"Unix time when the followed etcd prefix that heard from etcd least recently last did (a listing, a change, or a progress notification, asked for every 5 s): close to now while the watches are connected, still while etcd is out of reach (/healthz fails after --healthz-timeout).")

	// Hosts, as this host's view of etcd shows them.
	hosts = newStateGauge("hosts",
		"Hosts registered in etcd, by state (alive: its liveness lease holds; down: registered without one: its podnetd stopped longer than --liveness-ttl ago, cannot reach etcd, or the host is gone for good and awaits podnetctl host rm), as this host's view shows them.",
		"state")

	// WireGuard (podnetd --encryption wireguard).
	wireGuardPeers = newFuncGauge("wireguard_peers",
		"Other hosts this host has as WireGuard peers after the last clean overlay pass: with encryption every other live host with a valid key (traffic to any other is dropped); absent without encryption.")

	// Cluster DNS.
	DNSQueries = counterVec("dns_queries_total",
		"Queries the cluster DNS answered, by result (local: from podnet's records; forwarded: relayed from an upstream; nxdomain: unknown name and no upstream; servfail: no upstream answered; invalid: a request that is not a query).",
		"result")
	DNSForwards = counterVec("dns_forwards_total",
		"Queries the cluster DNS forwarded to the host's resolvers, by outcome (ok: an upstream answered; error: none did).",
		"outcome")
	DNSForwardDuration = histogram("dns_forward_duration_seconds",
		"Time until an upstream answered a forwarded query (or all failed).")

	// Docker.
	DockerReachable = gauge("docker_reachable",
		"1 while the local Docker daemon answers podnetd's API calls, 0 after they failed for a second in a row.")
	DockerWatcherLag = histogram("docker_watcher_lag_seconds",
		"Time from a Docker container or network event to podnet's metadata being up to date with it.")
	DockerWatcherResyncs = counterVec("docker_watcher_resyncs_total",
		"Full resyncs of container metadata with Docker (at start, after a lost event stream, periodically, after failures), by outcome.",
		"outcome")

	// LoadBalancer addresses (L2: ARP/NDP; BGP: routes to routers).
	LBL2Addresses = gauge("lb_l2_addresses",
		"Load-balancer addresses of L2 pools this host answers ARP/NDP for.")
	LBL2Takeovers = counter("lb_l2_takeovers_total",
		"Load-balancer addresses this host started answering ARP/NDP for (its election won).")
	LBReplies = counterVec("lb_replies_total",
		"ARP replies and neighbor advertisements this host sent for load-balancer addresses, by protocol (arp, ndp).",
		"protocol")
	LBAnnouncements = counter("lb_announcements_total",
		"Gratuitous ARP replies and unsolicited neighbor advertisements sent for load-balancer addresses this host took over.")
	LBUnannounced = gaugeVecOf("lb_unannounced_addresses",
		"Load-balancer addresses some host could announce (a Cluster service's, or a Local one's with a ready endpoint) that none does, by mode (l2: no host holds its claim; bgp: no host with an established session announces it), as this host's view shows them.",
		"mode")
	BGPAnnounced = gauge("bgp_announced_addresses",
		"Load-balancer addresses this host announces over BGP (one /32 or /128 route each, to every established peer).")
	bgpSessions = newBGPCollector()
)

// durationBuckets suit every latency podnet measures: sub-millisecond
// map updates up to the plugin's 20 s request deadline and event lag.
var durationBuckets = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 20, 60}

// series describes one declared series, for NewRegistry and the
// registration test.
type series struct {
	name   string // without the namespace
	kind   string // counter, gauge or histogram
	labels []string
	c      prometheus.Collector
}

// all holds every series of this file, in declaration order.
var all []series

func declare[C prometheus.Collector](c C, kind, name string, labels []string) C {
	all = append(all, series{name: name, kind: kind, labels: labels, c: c})
	return c
}

func opts(name, help string) prometheus.Opts {
	return prometheus.Opts{Namespace: Namespace, Name: name, Help: help}
}

func histOpts(name, help string) prometheus.HistogramOpts {
	return prometheus.HistogramOpts{Namespace: Namespace, Name: name, Help: help, Buckets: durationBuckets}
}

func counter(name, help string) prometheus.Counter {
	return declare(prometheus.NewCounter(prometheus.CounterOpts(opts(name, help))), "counter", name, nil)
}

func counterVec(name, help string, labels ...string) *prometheus.CounterVec {
	return declare(prometheus.NewCounterVec(prometheus.CounterOpts(opts(name, help)), labels), "counter", name, labels)
}

func gauge(name, help string) prometheus.Gauge {
	return declare(prometheus.NewGauge(prometheus.GaugeOpts(opts(name, help))), "gauge", name, nil)
}

// funcGauge is a gauge computed at scrape time by a function set later
// (SetProxyPending); none set: no sample.
type funcGauge struct {
	desc *prometheus.Desc
	fn   atomic.Pointer[func() float64]
}

func newFuncGauge(name, help string) *funcGauge {
	g := &funcGauge{desc: prometheus.NewDesc(Namespace+"_"+name, help, nil, nil)}
	return declare(g, "gauge", name, nil)
}

func (g *funcGauge) Describe(ch chan<- *prometheus.Desc) { ch <- g.desc }

func (g *funcGauge) Collect(ch chan<- prometheus.Metric) {
	if fn := g.fn.Load(); fn != nil {
		ch <- prometheus.MustNewConstMetric(g.desc, prometheus.GaugeValue, (*fn)())
	}
}

// SetEtcdLastHeard sets where podnet_etcd_view_last_heard_timestamp_seconds
// comes from (feed.Hub.LastHeard): fn is called at every scrape.
func SetEtcdLastHeard(fn func() time.Time) {
	f := func() float64 { return float64(fn().UnixNano()) / 1e9 }
	etcdLastHeard.fn.Store(&f)
}

// SetWireGuardPeers sets podnet_wireguard_peers; until it is called (a
// host without encryption) the series is absent.
func SetWireGuardPeers(n int) {
	v := float64(n)
	f := func() float64 { return v }
	wireGuardPeers.fn.Store(&f)
}

// SetProxyPending sets where podnet_proxy_pending_changes comes from: fn
// is called at every scrape and must answer from memory, quickly.
func SetProxyPending(fn func() int) {
	f := func() float64 { return float64(fn()) }
	proxyPending.fn.Store(&f)
}

func gaugeVecOf(name, help string, labels ...string) *prometheus.GaugeVec {
	return declare(prometheus.NewGaugeVec(prometheus.GaugeOpts(opts(name, help)), labels), "gauge", name, labels)
}

func histogram(name, help string) prometheus.Histogram {
	return declare(prometheus.NewHistogram(histOpts(name, help)), "histogram", name, nil)
}

func histogramVec(name, help string, labels ...string) *prometheus.HistogramVec {
	return declare(prometheus.NewHistogramVec(histOpts(name, help), labels), "histogram", name, labels)
}

// Since observes the seconds elapsed since start.
func Since(o prometheus.Observer, start time.Time) {
	o.Observe(time.Since(start).Seconds())
}

// Outcome is OK for a nil error, Error otherwise.
func Outcome(err error) string {
	if err != nil {
		return Error
	}
	return OK
}

func init() {
	// Series whose label values are a closed set start at zero, so that
	// rate() and absent-series alerts work from the first scrape.
	for _, k := range []string{"incremental", "full", "unchanged"} {
		OverlaySyncs.WithLabelValues(k)
	}
	for _, k := range []string{"full", "incremental"} {
		for _, o := range []string{OK, Error} {
			NFTSyncs.WithLabelValues(k, o)
		}
	}
	for _, r := range []string{"missing", "check_failed"} {
		NFTCanaryResyncs.WithLabelValues(r)
	}
	for _, r := range []string{"local", "forwarded", "nxdomain", "servfail", "invalid"} {
		DNSQueries.WithLabelValues(r)
	}
	for _, k := range []string{"full", "incremental"} {
		for _, o := range []string{OK, Error} {
			ProxySyncs.WithLabelValues(k, o)
		}
	}
	for _, o := range []string{OK, Error} {
		DNSForwards.WithLabelValues(o)
		DockerWatcherResyncs.WithLabelValues(o)
	}
	for _, p := range []string{"arp", "ndp"} {
		LBReplies.WithLabelValues(p)
	}
	for _, o := range []string{"answered", "declined", "ignored", "limited"} {
		OverlayNDP.WithLabelValues(o)
	}
	for _, r := range []string{"exhausted", "etcd", "unknown_pool", Other} {
		IPAMAllocationFailures.WithLabelValues(r)
	}
	for _, m := range []string{"l2", "bgp"} {
		LBUnannounced.WithLabelValues(m)
	}
	DockerReachable.Set(1)
}
