package ipam

import (
	"context"
	"net/netip"
	"slices"
	"testing"

	"github.com/docker/go-plugins-helpers/ipam"
)

// auxRequest is an --aux-address request: Docker sends it while it creates
// the network, before the host has a network record for the pool.
func auxRequest(m *IPAM, pool, ip string) (string, error) {
	r, err := m.RequestAddress(context.Background(), &ipam.RequestAddressRequest{PoolID: pool, Address: ip})
	if err != nil {
		return "", err
	}
	return r.Address, nil
}

func TestAuxAddressReservedForEveryHost(t *testing.T) {
	c := newCluster(t)
	h1, h2 := c.host("h1"), c.host("h2")
	const pool = "10.1.0.0/16"
	requestPool(t, h1, pool, "")
	requestPool(t, h2, pool, "")
	for _, m := range []*IPAM{h1, h2, h2} { // the same network on two hosts; a repeat is fine
		if got, err := auxRequest(m, pool, "10.1.0.5"); err != nil || got != "10.1.0.5/16" {
			t.Fatalf("%s: aux address: %q %v", m.host, got, err)
		}
	}
	a, ok := c.addr(pool, "10.1.0.5")
	if !ok || a.Kind != "aux" || !slices.Equal(a.Hosts, []string{"h1", "h2"}) {
		t.Fatalf("aux record: %+v", a)
	}
	// No container on any host gets it, explicitly or dynamically.
	for _, m := range []*IPAM{h1, h2} {
		_, err := request(m, pool, "10.1.0.5", nil)
		wantErr(t, err, "address 10.1.0.5 is already in use (reserved with --aux-address by hosts h1,h2)")
	}
	// An address a container holds is no aux address.
	if _, err := request(h1, pool, "10.1.0.9", nil); err != nil {
		t.Fatal(err)
	}
	_ = c.raw.Delete(context.Background(), testNetworkKey(h2, pool))
	_, err := auxRequest(h2, pool, "10.1.0.9")
	wantErr(t, err, "aux address 10.1.0.9 of pool 10.1.0.0/16 is already in use (container, host h1")
	// Each host's release drops its share; the last one deletes it.
	release(t, h1, pool, netip.MustParseAddr("10.1.0.5"))
	if a, ok := c.addr(pool, "10.1.0.5"); !ok || !slices.Equal(a.Hosts, []string{"h2"}) {
		t.Fatalf("after h1's release: %+v %v", a, ok)
	}
	// ReleasePool (the release Docker never sent) drops h2's share too.
	releasePool(t, h2, pool)
	if _, ok := c.addr(pool, "10.1.0.5"); ok {
		t.Fatal("aux address outlived its last host")
	}
}

// TestReleaseAfterReleasePoolFinishesIt: Docker releases a network's pool
// before DeleteNetwork, in which the driver releases its own address (a
// macvlan host-access shim's); that release finishes the pool's cleanup.
func TestReleaseAfterReleasePoolFinishesIt(t *testing.T) {
	c := newCluster(t)
	h1 := c.host("h1")
	const pool = "10.1.0.0/16"
	requestPool(t, h1, pool, "")
	if _, err := gateway(h1, pool, ""); err != nil {
		t.Fatal(err)
	}
	shim := alloc(t, h1, pool)
	release(t, h1, pool, netip.MustParseAddr("10.1.0.1"))
	releasePool(t, h1, pool)
	if _, ok := c.pool(pool); !ok {
		t.Fatal("the pool went while an address was still allocated")
	}
	release(t, h1, pool, shim)
	if _, ok := c.pool(pool); ok {
		t.Fatal("the pool outlived its last address")
	}
	if keys := c.keys("ipam/"); len(keys) != 0 {
		t.Fatalf("keys left: %v", keys)
	}
}
