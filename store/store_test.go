package store_test

import (
	"context"
	"errors"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/podnet/podnet/internal/testutil"
	"github.com/podnet/podnet/store"
	"github.com/podnet/podnet/store/storetest"
)

type rec struct {
	N int `json:"n"`
}

func TestCreateGetUpdateDelete(t *testing.T) {
	s := storetest.New(t)
	ctx := context.Background()
	if _, err := s.Create(ctx, "a/b", rec{1}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Create(ctx, "a/b", rec{2}); !errors.Is(err, store.ErrExists) {
		t.Fatalf("second create: got %v, want ErrExists", err)
	}
	var r rec
	rev, err := s.Get(ctx, "a/b", &r)
	if err != nil || r.N != 1 {
		t.Fatalf("get: %v %+v", err, r)
	}
	if err := s.Update(ctx, "a/b", rev, rec{3}); err != nil {
		t.Fatal(err)
	}
	if err := s.Update(ctx, "a/b", rev, rec{4}); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("stale update: got %v, want ErrConflict", err)
	}
	if err := s.Delete(ctx, "a/b"); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, "a/b"); err != nil {
		t.Fatalf("delete of absent key must succeed: %v", err)
	}
	if _, err := s.Get(ctx, "a/b", &r); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("get after delete: %v", err)
	}
}

func TestCreateIsExclusiveUnderContention(t *testing.T) {
	e := storetest.Start(t)
	ctx := context.Background()
	var wins int
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		s := e.Client(t, "")
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := s.Create(ctx, "contended", rec{i}); err == nil {
				mu.Lock()
				wins++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if wins != 1 {
		t.Fatalf("%d creates succeeded, want exactly 1", wins)
	}
}

func TestPrefixesAreIsolated(t *testing.T) {
	e := storetest.Start(t)
	a, b := e.Client(t, "/x/"), e.Client(t, "/y/")
	ctx := context.Background()
	if _, err := a.Create(ctx, "k", rec{1}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Create(ctx, "k", rec{2}); err != nil {
		t.Fatalf("same relative key under another prefix: %v", err)
	}
	kvs, _, err := a.List(ctx, "")
	if err != nil || len(kvs) != 1 || kvs[0].Key != "k" {
		t.Fatalf("list: %v %+v", err, kvs)
	}
}

func TestListRangeFollowsAddressOrder(t *testing.T) {
	s := storetest.New(t)
	ctx := context.Background()
	pool := netip.MustParsePrefix("10.1.0.0/16")
	for _, ip := range []string{"10.1.0.2", "10.1.0.63", "10.1.0.64", "10.1.1.5"} {
		a := netip.MustParseAddr(ip)
		if _, err := s.Create(ctx, store.AddrKey(pool, a), store.Address{IP: a}); err != nil {
			t.Fatal(err)
		}
	}
	from := store.AddrKey(pool, netip.MustParseAddr("10.1.0.0"))
	to := store.AddrKey(pool, netip.MustParseAddr("10.1.0.64"))
	kvs, err := s.ListRange(ctx, from, to)
	if err != nil {
		t.Fatal(err)
	}
	if len(kvs) != 2 {
		t.Fatalf("block 10.1.0.0/26 holds %d keys, want 2: %+v", len(kvs), kvs)
	}
}

func TestUnreachableEtcdFailsFast(t *testing.T) {
	port := testutil.FreePort(t)
	// The default request timeout (5 s): an unreachable etcd must be
	// noticed, not waited out.
	s, err := store.Open(store.Config{Endpoints: []string{"http://127.0.0.1:" + itoa(port)}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	start := time.Now()
	_, err = s.Create(context.Background(), "k", rec{1})
	if !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("got %v, want ErrUnavailable", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("unreachable etcd took %v to fail", d)
	}
}

type follower struct {
	mu    sync.Mutex
	keys  map[string]bool
	snaps int
}

func (f *follower) Snapshot(kvs []store.KV) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.snaps++
	f.keys = map[string]bool{}
	for _, kv := range kvs {
		f.keys[kv.Key] = true
	}
}

func (f *follower) Changes(evs []store.Event) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, e := range evs {
		f.keys[e.Key] = e.Type == store.EventPut
		if e.Type == store.EventDelete {
			delete(f.keys, e.Key)
		}
	}
}

func (f *follower) has(k string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.keys[k]
}

func TestFollowSeesSnapshotThenChanges(t *testing.T) {
	s := storetest.New(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := s.Put(ctx, "w/before", rec{1}); err != nil {
		t.Fatal(err)
	}
	f := &follower{}
	go s.Follow(ctx, "w/", f)
	testutil.Until(t, 10*time.Second, "w/before in the snapshot", func() bool { return f.has("w/before") })
	if err := s.Put(ctx, "w/after", rec{2}); err != nil {
		t.Fatal(err)
	}
	testutil.Until(t, 10*time.Second, "w/after from the watch", func() bool { return f.has("w/after") })
	if err := s.Delete(ctx, "w/before"); err != nil {
		t.Fatal(err)
	}
	testutil.Until(t, 10*time.Second, "w/before deleted by the watch", func() bool { return !f.has("w/before") })
}

func itoa(i int) string {
	return netip.AddrPortFrom(netip.IPv4Unspecified(), uint16(i)).String()[len("0.0.0.0:"):]
}

func TestRangeUnchangedSince(t *testing.T) {
	s := storetest.New(t)
	ctx := context.Background()
	pool := netip.MustParsePrefix("10.1.0.0/16")
	key := func(ip string) string { return store.AddrKey(pool, netip.MustParseAddr(ip)) }
	from, to := key("10.1.0.0"), key("10.1.0.64")
	guard := func(rev int64) bool {
		ok, _, err := s.Txn(ctx, []store.Cmp{store.RangeUnchangedSince(from, to, rev)}, []store.Op{store.Put("probe", rec{1})})
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	if !guard(0) {
		t.Fatal("empty range must satisfy RangeUnchangedSince(…, 0)")
	}
	// A key outside the range does not matter.
	if _, err := s.Create(ctx, key("10.1.0.64"), rec{1}); err != nil {
		t.Fatal(err)
	}
	if !guard(0) {
		t.Fatal("a key just past the range must not count")
	}
	rev, err := s.Create(ctx, key("10.1.0.5"), rec{1})
	if err != nil {
		t.Fatal(err)
	}
	if guard(0) {
		t.Fatal("non-empty range must fail RangeUnchangedSince(…, 0)")
	}
	if !guard(rev) {
		t.Fatal("range unchanged since its last write must hold")
	}
	if err := s.Put(ctx, key("10.1.0.5"), rec{2}); err != nil {
		t.Fatal(err)
	}
	if guard(rev) {
		t.Fatal("a modified key must fail the guard")
	}
}
