package ipam

import (
	"context"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/podnet/podnet/store"
)

// TestTunnelAddress: one tunnel address per host and pool, reserved in
// the host's own block, the same after a restart, never handed to a
// container, never collected as leaked, released with the network or the
// pool.
func TestTunnelAddress(t *testing.T) {
	c := newCluster(t)
	h1, h2 := c.host("h1"), c.host("h2")
	const pool = "10.1.0.0/16"
	p := netip.MustParsePrefix(pool)
	ctx := context.Background()
	requestPool(t, h1, pool, "")
	requestPool(t, h2, pool, "")
	if _, err := gateway(h1, pool, ""); err != nil {
		t.Fatal(err)
	}
	t1, err := h1.TunnelAddress(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	t2, err := h2.TunnelAddress(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	if t1 == t2 {
		t.Fatalf("both hosts got tunnel address %s", t1)
	}
	if rec, ok := c.addr(pool, t1.String()); !ok || rec.Kind != store.AddrTunnel || rec.Host != "h1" {
		t.Fatalf("record of %s: %+v (exists %v), want kind tunnel of h1", t1, rec, ok)
	}
	if again, err := c.host("h1").TunnelAddress(ctx, p); err != nil || again != t1 {
		t.Fatalf("restarted h1: tunnel address %s, %v; want %s again", again, err, t1)
	}
	for range 70 { // more than a /26 block: the allocator wraps around
		if a := alloc(t, h1, pool); a == t1 || a == t2 {
			t.Fatalf("container got the tunnel address %s", a)
		}
	}
	if got, err := h1.GCAddresses(ctx, map[netip.Addr]bool{}, -time.Hour); err != nil || slices.Contains(got, t1) {
		t.Fatalf("GC released %v (%v), including the tunnel address %s", got, err, t1)
	}
	if err := h1.ReleaseTunnelAddress(ctx, p); err != nil {
		t.Fatal(err)
	}
	if err := h1.ReleaseTunnelAddress(ctx, p); err != nil {
		t.Fatalf("second release: %v", err)
	}
	if _, ok := c.addr(pool, t1.String()); ok {
		t.Fatalf("%s still recorded after release", t1)
	}
	releasePool(t, h2, pool)
	if _, ok := c.addr(pool, t2.String()); ok {
		t.Fatalf("h2's tunnel address %s outlived its pool reference", t2)
	}
}
