package ipam

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/docker/go-plugins-helpers/ipam"
	"github.com/podnet/podnet/store"
)

// The plugin answers IpamDriver.GetCapabilities itself, before the IPAM
// is ready (plugin.TestHandshakeAnswersBeforeDriversAreReady checks it asks for no MAC).
func TestAddressSpaces(t *testing.T) {
	m := newCluster(t).host("h1")
	s := m.GetDefaultAddressSpaces()
	if s.LocalDefaultAddressSpace != "podnet-local" || s.GlobalDefaultAddressSpace != "podnet-global" {
		t.Fatalf("address spaces %+v", s)
	}
}

func TestNewValidatesConfig(t *testing.T) {
	c := newCluster(t)
	for name, tweak := range map[string]func(*Config){
		"no host":          func(c *Config) { c.Host = "" },
		"no store":         func(c *Config) { c.Store = nil },
		"v4 block too big": func(c *Config) { c.BlockBits4 = 8 },
		"v6 block too big": func(c *Config) { c.BlockBits6 = 64 },
		"auto pool bits":   func(c *Config) { c.AutoPools = []AutoPool{{Base: netip.MustParsePrefix("10.0.0.0/16"), Bits: 8}} },
	} {
		cfg := Config{Host: "h1", Store: c.raw}
		tweak(&cfg)
		if _, err := New(cfg); err == nil {
			t.Errorf("%s: New accepted %+v", name, cfg)
		}
	}
}

// Three hosts create "the same network": the pool is shared and
// reference-counted, and the last host out leaves nothing behind.
func TestPoolSharedByThreeHostsAndDeletedByTheLast(t *testing.T) {
	c := newCluster(t)
	hosts := []*IPAM{c.host("h1"), c.host("h2"), c.host("h3")}
	for _, m := range hosts {
		// Non-canonical on purpose: Docker passes --subnet verbatim.
		if id := requestPool(t, m, "10.1.2.3/16", ""); id != "10.1.0.0/16" {
			t.Fatalf("PoolID %q, want the canonical 10.1.0.0/16", id)
		}
		if id := requestPool(t, m, "10.1.0.0/16", ""); id != "10.1.0.0/16" {
			t.Fatalf("repeat: PoolID %q", id)
		}
	}
	const pool = "10.1.0.0/16"
	p := netip.MustParsePrefix(pool)
	if refs := c.keys(store.PoolRefsPrefix(p)); len(refs) != 3 {
		t.Fatalf("refs %v, want one per host", refs)
	}
	// Each host runs the whole network lifecycle.
	for _, m := range hosts {
		if gw, err := gateway(m, pool, ""); err != nil || gw != "10.1.0.1/16" {
			t.Fatalf("%s gateway: %q %v", m.host, gw, err)
		}
		var got []netip.Addr
		for range 3 {
			got = append(got, alloc(t, m, pool))
		}
		for _, a := range got {
			release(t, m, pool, a)
		}
	}
	for i, m := range hosts {
		if err := m.ReleaseAddress(context.Background(), &ipam.ReleaseAddressRequest{PoolID: pool, Address: "10.1.0.1"}); err != nil {
			t.Fatal(err)
		}
		releasePool(t, m, pool)
		_, exists := c.pool(pool)
		if last := i == len(hosts)-1; exists == last {
			t.Fatalf("after %s released: pool exists=%v", m.host, exists)
		}
		if refs := c.keys(store.PoolRefsPrefix(p)); len(refs) != len(hosts)-i-1 {
			t.Fatalf("after %s released: refs %v", m.host, refs)
		}
	}
	if left := c.keys(""); len(left) != 0 {
		t.Fatalf("keys left after the last host released the pool: %v", left)
	}
	// Releasing again is harmless.
	releasePool(t, hosts[0], pool)
}

