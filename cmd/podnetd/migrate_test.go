package main

import (
	"context"
	"errors"
	"net/netip"
	"testing"

	"github.com/podnet/podnet/store"
	"github.com/podnet/podnet/store/storetest"
)

// TestMigrateIPAMLayoutRunsOnce checks the start-up hook: the first start
// writes the missing exception record and the mark, a later start reads
// only the mark (a record planted since stays as it is).
func TestMigrateIPAMLayoutRunsOnce(t *testing.T) {
	st := storetest.New(t)
	ctx := context.Background()
	log := storetest.Logger(t)
	pool := netip.MustParsePrefix("10.70.0.0/16")
	a := netip.MustParseAddr("10.70.9.9") // in no claimed block
	for key, v := range map[string]any{
		store.PoolKey(pool):    store.Pool{Subnet: pool, BlockBits: 26},
		store.AddrKey(pool, a): store.Address{IP: a, Kind: store.AddrContainer, Host: "h2"},
	} {
		if err := st.Put(ctx, key, v); err != nil {
			t.Fatal(err)
		}
	}
	if err := migrateIPAMLayout(ctx, st, "h1", log); err != nil {
		t.Fatal(err)
	}
	var e store.Exception
	if _, err := st.Get(ctx, store.ExcKey(pool, a), &e); err != nil || e.Host != "h2" {
		t.Fatalf("exception record %+v (%v), want owner h2", e, err)
	}
	var mark store.IPAMLayoutMark
	if _, err := st.Get(ctx, store.IPAMLayoutKey, &mark); err != nil || mark.Layout != store.IPAMLayoutExceptions || mark.By != "h1" {
		t.Fatalf("mark %+v (%v)", mark, err)
	}
	b := netip.MustParseAddr("10.70.9.10")
	if err := st.Put(ctx, store.AddrKey(pool, b), store.Address{IP: b, Kind: store.AddrContainer, Host: "h2"}); err != nil {
		t.Fatal(err)
	}
	if err := migrateIPAMLayout(ctx, st, "h3", log); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Get(ctx, store.ExcKey(pool, b), nil); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("the second start migrated again (%v): every start would read every pool", err)
	}
}
