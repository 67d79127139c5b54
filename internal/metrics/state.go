package metrics

import (
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// HostCounts is podnet_hosts: the registered hosts of this host's view by
// whether they hold their liveness lease.
type HostCounts struct {
	Alive, Down int
}

// SetHosts sets where podnet_hosts comes from (catalog.Catalog.HostCounts):
// fn is called at every scrape, answers from memory, and reports ok false
// until its view has been read from etcd (no sample then: a count from an
// empty view would say every host is gone). nil removes the source.
func SetHosts(fn func() (HostCounts, bool)) {
	if fn == nil {
		hosts.fn.Store(nil)
		return
	}
	f := func() map[string]float64 {
		c, ok := fn()
		if !ok {
			return nil
		}
		return map[string]float64{"alive": float64(c.Alive), "down": float64(c.Down)}
	}
	hosts.fn.Store(&f)
}

// stateGauge is a gauge with one label whose values a function gives at
// scrape time, for counts the owning package keeps in memory anyway; no
// function, or none answering: no sample.
type stateGauge struct {
	desc *prometheus.Desc
	fn   atomic.Pointer[func() map[string]float64]
}

func newStateGauge(name, help, label string) *stateGauge {
	g := &stateGauge{desc: prometheus.NewDesc(Namespace+"_"+name, help, []string{label}, nil)}
	return declare(g, "gauge", name, []string{label})
}

func (g *stateGauge) Describe(ch chan<- *prometheus.Desc) { ch <- g.desc }

func (g *stateGauge) Collect(ch chan<- prometheus.Metric) {
	fn := g.fn.Load()
	if fn == nil {
		return
	}
	for v, n := range (*fn)() {
		ch <- prometheus.MustNewConstMetric(g.desc, prometheus.GaugeValue, n, v)
	}
}

// Names lists the full name of every series podnetd exports under the
// podnet namespace (histograms and counters by their declared name, not
// their _bucket, _count or _sum samples): what a rule may refer to.
func Names() []string {
	out := []string{Namespace + "_build_info"}
	for _, s := range all {
		out = append(out, Namespace+"_"+s.name)
	}
	return out
}
