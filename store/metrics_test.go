package store_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/podnet/podnet/internal/metrics"
	"github.com/podnet/podnet/internal/metrics/metricstest"
	"github.com/podnet/podnet/store"
	"github.com/podnet/podnet/store/storetest"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// TestEtcdRequestMetrics: requests are timed by method and failures counted
// by method and gRPC code.
func TestEtcdRequestMetrics(t *testing.T) {
	s := storetest.New(t)
	ranges0 := metricstest.SampleCount(metrics.EtcdRequestDuration.WithLabelValues("Range"))
	txns0 := metricstest.SampleCount(metrics.EtcdRequestDuration.WithLabelValues("Txn"))
	canceled0 := metricstest.Value(metrics.EtcdRequestErrors.WithLabelValues("Range", "Canceled"))

	ctx := context.Background()
	if err := s.Put(ctx, "m/a", rec{1}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, "m/a", nil); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.List(ctx, "m/"); err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := s.Get(cctx, "m/a", nil); err == nil {
		t.Fatal("a cancelled Get succeeded")
	}

	if d := metricstest.SampleCount(metrics.EtcdRequestDuration.WithLabelValues("Range")) - ranges0; d < 2 {
		t.Errorf("Range requests timed +%d, want at least +2 (Get, List)", d)
	}
	if d := metricstest.SampleCount(metrics.EtcdRequestDuration.WithLabelValues("Txn")) - txns0; d != 1 {
		t.Errorf("Txn requests timed +%d, want +1 (Put)", d)
	}
	if d := metricstest.Value(metrics.EtcdRequestErrors.WithLabelValues("Range", "Canceled")) - canceled0; d != 1 {
		t.Errorf("cancelled Range errors +%v, want +1", d)
	}
}

// compactingFollower compacts etcd past the listing's revision during its
// first snapshot, so that the watch Follow starts next is refused
// (ErrCompacted) and Follow has to restart it.
type compactingFollower struct {
	t   *testing.T
	raw *clientv3.Client
	mu  sync.Mutex
	n   int
}

func (f *compactingFollower) Snapshot([]store.KV) {
	f.mu.Lock()
	f.n++
	first := f.n == 1
	f.mu.Unlock()
	if !first {
		return
	}
	ctx := context.Background()
	var rev int64
	for range 3 {
		r, err := f.raw.Put(ctx, "/podnet/v1/w/k", "x")
		if err != nil {
			f.t.Error(err)
			return
		}
		rev = r.Header.Revision
	}
	if _, err := f.raw.Compact(ctx, rev); err != nil {
		f.t.Error(err)
	}
}

func (f *compactingFollower) Changes([]store.Event) {}

func (f *compactingFollower) snapshots() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.n
}

// TestWatchRestartMetric: a watch that etcd refuses is counted under the
// prefix's top-level name.
func TestWatchRestartMetric(t *testing.T) {
	e := storetest.Start(t)
	s := e.Client(t, "")
	raw, err := clientv3.New(clientv3.Config{Endpoints: e.Endpoints, DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	if _, err := raw.Put(context.Background(), "/podnet/v1/w/k", "0"); err != nil {
		t.Fatal(err)
	}
	restarts0 := metricstest.Value(metrics.EtcdWatchRestarts.WithLabelValues("w"))
	f := &compactingFollower{t: t, raw: raw}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); s.Follow(ctx, "w/", f) }()
	defer func() { cancel(); <-done }()
	deadline := time.Now().Add(10 * time.Second)
	for f.snapshots() < 2 {
		if time.Now().After(deadline) {
			t.Fatal("Follow never re-listed after its watch was compacted away")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if d := metricstest.Value(metrics.EtcdWatchRestarts.WithLabelValues("w")) - restarts0; d != 1 {
		t.Errorf("watch restarts +%v, want +1", d)
	}
}
