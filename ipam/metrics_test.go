package ipam

import (
	"context"
	"net/netip"
	"slices"
	"testing"

	"github.com/podnet/podnet/internal/metrics"
	"github.com/podnet/podnet/internal/metrics/metricstest"
)

// TestAllocationMetrics: every RequestAddress counts once, as an
// allocation of its kind in its pool or as a failure with its reason.
func TestAllocationMetrics(t *testing.T) {
	c := newCluster(t)
	m := c.host("h1")
	const pool = "10.77.0.0/29"
	requestPool(t, m, pool, "")
	allocs := func(kind string) float64 {
		return metricstest.Value(metrics.IPAMAllocations.WithLabelValues(pool, kind))
	}
	fails := func(reason string) float64 {
		return metricstest.Value(metrics.IPAMAllocationFailures.WithLabelValues(reason))
	}
	dyn0, exp0, gw0 := allocs(kindDynamic), allocs(kindExplicit), allocs(kindGateway)
	exh0, unk0 := fails(reasonExhausted), fails(reasonUnknownPool)

	if _, err := gateway(m, pool, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := request(m, pool, "10.77.0.6", nil); err != nil {
		t.Fatal(err)
	}
	for range 4 { // .2 .. .5: the rest of the /29
		alloc(t, m, pool)
	}
	if _, err := request(m, pool, "", nil); err == nil {
		t.Fatal("a full pool handed out an address")
	}
	if _, err := request(m, "10.78.0.0/24", "", nil); err == nil {
		t.Fatal("an unknown pool handed out an address")
	}

	for kind, want := range map[string]float64{kindDynamic: dyn0 + 4, kindExplicit: exp0 + 1, kindGateway: gw0 + 1} {
		if got := allocs(kind); got != want {
			t.Errorf("podnet_ipam_allocations_total{pool=%q,kind=%q} = %v, want %v", pool, kind, got, want)
		}
	}
	if got := fails(reasonExhausted); got != exh0+1 {
		t.Errorf("exhausted failures = %v, want %v", got, exh0+1)
	}
	if got := fails(reasonUnknownPool); got != unk0+1 {
		t.Errorf("unknown-pool failures = %v, want %v", got, unk0+1)
	}
}

// TestUsageAndPreload: Usage reports this host's blocks and addresses per
// pool from memory, with the pool's usable addresses (its dynamic range
// less the network and broadcast addresses); a restarted IPAM reports them
// after Preload, before any request.
func TestUsageAndPreload(t *testing.T) {
	c := newCluster(t)
	m := c.host("h1")
	const pool = "10.79.0.0/16"
	requestPool(t, m, pool, "")
	if _, err := gateway(m, pool, ""); err != nil {
		t.Fatal(err)
	}
	var addrs []netip.Addr
	for range 3 {
		addrs = append(addrs, alloc(t, m, pool))
	}
	release(t, m, pool, addrs[0])
	want := []metrics.PoolUsage{{Pool: pool, Blocks: 1, Addresses: 2, Usable: 65534}}
	if got := m.Usage(); !slices.Equal(got, want) {
		t.Fatalf("Usage() = %v, want %v", got, want)
	}

	// An ip-range holding the broadcast address; an IPv6 pool's 2^64.
	other := c.host("h2")
	requestPool(t, other, "10.81.0.0/24", "10.81.0.128/25")
	alloc(t, other, "10.81.0.0/24")
	requestPool(t, other, "fd00:81::/64", "")
	alloc(t, other, "fd00:81::/64")
	usable := map[string]float64{}
	for _, u := range other.Usage() {
		usable[u.Pool] = u.Usable
	}
	if usable["10.81.0.0/24"] != 127 || usable["fd00:81::/64"] < 1.8e19 {
		t.Fatalf("usable addresses %v, want 127 for 10.81.0.0/24 (10.81.0.128/25 less its broadcast), ~1.8e19 for fd00:81::/64", usable)
	}

	restarted := c.host("h1")
	if got := restarted.Usage(); len(got) != 0 {
		t.Fatalf("Usage() before any load = %v, want nothing", got)
	}
	restarted.Preload(context.Background(), []netip.Prefix{netip.MustParsePrefix(pool), netip.MustParsePrefix("10.80.0.0/24")})
	if got := restarted.Usage(); !slices.Equal(got, want) {
		t.Fatalf("Usage() after Preload = %v, want %v (the gone pool 10.80.0.0/24 left out)", got, want)
	}
}
