package dataplane

import (
	"testing"

	"github.com/podnet/podnet/internal/metrics"
	"github.com/podnet/podnet/internal/metrics/metricstest"
)

// TestNFTMetrics: full and incremental table changes are counted and
// timed by kind and outcome, the map-element gauge follows publishes, and
// a canary that finds the table gone counts a resync.
func TestNFTMetrics(t *testing.T) {
	e := newFakeEngine(t)
	syncs := func(kind, outcome string) float64 {
		return metricstest.Value(metrics.NFTSyncs.WithLabelValues(kind, outcome))
	}
	full0, inc0, incErr0 := syncs(syncFull, metrics.OK), syncs(syncIncremental, metrics.OK), syncs(syncIncremental, metrics.Error)
	lat0 := metricstest.SampleCount(metrics.NFTSyncDuration.WithLabelValues(syncIncremental))
	missing0 := metricstest.Value(metrics.NFTCanaryResyncs.WithLabelValues("missing"))
	elements := func() float64 { return metricstest.Value(metrics.NFTMapElements) }

	if err := e.AddNetwork(ctx, testNetwork("net1", "pn-n1", "10.1.0.0/24")); err != nil {
		t.Fatal(err)
	}
	if got := syncs(syncFull, metrics.OK); got != full0+1 {
		t.Errorf("full syncs = %v, want %v", got, full0+1)
	}
	if elements() != 0 {
		t.Errorf("map elements %v with nothing published", elements())
	}
	mustPublish(t, e, ep1, c1IP4, noAddr, tcp(8000, 0, 80), tcp(8001, 0, 81))
	if got := syncs(syncIncremental, metrics.OK); got != inc0+1 {
		t.Errorf("incremental syncs = %v, want %v", got, inc0+1)
	}
	if d := metricstest.SampleCount(metrics.NFTSyncDuration.WithLabelValues(syncIncremental)) - lat0; d != 1 {
		t.Errorf("incremental latency observations +%d, want +1", d)
	}
	if elements() != 2 {
		t.Errorf("map elements %v after publishing 2 ports, want 2", elements())
	}

	// The kernel refuses the incremental update: counted as an error, and
	// the full rebuild that heals it as a full sync.
	e.nft.failUpdate = true
	mustPublish(t, e, ep2, c2IP4, noAddr, tcp(9000, 0, 90))
	e.nft.failUpdate = false
	if got := syncs(syncIncremental, metrics.Error); got != incErr0+1 {
		t.Errorf("failed incremental syncs = %v, want %v", got, incErr0+1)
	}
	if got := syncs(syncFull, metrics.OK); got != full0+2 {
		t.Errorf("full syncs = %v, want %v (the rebuild)", got, full0+2)
	}
	if elements() != 3 {
		t.Errorf("map elements %v after the rebuild, want 3", elements())
	}
	if err := e.Unpublish(ctx, ep1); err != nil {
		t.Fatal(err)
	}
	if elements() != 1 {
		t.Errorf("map elements %v after unpublishing 2, want 1", elements())
	}

	// Someone flushes the ruleset: the canary resyncs and counts it.
	if err := e.nft.deleteTable(DefaultTable); err != nil {
		t.Fatal(err)
	}
	e.resyncIfDamaged(ctx)
	if got := metricstest.Value(metrics.NFTCanaryResyncs.WithLabelValues("missing")); got != missing0+1 {
		t.Errorf("canary resyncs = %v, want %v", got, missing0+1)
	}
	if elements() != 1 {
		t.Errorf("map elements %v after the canary's resync, want 1", elements())
	}
}