func TestReleasePoolFreesIdleBlocksOnly(t *testing.T) {
	c := newCluster(t)
	h1, h2 := c.host("h1"), c.host("h2")
	const pool = "10.2.0.0/16"
	requestPool(t, h1, pool, "")
	requestPool(t, h2, pool, "")
	// h1 ends up with two blocks: one keeps an address (a leaked one,
	// say), the other is empty.
	kept := alloc(t, h1, pool)
	var rest []netip.Addr
	for range 64 {
		rest = append(rest, alloc(t, h1, pool))
	}
	for _, a := range rest {
		release(t, h1, pool, a)
	}
	infos, err := h1.Pools(context.Background())
	if err != nil || len(infos) != 1 || len(infos[0].Blocks) != 2 {
		t.Fatalf("pools %+v %v, want 2 blocks of h1", infos, err)
	}
	releasePool(t, h1, pool)
	infos, _ = h2.Pools(context.Background())
	if len(infos[0].Blocks) != 1 || !infos[0].Blocks[0].CIDR.Contains(kept) || infos[0].Blocks[0].Host != "h1" {
		t.Fatalf("blocks after release: %+v, want only h1's block holding %s", infos[0].Blocks, kept)
	}
	if !slices.Equal(infos[0].Hosts, []string{"h2"}) {
		t.Fatalf("hosts %v", infos[0].Hosts)
	}
}

func TestRequestPoolValidation(t *testing.T) {
	m := newCluster(t).host("h1")
	for _, tc := range []struct {
		name       string
		req        ipam.RequestPoolRequest
		wantErrors []string
	}{
		{"ipam option", ipam.RequestPoolRequest{Pool: "10.1.0.0/16", Options: map[string]string{"foo": "1"}}, []string{`"foo"`, "--ipam-opt"}},
		{"malformed", ipam.RequestPoolRequest{Pool: "10.1.0.0/33"}, []string{`invalid subnet "10.1.0.0/33"`}},
		{"garbage", ipam.RequestPoolRequest{Pool: "banana"}, []string{`invalid subnet "banana"`}},
		{"v4 asked as v6", ipam.RequestPoolRequest{Pool: "10.1.0.0/16", V6: true}, []string{"not an IPv6 subnet"}},
		{"v6 asked as v4", ipam.RequestPoolRequest{Pool: "fd00::/64"}, []string{"not an IPv4 subnet"}},
		{"range outside", ipam.RequestPoolRequest{Pool: "10.1.0.0/16", SubPool: "10.2.0.0/24"}, []string{"ip-range 10.2.0.0/24 is outside subnet 10.1.0.0/16"}},
		{"range bigger", ipam.RequestPoolRequest{Pool: "10.1.0.0/16", SubPool: "10.0.0.0/8"}, []string{"outside subnet"}},
		{"range malformed", ipam.RequestPoolRequest{Pool: "10.1.0.0/16", SubPool: "10.1.0.0"}, []string{`invalid ip-range "10.1.0.0"`}},
		{"range without subnet", ipam.RequestPoolRequest{SubPool: "10.1.0.0/24"}, []string{"without a subnet"}},
		{"everything", ipam.RequestPoolRequest{Pool: "0.0.0.0/0"}, []string{"every IPv4 address"}},
		{"too small", ipam.RequestPoolRequest{Pool: "10.1.0.0/31"}, []string{"too small"}},
		{"mapped", ipam.RequestPoolRequest{Pool: "::ffff:10.1.0.0/112", V6: true}, []string{"IPv4-mapped"}},
	} {
		_, err := m.RequestPool(context.Background(), &tc.req)
		if err == nil {
			t.Errorf("%s: accepted", tc.name)
			continue
		}
		for _, part := range tc.wantErrors {
			if !strings.Contains(err.Error(), part) {
				t.Errorf("%s: error %q lacks %q", tc.name, err, part)
			}
		}
	}
}

func TestOverlappingSubnetRefused(t *testing.T) {
	c := newCluster(t)
	h1, h2 := c.host("h1"), c.host("h2")
	requestPool(t, h1, "10.1.0.0/16", "")
	for _, s := range []string{"10.1.2.0/24", "10.0.0.0/8"} {
		_, err := h2.RequestPool(context.Background(), &ipam.RequestPoolRequest{Pool: s})
		wantErr(t, err, "overlaps podnet pool 10.1.0.0/16")
		_, err = h1.RequestPool(context.Background(), &ipam.RequestPoolRequest{Pool: s})
		wantErr(t, err, "overlaps podnet pool 10.1.0.0/16")
	}
	// A neighbour is fine.
	requestPool(t, h2, "10.2.0.0/16", "")
}

