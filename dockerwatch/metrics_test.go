package dockerwatch

import (
	"testing"
	"time"

	"github.com/docker/docker/api/types/events"
	"github.com/podnet/podnet/internal/metrics"
	"github.com/podnet/podnet/internal/metrics/metricstest"
	"github.com/podnet/podnet/internal/testutil"
	"github.com/podnet/podnet/store"
)

// TestWatcherMetrics: resyncs count by outcome, and an event's lag (from
// Docker's timestamp to its metadata written) is observed.
func TestWatcherMetrics(t *testing.T) {
	ok0 := metricstest.Value(metrics.DockerWatcherResyncs.WithLabelValues(metrics.OK))
	lag0 := metricstest.SampleCount(metrics.DockerWatcherLag)
	sum0 := metricstest.SampleSum(metrics.DockerWatcherLag)
	f := newFakeDocker()
	app := ctr{id: containerID("lag"), name: "lag", state: "running", nets: []netEP{{net: netPod, ep: "ep-lag", ip: "10.1.0.9"}}}
	f.set(app)
	x := startWatcher(t, f, func(st *store.Store) { putEndpoint(t, st, "h1", "ep-lag", netPod) })
	x.waitMeta(t, "metadata after the first resync", "ep-lag", func(store.EndpointMeta) bool { return true })
	if d := metricstest.Value(metrics.DockerWatcherResyncs.WithLabelValues(metrics.OK)) - ok0; d < 1 {
		t.Errorf("successful resyncs +%v, want at least +1", d)
	}

	app.name = "lag-renamed"
	f.set(app)
	ev := containerEvent(app.id, events.ActionRename)
	ev.TimeNano = time.Now().Add(-2 * time.Second).UnixNano()
	x.f.latest(t).send(t, ev)
	x.waitMeta(t, "rename", "ep-lag", func(m store.EndpointMeta) bool { return m.Name == "lag-renamed" })
	testutil.Until(t, 10*time.Second, "the lag observation", func() bool { return metricstest.SampleCount(metrics.DockerWatcherLag) == lag0+1 })
	if d := metricstest.SampleSum(metrics.DockerWatcherLag) - sum0; d < 2 || d > 60 {
		t.Errorf("observed lag %.3fs, want about 2s (the event was 2s old)", d)
	}
}
