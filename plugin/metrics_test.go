package plugin

import (
	"errors"
	"testing"

	"github.com/podnet/podnet/internal/metrics"
	"github.com/podnet/podnet/internal/metrics/metricstest"
)

// TestRequestMetrics: every answered request counts once under its method
// and outcome, and its latency is observed.
func TestRequestMetrics(t *testing.T) {
	const join = "NetworkDriver.Join"
	count := func(outcome string) float64 {
		return metricstest.Value(metrics.PluginRequests.WithLabelValues(join, outcome))
	}
	ok0, err0, bad0 := count(metrics.OK), count(metrics.Error), count(metrics.BadRequest)
	hist0 := metricstest.SampleCount(metrics.PluginRequestDuration.WithLabelValues(join))

	fn := &fakeNet{}
	srv := newTest(fn, &fakeIPAM{})
	defer srv.Close()
	body := `{"NetworkID":"n1","EndpointID":"e1","SandboxKey":"/var/run/docker/netns/x"}`
	post(t, srv, "/NetworkDriver.Join", body)
	post(t, srv, "/NetworkDriver.Join", body)
	fn.err = errors.New("no such endpoint")
	post(t, srv, "/NetworkDriver.Join", body)
	post(t, srv, "/NetworkDriver.Join", "{not json")

	if d := count(metrics.OK) - ok0; d != 2 {
		t.Errorf("ok requests +%v, want +2", d)
	}
	if d := count(metrics.Error) - err0; d != 1 {
		t.Errorf("failed requests +%v, want +1", d)
	}
	if d := count(metrics.BadRequest) - bad0; d != 1 {
		t.Errorf("bad requests +%v, want +1", d)
	}
	if d := metricstest.SampleCount(metrics.PluginRequestDuration.WithLabelValues(join)) - hist0; d != 4 {
		t.Errorf("latency observations +%d, want +4", d)
	}
}
