package store_test

import (
	"context"
	"encoding/hex"
	"net/netip"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/podnet/podnet/store"
	"github.com/podnet/podnet/store/storetest"
)

var excPool = netip.MustParsePrefix("10.60.0.0/16")

func TestNeedsException(t *testing.T) {
	for _, c := range []struct {
		kind, owner, claimant string
		want                  bool
	}{
		{store.AddrContainer, "a", "a", false}, // in its owner's block
		{store.AddrContainer, "a", "b", true},  // in another host's block
		{store.AddrContainer, "a", "", true},   // in an unclaimed block
		{"", "a", "b", true},                   // records written before kinds existed
		{store.AddrAux, "a", "b", false},       // IPAM never writes this kind for aux addresses
		{store.AddrGateway, "", "b", false},    // every host's gateway
		{store.AddrContainer, "", "b", false},  // no owner: nobody to route to
	} {
		if got := store.NeedsException(c.kind, c.owner, c.claimant); got != c.want {
			t.Errorf("NeedsException(%q, %q, %q) = %v, want %v", c.kind, c.owner, c.claimant, got, c.want)
		}
	}
}

// TestMigrateExceptions writes a pool as podnetds before layout 2 left it
// (addresses without exception records, stale records of released
// addresses), migrates it, checks every record, and migrates again to see
// that nothing more is written.
func TestMigrateExceptions(t *testing.T) {
	s := storetest.New(t)
	ctx := context.Background()
	now := time.Now()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(s.Put(ctx, store.PoolKey(excPool), store.Pool{Subnet: excPool, BlockBits: 26}))
	blocks := map[string]string{"10.60.0.0/26": "a", "10.60.0.64/26": "b"}
	for b, h := range blocks {
		must(s.Put(ctx, store.BlockKey(excPool, netip.MustParsePrefix(b)), store.Block{Host: h, Claimed: now}))
	}
	addr := func(ip, kind, host string) {
		must(s.Put(ctx, store.AddrKey(excPool, netip.MustParseAddr(ip)), store.Address{IP: netip.MustParseAddr(ip), Kind: kind, Host: host, Since: now}))
	}
	exc := func(ip, host string) {
		must(s.Put(ctx, store.ExcKey(excPool, netip.MustParseAddr(ip)), store.Exception{Host: host}))
	}
	addr("10.60.0.1", store.AddrGateway, "")                          // gateway: never
	addr("10.60.0.2", store.AddrContainer, "a")                       // a in its own block
	addr("10.60.0.70", store.AddrContainer, "c")                      // c borrowed from b: needs one
	addr("10.60.0.71", store.AddrContainer, "a")                      // a --ip in b's block: has a wrong one
	exc("10.60.0.71", "b")                                            //
	addr("10.60.9.9", store.AddrContainer, "b")                       // unclaimed block: needs one
	addr("10.60.0.72", store.AddrContainer, "c")                      // already right
	exc("10.60.0.72", "c")                                            //
	exc("10.60.0.73", "c")                                            // released by an old podnetd: stale
	exc("10.60.0.1", "a")                                             // on the gateway: stale
	addr("10.60.0.3", store.AddrContainer, "a")                       // own block with a harmless record: kept
	exc("10.60.0.3", "a")                                             //
	must(s.Put(ctx, store.AliveKey("a"), store.HostAlive{Name: "a"})) // outside any pool: untouched

	res, err := store.MigrateExceptions(ctx, s)
	must(err)
	if res.Pools != 1 || res.Written != 3 || res.Deleted != 2 || res.Conflicts != 0 {
		t.Fatalf("first run: %+v", res)
	}
	kvs, _, err := s.List(ctx, store.ExcPrefix(excPool))
	must(err)
	var got []string
	for _, kv := range kvs {
		var e store.Exception
		must(kv.Decode(&e))
		raw, err := hex.DecodeString(strings.TrimPrefix(kv.Key, store.ExcPrefix(excPool)))
		must(err)
		a, _ := netip.AddrFromSlice(raw)
		got = append(got, a.String()+" "+e.Host)
	}
	sort.Strings(got)
	want := []string{"10.60.0.3 a", "10.60.0.70 c", "10.60.0.71 a", "10.60.0.72 c", "10.60.9.9 b"}
	if len(got) != len(want) {
		t.Fatalf("exception records %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("exception records %v, want %v", got, want)
		}
	}
	res, err = store.MigrateExceptions(ctx, s)
	must(err)
	if res.Written != 0 || res.Deleted != 0 {
		t.Fatalf("second run changed records: %+v", res)
	}
}

// TestExceptionFixLosesToNewerWrites applies a fix computed from records
// that changed since: it must not hold.
func TestExceptionFixLosesToNewerWrites(t *testing.T) {
	s := storetest.New(t)
	ctx := context.Background()
	a := netip.MustParseAddr("10.60.0.70")
	if err := s.Put(ctx, store.AddrKey(excPool, a), store.Address{IP: a, Kind: store.AddrContainer, Host: "c"}); err != nil {
		t.Fatal(err)
	}
	kvs, _, err := s.List(ctx, store.IPAMPrefix(excPool))
	if err != nil {
		t.Fatal(err)
	}
	states := store.PoolExcStates(excPool, kvs)
	if len(states) != 1 || states[0].Owner != "c" || states[0].AddrRev == 0 {
		t.Fatalf("states %+v", states)
	}
	// The address is released and taken by its block's claimant meanwhile.
	if err := s.Put(ctx, store.AddrKey(excPool, a), store.Address{IP: a, Kind: store.AddrContainer, Host: "b"}); err != nil {
		t.Fatal(err)
	}
	cmps, ops, ok := store.ExceptionFix(excPool, states[0])
	if !ok {
		t.Fatal("no fix for a missing record")
	}
	held, _, err := s.Txn(ctx, cmps, ops)
	if err != nil || held {
		t.Fatalf("a fix from stale records held (%v): it would route b's address to c", err)
	}
	if n, _ := s.Count(ctx, store.ExcPrefix(excPool)); n != 0 {
		t.Fatalf("%d exception records written", n)
	}
}
