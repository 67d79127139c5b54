package ipam

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"testing"

	"github.com/docker/go-plugins-helpers/ipam"
	"github.com/podnet/podnet/store"
)

// The hot path: once the pool is loaded and a block claimed, an address
// costs exactly one etcd round trip, and so does its release.
func TestRequestAddressIsOneRoundTrip(t *testing.T) {
	c := newCluster(t)
	m := c.host("h1")
	counter := &countingKV{kv: m.st}
	m.st = counter
	const pool = "10.1.0.0/16"
	requestPool(t, m, pool, "")
	alloc(t, m, pool) // loads the pool and claims a block
	for range 10 {
		before := counter.calls.Load()
		a := alloc(t, m, pool)
		if n := counter.calls.Load() - before; n != 1 {
			t.Fatalf("allocation took %d etcd round trips, want 1", n)
		}
		before = counter.calls.Load()
		release(t, m, pool, a)
		if n := counter.calls.Load() - before; n != 1 {
			t.Fatalf("release took %d etcd round trips, want 1", n)
		}
	}
}

func TestAddressesSkipReservedAndCarryPoolMask(t *testing.T) {
	c := newCluster(t)
	m := c.host("h1")
	const pool = "10.9.0.0/29"
	requestPool(t, m, pool, "")
	var got []string
	for range 6 {
		cidr, err := request(m, pool, "", nil)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, cidr)
	}
	want := []string{"10.9.0.1/29", "10.9.0.2/29", "10.9.0.3/29", "10.9.0.4/29", "10.9.0.5/29", "10.9.0.6/29"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("got %v, want %v (no network or broadcast address)", got, want)
	}
	_, err := request(m, pool, "", nil)
	wantErr(t, err, "no free address in pool 10.9.0.0/29: all 6 usable addresses are allocated")
	if !errors.Is(err, errExhausted) {
		t.Fatalf("exhaustion error %v does not wrap errExhausted", err)
	}
	for _, ip := range []string{"10.9.0.0", "10.9.0.7"} {
		_, err := request(m, pool, ip, nil)
		wantErr(t, err, "address "+ip+" is the")
	}
}

func TestIPv6Allocation(t *testing.T) {
	c := newCluster(t)
	m := c.host("h1")
	const pool = "fd00:1::/64"
	requestPool(t, m, pool, "")
	if gw, err := gateway(m, pool, ""); err != nil || gw != "fd00:1::1/64" {
		t.Fatalf("gateway %q %v", gw, err)
	}
	for range 70 { // more than one /122 block
		a := alloc(t, m, pool)
		if a == netip.MustParseAddr("fd00:1::") || a == netip.MustParseAddr("fd00:1::1") {
			t.Fatalf("handed out %s", a)
		}
	}
	_, err := request(m, pool, "fd00:1::", nil)
	wantErr(t, err, "subnet-router anycast")
	_, err = request(m, pool, "fe80::1%eth0", nil)
	wantErr(t, err, "invalid address")
}

func TestIPRangeRespected(t *testing.T) {
	c := newCluster(t)
	h1, h2 := c.host("h1"), c.host("h2")
	const pool = "10.1.0.0/16"
	requestPool(t, h1, pool, "10.1.2.0/29")
	requestPool(t, h2, pool, "10.1.2.0/29")
	rng := netip.MustParsePrefix("10.1.2.0/29")
	for i := range 8 {
		m := h1
		if i%2 == 1 {
			m = h2
		}
		if a := alloc(t, m, pool); !rng.Contains(a) {
			t.Fatalf("dynamic address %s outside ip-range %s", a, rng)
		}
	}
	_, err := request(h1, pool, "", nil)
	wantErr(t, err, "no free address in pool 10.1.0.0/16 (ip-range 10.1.2.0/29): all 8 usable addresses are allocated")
	// Explicit addresses may lie outside the range, and so may the gateway.
	if got, err := request(h1, pool, "10.1.5.5", nil); err != nil || got != "10.1.5.5/16" {
		t.Fatalf("explicit outside range: %q %v", got, err)
	}
	if got, err := gateway(h1, pool, ""); err != nil || got != "10.1.0.1/16" {
		t.Fatalf("gateway outside range: %q %v", got, err)
	}
}

