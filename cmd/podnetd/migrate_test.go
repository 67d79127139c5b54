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

// TestMigrateIPv6ExceptionsOnce: a cluster migrated to exception records
// before overlays routed IPv6 addresses by them has its IPv6 pools (only
// those) checked again once, at the next start; a fresh migration covers
// them and records both marks.
func TestMigrateIPv6ExceptionsOnce(t *testing.T) {
	st := storetest.New(t)
	ctx := context.Background()
	log := storetest.Logger(t)
	pool4, pool6 := netip.MustParsePrefix("10.71.0.0/16"), netip.MustParsePrefix("fd00:71::/64")
	a4, a6 := netip.MustParseAddr("10.71.9.9"), netip.MustParseAddr("fd00:71::9:9") // in no claimed block
	for key, v := range map[string]any{
		store.PoolKey(pool4):     store.Pool{Subnet: pool4, BlockBits: 26},
		store.PoolKey(pool6):     store.Pool{Subnet: pool6, BlockBits: 122},
		store.AddrKey(pool4, a4): store.Address{IP: a4, Kind: store.AddrContainer, Host: "h2"},
		store.AddrKey(pool6, a6): store.Address{IP: a6, Kind: store.AddrContainer, Host: "h2"},
		// Migrated by a podnetd that routed IPv6 by address records.
		store.IPAMLayoutKey: store.IPAMLayoutMark{Layout: store.IPAMLayoutExceptions, By: "h0"},
	} {
		if err := st.Put(ctx, key, v); err != nil {
			t.Fatal(err)
		}
	}
	if err := migrateIPAMLayout(ctx, st, "h1", log); err != nil {
		t.Fatal(err)
	}
	var e store.Exception
	if _, err := st.Get(ctx, store.ExcKey(pool6, a6), &e); err != nil || e.Host != "h2" {
		t.Fatalf("IPv6 exception record %+v (%v), want owner h2", e, err)
	}
	if _, err := st.Get(ctx, store.ExcKey(pool4, a4), nil); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("the IPv4 pool was read again (%v): only IPv6 pools need it", err)
	}
	var mark store.IPAMLayoutMark
	if _, err := st.Get(ctx, store.IPv6ExceptionsKey, &mark); err != nil || mark.By != "h1" {
		t.Fatalf("IPv6 mark %+v (%v)", mark, err)
	}
	b6 := netip.MustParseAddr("fd00:71::9:a")
	if err := st.Put(ctx, store.AddrKey(pool6, b6), store.Address{IP: b6, Kind: store.AddrContainer, Host: "h2"}); err != nil {
		t.Fatal(err)
	}
	if err := migrateIPAMLayout(ctx, st, "h3", log); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Get(ctx, store.ExcKey(pool6, b6), nil); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("the second start checked IPv6 pools again (%v)", err)
	}

	// A fresh cluster: one migration, both marks.
	st2 := storetest.New(t)
	if err := st2.Put(ctx, store.PoolKey(pool6), store.Pool{Subnet: pool6, BlockBits: 122}); err != nil {
		t.Fatal(err)
	}
	if err := migrateIPAMLayout(ctx, st2, "h1", log); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{store.IPAMLayoutKey, store.IPv6ExceptionsKey} {
		if _, err := st2.Get(ctx, k, nil); err != nil {
			t.Errorf("mark %s after a fresh migration: %v", k, err)
		}
	}
}
