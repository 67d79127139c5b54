package metrics

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// Network policy series. Denied packets are counted by the kernel (a named
// counter per policy and direction in podnet's nftables table, which
// survives podnetd restarts); the collector reads them at scrape time, so
// a removed policy leaves no series behind. The policy label is bounded by
// the policies that exist (like the pool label of IPAM).
var (
	PolicySyncs = counterVec("policy_syncs_total",
		"Network policy programming passes of this host's policy agent, by outcome (ok, error).",
		"outcome")
	PolicySyncDuration = histogram("policy_sync_duration_seconds",
		"Time of one network policy programming pass: compiling the model and programming its difference.")
	PolicyEndpoints = gaugeVec("policy_endpoints",
		"Endpoints of this host that policies are enforced on, by state (isolated: some policy selects it; open: none does; pending: its labels are not known yet, so it is isolated both ways).",
		"state")
	PolicyLogged = counterVec("policy_logged_denials_total",
		"Denied packets written to podnetd's log with --policy-log (at most 10 a second per direction), by direction.",
		"direction")
	policyDenials = newDenialCollector()
)

func gaugeVec(name, help string, labels ...string) *prometheus.GaugeVec {
	return declare(prometheus.NewGaugeVec(prometheus.GaugeOpts(opts(name, help)), labels), "gauge", name, labels)
}

// PolicyDenial is one denied-packet count.
type PolicyDenial struct {
	// Policy is the policy; empty for endpoints still pending.
	Policy string
	// Direction is ingress or egress.
	Direction string
	Packets   uint64
}

// SetPolicyDenials sets where podnet_policy_denied_packets_total and
// podnet_policy_pending_denied_packets_total come from: fn is called at
// every scrape. nil removes the source.
func SetPolicyDenials(fn func() []PolicyDenial) { policyDenials.set(fn) }

type denialCollector struct {
	denied, pending *prometheus.Desc

	mu  sync.Mutex
	src func() []PolicyDenial
}

func newDenialCollector() *denialCollector {
	c := &denialCollector{
		denied: prometheus.NewDesc(Namespace+"_policy_denied_packets_total",
			"Packets this host dropped because the policies isolating an endpoint allowed none of them, by policy and direction (ingress, egress): a packet denied at an endpoint several policies isolate counts for each of them.",
			[]string{"policy", "direction"}, nil),
		pending: prometheus.NewDesc(Namespace+"_policy_pending_denied_packets_total",
			"Packets this host dropped for endpoints whose container labels were not known yet (isolated until they are), by direction.",
			[]string{"direction"}, nil),
	}
	all = append(all, series{name: "policy_denied_packets_total", kind: "counter", labels: []string{"policy", "direction"}, c: c},
		series{name: "policy_pending_denied_packets_total", kind: "counter", labels: []string{"direction"}})
	return c
}

func (c *denialCollector) set(fn func() []PolicyDenial) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.src = fn
}

func (c *denialCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.denied
	ch <- c.pending
}

func (c *denialCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	src := c.src
	c.mu.Unlock()
	if src == nil {
		return
	}
	for _, d := range src() {
		if d.Policy == "" {
			ch <- prometheus.MustNewConstMetric(c.pending, prometheus.CounterValue, float64(d.Packets), d.Direction)
		} else {
			ch <- prometheus.MustNewConstMetric(c.denied, prometheus.CounterValue, float64(d.Packets), d.Policy, d.Direction)
		}
	}
}

func init() {
	for _, o := range []string{OK, Error} {
		PolicySyncs.WithLabelValues(o)
	}
	for _, d := range []string{"ingress", "egress"} {
		PolicyLogged.WithLabelValues(d)
	}
}