func TestExplicitAddress(t *testing.T) {
	c := newCluster(t)
	h1, h2 := c.host("h1"), c.host("h2")
	const pool = "10.1.0.0/16"
	requestPool(t, h1, pool, "")
	requestPool(t, h2, pool, "")
	if got, err := request(h1, pool, "10.1.0.5", nil); err != nil || got != "10.1.0.5/16" {
		t.Fatalf("explicit: %q %v", got, err)
	}
	// The driver records the endpoint later.
	ep := "3f2a9c1b7d4e5f60718293a4b5c6d7e8f90123456789abcdef0123456789abcd"
	if err := c.raw.Put(context.Background(), store.AddrKey(netip.MustParsePrefix(pool), netip.MustParseAddr("10.1.0.5")),
		store.Address{IP: netip.MustParseAddr("10.1.0.5"), Kind: store.AddrContainer, Host: "h1", Endpoint: ep}); err != nil {
		t.Fatal(err)
	}
	for _, m := range []*IPAM{h1, h2} {
		_, err := request(m, pool, "10.1.0.5", nil)
		wantErr(t, err, "address 10.1.0.5 is already in use (container, host h1, endpoint 3f2a9c1b7d4e)")
	}
	_, err := request(h2, pool, "10.2.0.5", nil)
	wantErr(t, err, "address 10.2.0.5 is outside pool 10.1.0.0/16")
	_, err = request(h2, pool, "ten.one", nil)
	wantErr(t, err, `invalid address "ten.one"`)
	// With only a MAC option, still a container address.
	if _, err := request(h2, pool, "10.1.0.6", map[string]string{"com.docker.network.endpoint.macaddress": "02:42:ac:11:00:02"}); err != nil {
		t.Fatal(err)
	}
	if _, err := request(h2, pool, "", map[string]string{"com.docker.network.endpoint.macaddress": "02:42:ac:11:00:02"}); err != nil {
		t.Fatal(err)
	}
	_, err = request(h2, pool, "", map[string]string{optRequestAddressType: "com.docker.network.something"})
	wantErr(t, err, "unsupported RequestAddressType")
	// An aux address is requested exactly like --ip, so a second host
	// asking for the same one is told who holds it.
	if _, err := request(h1, pool, "10.1.0.9", nil); err != nil {
		t.Fatal(err)
	}
	_, err = request(h2, pool, "10.1.0.9", nil)
	wantErr(t, err, "already in use (container, host h1, no endpoint yet", "--aux-address")
}

