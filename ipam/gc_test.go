package ipam

import (
	"context"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/podnet/podnet/store"
)

func TestGCAddresses(t *testing.T) {
	c := newCluster(t)
	h1, h2 := c.host("h1"), c.host("h2")
	const pool = "10.1.0.0/16"
	requestPool(t, h1, pool, "")
	requestPool(t, h2, pool, "")
	if _, err := gateway(h1, pool, ""); err != nil {
		t.Fatal(err)
	}
	a, b, x := alloc(t, h1, pool), alloc(t, h1, pool), alloc(t, h1, pool)
	other := alloc(t, h2, pool)
	live := map[netip.Addr]bool{a: true}
	ctx := context.Background()

	got, err := h1.GCAddresses(ctx, live, time.Hour)
	if err != nil || len(got) != 0 {
		t.Fatalf("within grace: released %v %v", got, err)
	}
	got, err = h1.GCAddresses(ctx, live, 0)
	slices.SortFunc(got, netip.Addr.Compare)
	if err != nil || !slices.Equal(got, []netip.Addr{b, x}) {
		t.Fatalf("released %v (%v), want %v and %v", got, err, b, x)
	}
	for ip, want := range map[netip.Addr]bool{a: true, b: false, x: false, other: true, netip.MustParseAddr("10.1.0.1"): true} {
		if _, ok := c.addr(pool, ip.String()); ok != want {
			t.Fatalf("%s exists=%v after GC, want %v", ip, ok, want)
		}
	}
	// The freed addresses come back once the allocator wraps around.
	seen := map[netip.Addr]bool{}
	for range 64 {
		seen[alloc(t, h1, pool)] = true
	}
	if !seen[b] || !seen[x] {
		t.Fatalf("collected addresses %s, %s never reused", b, x)
	}
}

func TestGCPools(t *testing.T) {
	c := newCluster(t)
	h1, h2 := c.host("h1"), c.host("h2")
	ctx := context.Background()
	const shared, alone, used = "10.1.0.0/16", "10.2.0.0/16", "10.3.0.0/16"
	for _, p := range []string{shared, alone, used} {
		requestPool(t, h1, p, "")
	}
	requestPool(t, h2, shared, "")
	if _, err := gateway(h1, shared, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := gateway(h2, shared, ""); err != nil {
		t.Fatal(err)
	}
	release(t, h1, alone, alloc(t, h1, alone)) // leaves an idle block
	live := map[netip.Prefix]bool{netip.MustParsePrefix(used): true}

	got, err := h1.GCPools(ctx, live, time.Hour)
	if err != nil || len(got) != 0 {
		t.Fatalf("within grace: %v %v", got, err)
	}
	got, err = h1.GCPools(ctx, live, 0)
	slices.SortFunc(got, func(a, b netip.Prefix) int { return a.Addr().Compare(b.Addr()) })
	if err != nil || len(got) != 2 || got[0].String() != shared || got[1].String() != alone {
		t.Fatalf("GCPools dropped %v (%v), want %s and %s", got, err, shared, alone)
	}
	if _, ok := c.pool(alone); ok || len(c.keys(store.IPAMPrefix(netip.MustParsePrefix(alone)))) != 0 {
		t.Fatalf("unreferenced pool %s not deleted", alone)
	}
	if _, ok := c.pool(used); !ok {
		t.Fatalf("live pool %s deleted", used)
	}
	if _, ok := c.pool(shared); !ok {
		t.Fatalf("pool %s still used by h2 deleted", shared)
	}
	if refs := c.keys(store.PoolRefsPrefix(netip.MustParsePrefix(shared))); len(refs) != 1 {
		t.Fatalf("refs of %s: %v", shared, refs)
	}
	if gw, _ := c.addr(shared, "10.1.0.1"); !slices.Equal(gw.Hosts, []string{"h2"}) {
		t.Fatalf("gateway users %v, want only h2", gw.Hosts)
	}

	// A pool nobody references any more (its last host left while a
	// container address remained, since collected) goes on the next round.
	const orphan = "10.4.0.0/16"
	requestPool(t, h2, orphan, "")
	leaked := alloc(t, h2, orphan)
	releasePool(t, h2, orphan)
	if _, ok := c.pool(orphan); !ok {
		t.Fatal("pool with a container address deleted")
	}
	if got, err := h2.GCAddresses(ctx, nil, 0); err != nil || !slices.Contains(got, leaked) {
		t.Fatalf("leaked %s not collected: %v %v", leaked, got, err)
	}
	got, err = h1.GCPools(ctx, live, 0)
	if err != nil || !slices.Contains(got, netip.MustParsePrefix(orphan)) {
		t.Fatalf("orphan pool not collected: %v %v", got, err)
	}
	if left := c.keys(store.IPAMPrefix(netip.MustParsePrefix(orphan))); len(left) != 0 {
		t.Fatalf("keys left: %v", left)
	}
}

func TestReleaseHostBlocks(t *testing.T) {
	c := newCluster(t)
	h1, h2 := c.host("h1"), c.host("h2")
	ctx := context.Background()
	const pool, pool2 = "10.1.0.0/16", "10.9.0.0/28"
	for _, m := range []*IPAM{h1, h2} {
		requestPool(t, m, pool, "")
		requestPool(t, m, pool2, "")
		if _, err := gateway(m, pool, ""); err != nil {
			t.Fatal(err)
		}
	}
	mine := alloc(t, h1, pool)
	var gone []netip.Addr
	for range 70 { // two blocks
		gone = append(gone, alloc(t, h2, pool))
	}
	h1small := alloc(t, h1, pool2)
	borrowed := alloc(t, h2, pool2) // in h1's block

	if _, err := h1.ReleaseHostBlocks(ctx, "h1"); err == nil {
		t.Fatal("a host released its own blocks")
	}
	if err := c.raw.Put(ctx, store.AliveKey("h2"), store.HostAlive{Name: "h2"}); err != nil {
		t.Fatal(err)
	}
	_, err := h1.ReleaseHostBlocks(ctx, "h2")
	wantErr(t, err, "host h2 is alive")
	if err := c.raw.Delete(ctx, store.AliveKey("h2")); err != nil {
		t.Fatal(err)
	}

	n, err := h1.ReleaseHostBlocks(ctx, "h2")
	if err != nil || n != 2 {
		t.Fatalf("released %d blocks (%v), want 2", n, err)
	}
	for _, a := range gone {
		if _, ok := c.addr(pool, a.String()); ok {
			t.Fatalf("h2's address %s survived", a)
		}
	}
	if _, ok := c.addr(pool2, borrowed.String()); ok {
		t.Fatalf("h2's borrowed address %s survived", borrowed)
	}
	for pool, a := range map[string]netip.Addr{pool: mine, pool2: h1small} {
		if _, ok := c.addr(pool, a.String()); !ok {
			t.Fatalf("h1's address %s released", a)
		}
	}
	infos, err := h1.Pools(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range infos {
		if !slices.Equal(in.Hosts, []string{"h1"}) {
			t.Fatalf("pool %s still referenced by %v", in.Pool, in.Hosts)
		}
		for _, b := range in.Blocks {
			if b.Host == "h2" {
				t.Fatalf("h2's block %s survived", b.CIDR)
			}
		}
	}
	if gw, _ := c.addr(pool, "10.1.0.1"); !slices.Equal(gw.Hosts, []string{"h1"}) {
		t.Fatalf("gateway users %v", gw.Hosts)
	}
	// The freed blocks can be claimed again.
	for range 200 {
		alloc(t, h1, pool)
	}
}
