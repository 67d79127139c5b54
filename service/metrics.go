package service

import (
	"net"
	"time"

	"github.com/docker/docker/api/types/events"
	"github.com/miekg/dns"
	"github.com/podnet/podnet/internal/metrics"
)

// queryResult labels an answered query for podnet_dns_queries_total from
// the source DNS.answer reported: "podnet", an upstream's host:port, or
// why neither could answer.
func queryResult(source string, rcode int) string {
	switch source {
	case "podnet":
		if rcode == dns.RcodeFormatError || rcode == dns.RcodeNotImplemented {
			return "invalid"
		}
		return "local"
	case "no upstream":
		return "nxdomain"
	case "upstreams failed":
		return "servfail"
	}
	if _, _, err := net.SplitHostPort(source); err == nil {
		return "forwarded"
	}
	return metrics.Other
}

// observeForward records one forwarded query: whether an upstream
// answered, and how long it took.
func observeForward(start time.Time, err error) {
	metrics.DNSForwards.WithLabelValues(metrics.Outcome(err)).Inc()
	metrics.Since(metrics.DNSForwardDuration, start)
}

// observeLag records how long after Docker emitted m (the oldest event of
// a batch) the metadata it changed was written; a batch that failed is
// not up to date, so nothing is observed (its resync will be counted).
func observeLag(m events.Message, err error) {
	if err != nil || m.TimeNano == 0 {
		return
	}
	metrics.DockerWatcherLag.Observe(max(time.Since(time.Unix(0, m.TimeNano)), 0).Seconds())
}
