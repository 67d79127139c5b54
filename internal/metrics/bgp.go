package metrics

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// BGPSession is one BGP session of this host, as the metrics show it.
type BGPSession struct {
	// Peer is the BGPPeer's name (operators name few, long-lived peers).
	Peer string
	Up   bool
	// Routes counts the routes sent to the peer.
	Routes int
}

// SetBGPSessions sets where podnet_bgp_session_up and
// podnet_bgp_routes_advertised come from: fn is called at every scrape
// and must answer from memory. nil removes the source.
func SetBGPSessions(fn func() []BGPSession) { bgpSessions.set(fn) }

// bgpCollector turns the sessions into per-peer gauges at scrape time, so
// a peer that is gone leaves no series behind.
type bgpCollector struct {
	up, routes *prometheus.Desc

	mu  sync.Mutex
	src func() []BGPSession
}

func newBGPCollector() *bgpCollector {
	c := &bgpCollector{
		up: prometheus.NewDesc(Namespace+"_bgp_session_up",
			"1 while this host's BGP session with the peer is Established, else 0.", []string{"peer"}, nil),
		routes: prometheus.NewDesc(Namespace+"_bgp_routes_advertised",
			"Routes this host advertises to the peer.", []string{"peer"}, nil),
	}
	all = append(all, series{name: "bgp_session_up", kind: "gauge", labels: []string{"peer"}, c: c},
		series{name: "bgp_routes_advertised", kind: "gauge", labels: []string{"peer"}})
	return c
}

func (c *bgpCollector) set(fn func() []BGPSession) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.src = fn
}

func (c *bgpCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.up
	ch <- c.routes
}

func (c *bgpCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	fn := c.src
	c.mu.Unlock()
	if fn == nil {
		return
	}
	for _, s := range fn() {
		up := 0.0
		if s.Up {
			up = 1
		}
		ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, up, s.Peer)
		ch <- prometheus.MustNewConstMetric(c.routes, prometheus.GaugeValue, float64(s.Routes), s.Peer)
	}
}