func TestSameSubnetWithAnotherIPRangeRefused(t *testing.T) {
	c := newCluster(t)
	h1, h2 := c.host("h1"), c.host("h2")
	requestPool(t, h1, "10.1.0.0/16", "10.1.2.0/24")
	_, err := h2.RequestPool(context.Background(), &ipam.RequestPoolRequest{Pool: "10.1.0.0/16", SubPool: "10.1.3.0/24"})
	wantErr(t, err, "ip-range 10.1.2.0/24", "--ip-range 10.1.2.0/24")
	_, err = h2.RequestPool(context.Background(), &ipam.RequestPoolRequest{Pool: "10.1.0.0/16"})
	wantErr(t, err, "ip-range 10.1.2.0/24")
	requestPool(t, h2, "10.1.0.0/16", "10.1.2.7/24") // same range, not canonical

	requestPool(t, h1, "10.5.0.0/16", "")
	_, err = h2.RequestPool(context.Background(), &ipam.RequestPoolRequest{Pool: "10.5.0.0/16", SubPool: "10.5.1.0/24"})
	wantErr(t, err, "without an ip-range")
	// An ip-range equal to the subnet restricts nothing: the same pool.
	requestPool(t, h2, "10.5.0.0/16", "10.5.0.0/16")
}

func TestSameSubnetTwiceOnOneHostRefused(t *testing.T) {
	c := newCluster(t)
	h1, h2 := c.host("h1"), c.host("h2")
	const pool = "10.1.0.0/16"
	requestPool(t, h1, pool, "")
	// No network record yet: a repeated request (a crashed create) reuses
	// the stale reference.
	requestPool(t, h1, pool, "")
	id := "3f2a9c1b7d4e5f60718293a4b5c6d7e8f90123456789abcdef0123456789abcd"
	if err := c.raw.Put(context.Background(), store.NetworkKey("h1", id), store.Network{
		ID: id, Host: "h1", Mode: "bridge", IPv4: []store.Subnet{{Pool: netip.MustParsePrefix(pool), Gateway: netip.MustParsePrefix("10.1.0.1/16")}}}); err != nil {
		t.Fatal(err)
	}
	_, err := h1.RequestPool(context.Background(), &ipam.RequestPoolRequest{Pool: "10.1.9.9/16"})
	wantErr(t, err, "subnet 10.1.0.0/16 is already used by podnet network 3f2a9c1b7d4e on this host")
	// Another host joins the same network without trouble.
	requestPool(t, h2, pool, "")
}

func TestAutoPoolSkipsHostRoutesAndPools(t *testing.T) {
	c := newCluster(t)
	routes := []netip.Prefix{
		netip.MustParsePrefix("0.0.0.0/0"), // the default route must not count
		netip.MustParsePrefix("10.208.0.0/24"),
		netip.MustParsePrefix("10.208.2.0/23"),
		netip.MustParsePrefix("192.168.1.0/24"),
	}
	h1 := c.host("h1", func(cfg *Config) {
		cfg.HostRoutes = func() ([]netip.Prefix, error) { return routes, nil }
	})
	h2 := c.host("h2")
	requestPool(t, h2, "10.208.1.0/24", "")
	for _, want := range []string{"10.208.4.0/24", "10.208.5.0/24"} {
		if got := requestPool(t, h1, "", ""); got != want {
			t.Fatalf("auto pool %s, want %s", got, want)
		}
		if rec, ok := c.pool(want); !ok || !rec.Auto {
			t.Fatalf("pool record %+v, want Auto", rec)
		}
	}
	r, err := h1.RequestPool(context.Background(), &ipam.RequestPoolRequest{V6: true})
	if err != nil || r.PoolID != "fd70:6f64:6e65::/64" {
		t.Fatalf("auto IPv6 pool %+v %v", r, err)
	}
	// A host route covering a whole auto range is skipped in one step.
	h3 := c.host("h3", func(cfg *Config) {
		cfg.AutoPools = []AutoPool{{Base: netip.MustParsePrefix("172.30.0.0/16"), Bits: 24}}
		cfg.HostRoutes = func() ([]netip.Prefix, error) { return []netip.Prefix{netip.MustParsePrefix("172.30.0.0/16")}, nil }
	})
	_, err = h3.RequestPool(context.Background(), &ipam.RequestPoolRequest{})
	wantErr(t, err, "no free IPv4 subnet", "172.30.0.0/16", "--subnet")
	h4 := c.host("h4", func(cfg *Config) {
		cfg.HostRoutes = func() ([]netip.Prefix, error) { return nil, fmt.Errorf("netlink: boom") }
	})
	_, err = h4.RequestPool(context.Background(), &ipam.RequestPoolRequest{})
	wantErr(t, err, "routes", "boom")
}

