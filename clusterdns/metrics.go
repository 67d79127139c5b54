package clusterdns

import (
	"net"
	"time"

	"github.com/miekg/dns"
	"github.com/podnet/podnet/internal/metrics"
)

// queryResult labels an answered query for podnet_dns_queries_total from
// the source Server.answer reported: "podnet", an upstream's host:port, or
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
