package ipam

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/podnet/podnet/store"
)

// exc returns the exception record of ip, if any.
func (c *cluster) exc(pool, ip string) (store.Exception, bool) {
	c.t.Helper()
	var e store.Exception
	_, err := c.raw.Get(context.Background(), store.ExcKey(netip.MustParsePrefix(pool), netip.MustParseAddr(ip)), &e)
	if errors.Is(err, store.ErrNotFound) {
		return e, false
	}
	if err != nil {
		c.t.Fatal(err)
	}
	return e, true
}

// TestExceptionRecordsFollowAddresses checks that exactly the addresses
// other hosts must route apart (outside their owner's blocks) have an
// exception record, written and deleted with the address itself.
func TestExceptionRecordsFollowAddresses(t *testing.T) {
	c := newCluster(t)
	h1, h2 := c.host("h1"), c.host("h2")
	const pool = "10.5.0.0/16"
	requestPool(t, h1, pool, "")
	requestPool(t, h2, pool, "")
	gw, err := gateway(h1, pool, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := gateway(h2, pool, ""); err != nil {
		t.Fatal(err)
	}
	own := alloc(t, h1, pool)
	b1 := netip.PrefixFrom(own, 26).Masked()
	inH1 := b1.Addr().Next().Next().Next().Next().Next().Next() // .6 of h1's block
	if _, err := request(h2, pool, inH1.String(), nil); err != nil {
		t.Fatal(err)
	}
	unclaimed := netip.MustParseAddr("10.5.200.9")
	if _, err := request(h2, pool, unclaimed.String(), nil); err != nil {
		t.Fatal(err)
	}
	h2own := alloc(t, h2, pool)

	for ip, want := range map[netip.Addr]string{
		own: "", h2own: "", netip.MustParsePrefix(gw).Addr(): "", // in their owner's block; the gateway
		inH1: "h2", unclaimed: "h2", // --ip outside h2's blocks
	} {
		e, ok := c.exc(pool, ip.String())
		if ok != (want != "") || e.Host != want {
			t.Errorf("%s: exception record %+v (exists %v), want owner %q", ip, e, ok, want)
		}
	}
	if n := len(c.keys(store.ExcPrefix(netip.MustParsePrefix(pool)))); n != 2 {
		t.Errorf("%d exception records, want 2", n)
	}

	// Released with the address; GC too.
	release(t, h2, pool, inH1)
	if _, ok := c.exc(pool, inH1.String()); ok {
		t.Error("exception record outlived its address")
	}
	got, err := h2.GCAddresses(context.Background(), map[netip.Addr]bool{h2own: true}, 0)
	if err != nil || !slices.Equal(got, []netip.Addr{unclaimed}) {
		t.Fatalf("GC released %v (%v), want %s", got, err, unclaimed)
	}
	if _, ok := c.exc(pool, unclaimed.String()); ok {
		t.Error("exception record outlived its collected address")
	}

	// A record a podnetd older than layout 2 left behind is dropped when
	// the block's own host takes the address.
	stale := b1.Addr().Next().Next().Next().Next().Next().Next().Next() // .7 of h1's block
	if err := c.raw.Put(context.Background(), store.ExcKey(netip.MustParsePrefix(pool), stale), store.Exception{Host: "h2"}); err != nil {
		t.Fatal(err)
	}
	if _, err := request(h1, pool, stale.String(), nil); err != nil {
		t.Fatal(err)
	}
	if _, ok := c.exc(pool, stale.String()); ok {
		t.Error("a stale exception record survived the block owner's allocation (it would route h1's container to h2)")
	}
}

// TestBorrowedAddressHasExceptionRecord fills a one-block pool from its
// owner and lets a second host borrow.
func TestBorrowedAddressHasExceptionRecord(t *testing.T) {
	c := newCluster(t)
	h1, h2 := c.host("h1"), c.host("h2")
	const pool = "10.3.0.0/28"
	requestPool(t, h1, pool, "")
	requestPool(t, h2, pool, "")
	alloc(t, h1, pool)
	borrowed := alloc(t, h2, pool)
	if e, ok := c.exc(pool, borrowed.String()); !ok || e.Host != "h2" {
		t.Fatalf("borrowed %s: exception record %+v (exists %v), want owner h2", borrowed, e, ok)
	}
}

// TestReleaseHostBlocksDropsExceptions removes a dead host whose --ip
// address sits in another host's block.
func TestReleaseHostBlocksDropsExceptions(t *testing.T) {
	c := newCluster(t)
	h1, h2 := c.host("h1"), c.host("h2")
	const pool = "10.6.0.0/16"
	requestPool(t, h1, pool, "")
	requestPool(t, h2, pool, "")
	a := alloc(t, h1, pool)
	x := netip.PrefixFrom(a, 26).Masked().Addr().Next().Next().Next().Next().Next()
	if _, err := request(h2, pool, x.String(), nil); err != nil {
		t.Fatal(err)
	}
	// A stale one of h2's, left by an older podnetd.
	stale := netip.MustParseAddr("10.6.99.1")
	if err := c.raw.Put(context.Background(), store.ExcKey(netip.MustParsePrefix(pool), stale), store.Exception{Host: "h2"}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := h1.ReleaseHostBlocks(ctx, "h2"); err != nil {
		t.Fatal(err)
	}
	if keys := c.keys(store.ExcPrefix(netip.MustParsePrefix(pool))); len(keys) != 0 {
		t.Fatalf("exception records of the removed host left: %v", keys)
	}
}