func TestAutoPoolsConcurrentHostsGetDisjointSubnets(t *testing.T) {
	c := newCluster(t)
	var mu sync.Mutex
	var got []netip.Prefix
	var wg sync.WaitGroup
	for i := range 3 {
		m := c.host(fmt.Sprintf("h%d", i))
		for range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r, err := m.RequestPool(context.Background(), &ipam.RequestPoolRequest{})
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				got = append(got, netip.MustParsePrefix(r.PoolID))
				mu.Unlock()
			}()
		}
	}
	wg.Wait()
	for i := range got {
		for j := range i {
			if got[i].Overlaps(got[j]) {
				t.Fatalf("auto pools %s and %s overlap", got[i], got[j])
			}
		}
	}
	if len(got) != 12 || len(c.keys(store.PoolsPrefix)) != 12 {
		t.Fatalf("%d pools returned, %d in etcd, want 12", len(got), len(c.keys(store.PoolsPrefix)))
	}
}

func TestConcurrentOverlappingCreatesHaveOneWinner(t *testing.T) {
	c := newCluster(t)
	subnets := []string{"10.5.0.0/16", "10.5.1.0/24", "10.5.0.0/20", "10.4.0.0/14"}
	var wins atomic.Int32
	var wg sync.WaitGroup
	for i, s := range subnets {
		m := c.host(fmt.Sprintf("h%d", i))
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := m.RequestPool(context.Background(), &ipam.RequestPoolRequest{Pool: s}); err == nil {
				wins.Add(1)
			}
		}()
	}
	wg.Wait()
	if wins.Load() != 1 || len(c.keys(store.PoolsPrefix)) != 1 {
		t.Fatalf("%d overlapping pools created, want exactly 1", wins.Load())
	}
}

func TestReleasePoolRacesJoin(t *testing.T) {
	// The last host leaving and another joining at once: either the pool
	// survives with the joiner's reference, or it is recreated for it —
	// never a reference to a deleted pool.
	c := newCluster(t)
	for i := range 10 {
		pool := fmt.Sprintf("10.%d.0.0/16", 100+i)
		h1, h2 := c.host("h1"), c.host("h2")
		requestPool(t, h1, pool, "")
		var wg sync.WaitGroup
		wg.Add(2)
		go func() {
			defer wg.Done()
			if err := h1.ReleasePool(context.Background(), &ipam.ReleasePoolRequest{PoolID: pool}); err != nil {
				t.Error(err)
			}
		}()
		go func() {
			defer wg.Done()
			if _, err := h2.RequestPool(context.Background(), &ipam.RequestPoolRequest{Pool: pool}); err != nil {
				t.Error(err)
			}
		}()
		wg.Wait()
		if _, ok := c.pool(pool); !ok {
			t.Fatalf("round %d: pool gone although h2 joined it", i)
		}
		if refs := c.keys(store.PoolRefsPrefix(netip.MustParsePrefix(pool))); !slices.Equal(refs, []string{store.PoolRefKey(netip.MustParsePrefix(pool), "h2")}) {
			t.Fatalf("round %d: refs %v", i, refs)
		}
	}
}

func TestPoolsListing(t *testing.T) {
	c := newCluster(t)
	h1, h2 := c.host("h1"), c.host("h2")
	const pool = "10.7.0.0/16"
	requestPool(t, h1, pool, "10.7.1.0/24")
	requestPool(t, h2, pool, "10.7.1.0/24")
	if _, err := gateway(h1, pool, ""); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		alloc(t, h1, pool)
	}
	alloc(t, h2, pool)
	infos, err := h1.Pools(context.Background())
	if err != nil || len(infos) != 1 {
		t.Fatalf("%+v %v", infos, err)
	}
	in := infos[0]
	if in.Pool.String() != pool || in.IPRange.String() != "10.7.1.0/24" || in.V6 || in.Auto ||
		in.Gateway.String() != "10.7.0.1" || !slices.Equal(in.Hosts, []string{"h1", "h2"}) ||
		in.Allocated != 5 || len(in.Blocks) != 2 || in.Created.IsZero() || in.Created.After(time.Now()) {
		t.Fatalf("pool info %+v", in)
	}
	used := map[string]int{}
	for _, b := range in.Blocks {
		used[b.Host] += b.Used
	}
	if used["h1"] != 3 || used["h2"] != 1 {
		t.Fatalf("block usage %+v", in.Blocks)
	}
}