// An --ip in the block another host allocates from is skipped by that
// host's dynamic allocation.
func TestExplicitAddressInAnotherHostsBlock(t *testing.T) {
	c := newCluster(t)
	h1, h2 := c.host("h1"), c.host("h2")
	const pool = "10.4.0.0/29" // one block: the whole pool
	requestPool(t, h1, pool, "")
	requestPool(t, h2, pool, "")
	if a := alloc(t, h1, pool); a.String() != "10.4.0.1" {
		t.Fatalf("first address %s", a)
	}
	if _, err := request(h2, pool, "10.4.0.2", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := request(h2, pool, "10.4.0.3", nil); err != nil {
		t.Fatal(err)
	}
	if a := alloc(t, h1, pool); a.String() != "10.4.0.4" {
		t.Fatalf("h1 got %s, want 10.4.0.4 (10.4.0.2-3 are h2's)", a)
	}
}

func TestRoundRobinDoesNotReuseAtOnce(t *testing.T) {
	c := newCluster(t)
	m := c.host("h1")
	const pool = "10.9.0.0/29"
	requestPool(t, m, pool, "")
	a1, a2, a3 := alloc(t, m, pool), alloc(t, m, pool), alloc(t, m, pool)
	release(t, m, pool, a2)
	if a4 := alloc(t, m, pool); a4 == a2 || a4.Compare(a3) <= 0 {
		t.Fatalf("after releasing %s got %s, want the address after %s", a2, a4, a3)
	}
	alloc(t, m, pool)
	alloc(t, m, pool) // .6: the block is full except a2
	if a := alloc(t, m, pool); a != a2 {
		t.Fatalf("wrapped around to %s, want the only free address %s", a, a2)
	}
	release(t, m, pool, a1)
	if a := alloc(t, m, pool); a != a1 {
		t.Fatalf("got %s, want %s", a, a1)
	}
}

func TestBorrowFromAnotherHostsBlock(t *testing.T) {
	c := newCluster(t)
	h1, h2 := c.host("h1"), c.host("h2")
	const pool = "10.3.0.0/28" // smaller than a block: one block
	requestPool(t, h1, pool, "")
	requestPool(t, h2, pool, "")
	mine := alloc(t, h1, pool)
	borrowed := alloc(t, h2, pool)
	if borrowed == mine {
		t.Fatal("duplicate")
	}
	rec, ok := c.addr(pool, borrowed.String())
	if !ok || rec.Host != "h2" {
		t.Fatalf("borrowed address record %+v, want owner h2", rec)
	}
	infos, _ := h1.Pools(context.Background())
	if len(infos[0].Blocks) != 1 || infos[0].Blocks[0].Host != "h1" || infos[0].Blocks[0].Used != 2 {
		t.Fatalf("blocks %+v, want h1's block with both addresses", infos[0].Blocks)
	}
	// h1 keeps allocating around the borrowed address.
	seen := map[netip.Addr]bool{mine: true, borrowed: true}
	for range 12 {
		m := h1
		if len(seen)%3 == 0 {
			m = h2
		}
		a := alloc(t, m, pool)
		if seen[a] {
			t.Fatalf("%s handed out twice", a)
		}
		seen[a] = true
	}
	_, err := request(h2, pool, "", nil)
	wantErr(t, err, "all 14 usable addresses are allocated")
	release(t, h2, pool, borrowed)
	if _, ok := c.addr(pool, borrowed.String()); ok {
		t.Fatal("borrowed address not released")
	}
	// h1 sees the address freed by h2 in its block once it looks again.
	if a := alloc(t, h1, pool); a != borrowed {
		t.Fatalf("got %s, want the freed %s", a, borrowed)
	}
}

func TestReleaseByOtherHostIsIgnored(t *testing.T) {
	c := newCluster(t)
	h1, h2 := c.host("h1"), c.host("h2")
	const pool = "10.1.0.0/16"
	requestPool(t, h1, pool, "")
	requestPool(t, h2, pool, "")
	a := alloc(t, h1, pool)
	release(t, h2, pool, a)
	if rec, ok := c.addr(pool, a.String()); !ok || rec.Host != "h1" {
		t.Fatalf("h2 released h1's address: %+v %v", rec, ok)
	}
	// Absent addresses and pools release fine.
	release(t, h1, pool, netip.MustParseAddr("10.1.200.200"))
	release(t, h1, "10.99.0.0/16", netip.MustParseAddr("10.99.0.1"))
	err := h1.ReleaseAddress(context.Background(), &ipam.ReleaseAddressRequest{PoolID: pool, Address: "10.2.0.1"})
	wantErr(t, err, "outside pool")
}

func TestUnknownPool(t *testing.T) {
	m := newCluster(t).host("h1")
	_, err := request(m, "10.99.0.0/16", "", nil)
	wantErr(t, err, "pool 10.99.0.0/16", "unknown pool", "recreate")
	for _, id := range []string{"garbage", "10.99.1.0/16", ""} {
		_, err := request(m, id, "", nil)
		wantErr(t, err, "unknown pool")
	}
}

// 3 hosts × 200 allocations, 8 concurrent requests per host: no address
// twice, and etcd holds exactly what was handed out, owned by whoever got it.
func TestConcurrentAllocationThreeHosts(t *testing.T) {
	c := newCluster(t)
	const pool = "10.10.0.0/22"
	got := map[netip.Addr]string{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for h := range 3 {
		m := c.host(fmt.Sprintf("h%d", h))
		requestPool(t, m, pool, "")
		for w := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := w; i < 200; i += 8 {
					cidr, err := request(m, pool, "", nil)
					if err != nil {
						t.Error(err)
						return
					}
					a := netip.MustParsePrefix(cidr).Addr()
					mu.Lock()
					if prev, dup := got[a]; dup {
						t.Errorf("%s handed out to %s and %s", a, prev, m.host)
					}
					got[a] = m.host
					mu.Unlock()
				}
			}()
		}
	}
	wg.Wait()
	if len(got) != 600 {
		t.Fatalf("%d distinct addresses, want 600", len(got))
	}
	p := netip.MustParsePrefix(pool)
	kvs, _, err := c.raw.List(context.Background(), store.AddrsPrefix(p))
	if err != nil || len(kvs) != 600 {
		t.Fatalf("etcd holds %d addresses (%v), want 600", len(kvs), err)
	}
	for _, kv := range kvs {
		var rec store.Address
		a, _ := addrFromKey(p, kv.Key)
		if err := kv.Decode(&rec); err != nil || got[a] != rec.Host {
			t.Fatalf("etcd says %s belongs to %q, handed to %q", a, rec.Host, got[a])
		}
	}
}

