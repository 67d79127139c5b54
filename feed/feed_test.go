package feed

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/podnet/podnet/internal/testutil"
	"github.com/podnet/podnet/store"
	"github.com/podnet/podnet/store/storetest"
)

// recorder is a reader that keeps the keys it was told about.
type recorder struct {
	mu        sync.Mutex
	keys      map[string]string
	snapshots int
}

func newRecorder() *recorder { return &recorder{keys: map[string]string{}} }

func (r *recorder) Snapshot(kvs []store.KV) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.snapshots++
	r.keys = map[string]string{}
	for _, kv := range kvs {
		r.keys[kv.Key] = string(kv.Value)
	}
}

func (r *recorder) Changes(evs []store.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, ev := range evs {
		if ev.Type == store.EventDelete {
			delete(r.keys, ev.Key)
		} else {
			r.keys[ev.Key] = string(ev.Value)
		}
	}
}

func (r *recorder) has(key, value string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	v, ok := r.keys[key]
	return ok == (value != "") && v == value
}

func (r *recorder) view() map[string]string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string]string{}
	for k, v := range r.keys {
		out[k] = v
	}
	return out
}

// TestReadersShareOneFollow: readers of one prefix get the same listing
// and changes from one Follow (one listing, one watch), a late reader
// gets the feed's keys without a new listing, and the prefix is no
// longer followed once its last reader leaves.
func TestReadersShareOneFollow(t *testing.T) {
	st := storetest.New(t)
	storetest.Put(t, st, "alive/h1", map[string]string{"name": "h1"})
	h := New(st, storetest.Logger(t))
	a, b := newRecorder(), newRecorder()
	cancelA := h.Subscribe(store.AlivePrefix, a)
	cancelB := h.Subscribe(store.AlivePrefix, b)
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); h.Run(ctx) }()
	t.Cleanup(func() { stop(); <-done })
	testutil.Until(t, 10*time.Second, "both readers listed h1", func() bool {
		return a.has("alive/h1", `{"name":"h1"}`) && b.has("alive/h1", `{"name":"h1"}`)
	})
	storetest.Put(t, st, "alive/h2", map[string]string{"name": "h2"})
	storetest.Delete(t, st, "alive/h1")
	testutil.Until(t, 10*time.Second, "both readers saw the changes", func() bool {
		return a.has("alive/h2", `{"name":"h2"}`) && !a.has("alive/h1", `{"name":"h1"}`) &&
			b.has("alive/h2", `{"name":"h2"}`) && !b.has("alive/h1", `{"name":"h1"}`)
	})
	if ws := st.WatchStats(); ws.Lists != 1 {
		t.Fatalf("%d listings for two readers of one prefix, want 1", ws.Lists)
	}
	late := newRecorder()
	cancelLate := h.Subscribe(store.AlivePrefix, late)
	testutil.Until(t, 10*time.Second, "the late reader's snapshot", func() bool {
		late.mu.Lock()
		defer late.mu.Unlock()
		return late.snapshots == 1
	})
	if got, want := late.view(), a.view(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("late reader got %v, want %v", got, want)
	}
	if ws := st.WatchStats(); ws.Lists != 1 {
		t.Fatalf("a late reader caused a listing (%d)", ws.Lists)
	}
	cancelA()
	cancelB()
	if p := h.Prefixes(); !slices.Equal(p, []string{store.AlivePrefix}) {
		t.Fatalf("followed %v with one reader left", p)
	}
	cancelLate()
	if p := h.Prefixes(); len(p) != 0 {
		t.Fatalf("still followed without readers: %v", p)
	}
}

// TestStale: a feed whose watch stops hearing from etcd (etcd down) is
// reported stale after the bound, and fresh again once etcd is back.
func TestStale(t *testing.T) {
	e := storetest.Start(t)
	st, err := store.Open(store.Config{Endpoints: e.Endpoints, Logger: storetest.Logger(t), ProgressInterval: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	h := New(st, storetest.Logger(t))
	h.Subscribe(store.HostsPrefix, newRecorder())
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); h.Run(ctx) }()
	t.Cleanup(func() { stop(); <-done })
	const bound = time.Second
	testutil.Until(t, 10*time.Second, "hosts/ listed", func() bool { return h.Loaded(store.HostsPrefix) })
	// Quiet but connected: progress notifications keep it fresh.
	time.Sleep(2 * bound)
	if s := h.Stale(bound); len(s) != 0 {
		t.Fatalf("a quiet, connected prefix reported stale: %v", s)
	}
	if age := time.Since(h.LastHeard()); age > bound {
		t.Fatalf("LastHeard %v ago on a connected prefix", age)
	}
	e.Stop()
	testutil.Until(t, 15*time.Second, "hosts/ stale with etcd down", func() bool {
		return slices.Equal(h.Stale(bound), []string{store.HostsPrefix})
	})
	// LastHeard stops moving with etcd down, and so tells the outage too.
	down := h.LastHeard()
	if age := time.Since(down); age <= bound {
		t.Fatalf("LastHeard %v ago while hosts/ is stale", age)
	}
	e.Restart(t)
	testutil.Until(t, 30*time.Second, "hosts/ fresh with etcd back", func() bool { return len(h.Stale(bound)) == 0 })
	if back := h.LastHeard(); !back.After(down) || time.Since(back) > bound {
		t.Fatalf("LastHeard %v with etcd back (was %v)", back, down)
	}
}

// TestLastHeardBeforeFollowing: with nothing followed, LastHeard is the
// hub's start, so a podnetd that never reached etcd ages too.
func TestLastHeardBeforeFollowing(t *testing.T) {
	before := time.Now()
	h := New(storetest.New(t), storetest.Logger(t))
	if lh := h.LastHeard(); lh.Before(before) || lh.After(time.Now()) {
		t.Fatalf("LastHeard %v, want the hub's creation (after %v)", lh, before)
	}
}
