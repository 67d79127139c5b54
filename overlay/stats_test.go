package overlay

import (
	"net/netip"
	"testing"

	"github.com/podnet/podnet/store"
	"github.com/podnet/podnet/store/storetest"
)

// TestWatchCounters checks what Stats reports of the watches: listings
// (even empty ones) and changes, keys and bytes, by kind, and the legacy
// mode an old podnetd's liveness record turns on.
func TestWatchCounters(t *testing.T) {
	o := &Overlay{host: "a", log: storetest.Logger(t), view: newView(), wake: make(chan struct{}, 1)}
	pool := netip.MustParsePrefix("10.9.0.0/16")
	o.mu.Lock()
	pv := o.poolView(pool)
	o.mu.Unlock()
	blocks := &poolFollower{o: o, pool: pool, pv: pv, kind: kindBlocks}
	b1 := store.KV{Key: store.BlockKey(pool, netip.MustParsePrefix("10.9.0.0/26")), Value: []byte(`{"host":"b"}`)}
	b2 := store.KV{Key: store.BlockKey(pool, netip.MustParsePrefix("10.9.0.64/26")), Value: []byte(`{"host":"c"}`)}
	blocks.Snapshot([]store.KV{b1, b2})
	blocks.Changes([]store.Event{{Type: store.EventDelete, Key: b2.Key}})
	(&poolFollower{o: o, pool: pool, pv: pv, kind: kindExc}).Snapshot(nil)
	aliveFollower{o}.Snapshot([]store.KV{{Key: store.AliveKey("old"), Value: []byte(`{"name":"old"}`)}})

	s := o.Stats()
	want := WatchStats{Snapshots: 1, SnapshotKeys: 2, SnapshotBytes: int64(len(b1.Key) + len(b1.Value) + len(b2.Key) + len(b2.Value)),
		Events: 1, EventBytes: int64(len(b2.Key))}
	if got := s.Watch[kindBlocks]; got != want {
		t.Errorf("blocks: %+v, want %+v", got, want)
	}
	if got := s.Watch[kindExc]; got.Snapshots != 1 || got.SnapshotKeys != 0 {
		t.Errorf("an empty listing is a listing: exc %+v", got)
	}
	if !s.Legacy {
		t.Error("a liveness record without a layout did not turn legacy mode on")
	}
	aliveFollower{o}.Changes([]store.Event{{Type: store.EventPut, Key: store.AliveKey("old"),
		Value: []byte(`{"name":"old","ipamLayout":2}`)}})
	if o.Stats().Legacy {
		t.Error("the host announced layout 2 and legacy mode stayed on")
	}
}