// A pool barely big enough for everyone: hosts must claim both blocks and
// then borrow, concurrently, without duplicates.
func TestConcurrentAllocationTinyPoolBorrows(t *testing.T) {
	c := newCluster(t)
	const pool = "10.11.0.0/27" // 30 usable, two /28 blocks
	var hosts []*IPAM
	for h := range 3 {
		m := c.host(fmt.Sprintf("h%d", h), func(cfg *Config) { cfg.BlockBits4 = 28 })
		requestPool(t, m, pool, "")
		hosts = append(hosts, m)
	}
	got := map[netip.Addr]bool{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, m := range hosts {
		for range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range 5 {
					cidr, err := request(m, pool, "", nil)
					if err != nil {
						t.Error(err)
						return
					}
					mu.Lock()
					a := netip.MustParsePrefix(cidr).Addr()
					if got[a] {
						t.Errorf("%s handed out twice", a)
					}
					got[a] = true
					mu.Unlock()
				}
			}()
		}
	}
	wg.Wait()
	if len(got) != 30 {
		t.Fatalf("%d addresses, want all 30", len(got))
	}
	_, err := request(hosts[0], pool, "", nil)
	wantErr(t, err, "all 30 usable addresses are allocated")
}

func TestChurnLeavesNoAddressKeys(t *testing.T) {
	c := newCluster(t)
	m := c.host("h1")
	const pool = "10.12.0.0/24"
	requestPool(t, m, pool, "")
	for range 1000 {
		release(t, m, pool, alloc(t, m, pool))
	}
	if left := c.keys(store.AddrsPrefix(netip.MustParsePrefix(pool))); len(left) != 0 {
		t.Fatalf("%d address keys leaked: %v", len(left), left[:min(5, len(left))])
	}
}

// A restarted podnetd (new IPAM, new client, same host) never hands out an
// address it already holds, continues after the last one, and releases
// what the previous process allocated.
func TestRestartedInstanceContinues(t *testing.T) {
	c := newCluster(t)
	const pool = "10.13.0.0/16"
	first := c.host("h1")
	requestPool(t, first, pool, "")
	held := map[netip.Addr]bool{}
	var last netip.Addr
	for range 70 {
		last = alloc(t, first, pool)
		held[last] = true
	}
	if _, err := request(first, pool, "10.13.200.1", nil); err != nil { // outside its blocks
		t.Fatal(err)
	}
	second := c.host("h1")
	next := alloc(t, second, pool)
	if held[next] || next.Compare(last) < 0 {
		t.Fatalf("restarted instance handed out %s; last before restart %s", next, last)
	}
	for range 70 {
		if a := alloc(t, second, pool); held[a] {
			t.Fatalf("%s handed out twice across a restart", a)
		}
	}
	for a := range held {
		release(t, second, pool, a)
		if _, ok := c.addr(pool, a.String()); ok {
			t.Fatalf("release of %s by the restarted instance did nothing", a)
		}
	}
	release(t, second, pool, netip.MustParseAddr("10.13.200.1"))
	if _, ok := c.addr(pool, "10.13.200.1"); ok {
		t.Fatal("release of an explicit address after restart did nothing")
	}
}
