package clusterdns

import (
	"fmt"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/podnet/podnet/internal/metrics"
	"github.com/podnet/podnet/internal/metrics/metricstest"
	"github.com/podnet/podnet/internal/testutil"
	"github.com/podnet/podnet/store/storetest"
)

func dnsResults() map[string]float64 {
	out := map[string]float64{}
	for _, r := range []string{"local", "forwarded", "nxdomain", "servfail", "invalid"} {
		out[r] = metricstest.Value(metrics.DNSQueries.WithLabelValues(r))
	}
	return out
}

// TestDNSMetrics: each query counts once under its result; forwards count
// by outcome and are timed.
func TestDNSMetrics(t *testing.T) {
	st := storetest.New(t)
	twoHosts(t, st)
	_, srv := startDNS(t, st, []string{fakeUpstream(t)})
	waitAnswer(t, srv, "web.", dns.TypeA, dns.RcodeSuccess, "10.0.0.1", "10.0.1.2")
	dead := fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t))
	_, deadSrv := startDNS(t, st, []string{dead})
	_, noneSrv := startDNS(t, st, []string{})

	before := dnsResults()
	fwdOK0 := metricstest.Value(metrics.DNSForwards.WithLabelValues(metrics.OK))
	fwdErr0 := metricstest.Value(metrics.DNSForwards.WithLabelValues(metrics.Error))
	lat0 := metricstest.SampleCount(metrics.DNSForwardDuration)

	query(t, srv, "udp", "web.", dns.TypeA, false)
	query(t, srv, "tcp", "example.com.", dns.TypeA, false)
	query(t, deadSrv, "udp", "example.com.", dns.TypeA, false)
	query(t, noneSrv, "udp", "nowhere.example.", dns.TypeA, false)
	notify := new(dns.Msg)
	notify.SetNotify("web.")
	if r, _, err := (&dns.Client{Timeout: 5 * time.Second}).Exchange(notify, srv); err != nil || r.Rcode != dns.RcodeNotImplemented {
		t.Fatalf("NOTIFY: %v %v, want NOTIMP", r, err)
	}

	after := dnsResults()
	for r, want := range map[string]float64{"local": 1, "forwarded": 1, "servfail": 1, "nxdomain": 1, "invalid": 1} {
		if d := after[r] - before[r]; d != want {
			t.Errorf("podnet_dns_queries_total{result=%q} +%v, want +%v", r, d, want)
		}
	}
	if d := metricstest.Value(metrics.DNSForwards.WithLabelValues(metrics.OK)) - fwdOK0; d != 1 {
		t.Errorf("answered forwards +%v, want +1", d)
	}
	if d := metricstest.Value(metrics.DNSForwards.WithLabelValues(metrics.Error)) - fwdErr0; d != 1 {
		t.Errorf("failed forwards +%v, want +1", d)
	}
	if d := metricstest.SampleCount(metrics.DNSForwardDuration) - lat0; d != 2 {
		t.Errorf("forward latency observations +%d, want +2", d)
	}
}

func TestQueryResultOfUnknownSource(t *testing.T) {
	if got := queryResult("something new", dns.RcodeRefused); got != metrics.Other {
		t.Errorf("queryResult(unknown source) = %q, want %q", got, metrics.Other)
	}
}
