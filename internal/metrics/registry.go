package metrics

import (
	"runtime"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// NewRegistry returns a fresh registry holding every podnet series, the Go
// runtime and process collectors, and podnet_build_info{version,
// go_version} for the given podnet version. It panics if a series is
// declared twice (a programming error the registration test catches).
func NewRegistry(version string) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	for _, s := range all {
		if s.c != nil {
			reg.MustRegister(s.c)
		}
	}
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace:   Namespace,
			Name:        "build_info",
			Help:        "Always 1; its labels say which podnet version and Go version this podnetd was built from.",
			ConstLabels: prometheus.Labels{"version": version, "go_version": runtime.Version()},
		}, func() float64 { return 1 }),
	)
	return reg
}

// PoolUsage is this host's share of one IPAM pool.
type PoolUsage struct {
	// Pool is the pool's subnet (its PoolID).
	Pool string
	// Blocks is how many of the pool's blocks this host has claimed.
	Blocks int
	// Addresses is how many container addresses this host holds in the
	// pool (in its own blocks or borrowed from others').
	Addresses int
	// Usable is how many addresses the pool's dynamic range holds (its
	// ip-range, or the whole subnet) less the network and broadcast
	// addresses: what every host's containers, the gateway and the
	// tunnel addresses share. A float: an IPv6 pool holds 2^64 and more.
	Usable float64
}

// SetIPAMUsage sets where podnet_ipam_blocks_owned and
// podnet_ipam_addresses_in_use come from: fn is called at every scrape and
// must answer from memory, quickly. nil removes the source.
func SetIPAMUsage(fn func() []PoolUsage) { ipamUsage.set(fn) }

// usageCollector turns PoolUsage into per-pool gauges at scrape time, so a
// pool that is gone leaves no series behind.
type usageCollector struct {
	blocks, addrs, usable *prometheus.Desc

	mu  sync.Mutex
	src func() []PoolUsage
}

func newUsageCollector() *usageCollector {
	c := &usageCollector{
		blocks: prometheus.NewDesc(Namespace+"_ipam_blocks_owned",
			"Address blocks of the pool this host has claimed.", []string{"pool"}, nil),
		addrs: prometheus.NewDesc(Namespace+"_ipam_addresses_in_use",
			"Addresses this host holds in the pool for containers and --aux-address (gateways excluded).", []string{"pool"}, nil),
		usable: prometheus.NewDesc(Namespace+"_ipam_pool_usable_addresses",
			"Addresses of the pool's dynamic range (its ip-range, or the whole subnet) less the network and broadcast addresses, shared by every host: sum(podnet_ipam_addresses_in_use) by pool over it says how full the pool is.", []string{"pool"}, nil),
	}
	// One collector, three series: the other entries only name them.
	all = append(all, series{name: "ipam_blocks_owned", kind: "gauge", labels: []string{"pool"}, c: c},
		series{name: "ipam_addresses_in_use", kind: "gauge", labels: []string{"pool"}},
		series{name: "ipam_pool_usable_addresses", kind: "gauge", labels: []string{"pool"}})
	return c
}

func (c *usageCollector) set(fn func() []PoolUsage) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.src = fn
}

func (c *usageCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.blocks
	ch <- c.addrs
	ch <- c.usable
}

func (c *usageCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	src := c.src
	c.mu.Unlock()
	if src == nil {
		return
	}
	for _, u := range src() {
		ch <- prometheus.MustNewConstMetric(c.blocks, prometheus.GaugeValue, float64(u.Blocks), u.Pool)
		ch <- prometheus.MustNewConstMetric(c.addrs, prometheus.GaugeValue, float64(u.Addresses), u.Pool)
		ch <- prometheus.MustNewConstMetric(c.usable, prometheus.GaugeValue, u.Usable, u.Pool)
	}
}
