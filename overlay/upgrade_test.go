package overlay

import (
	"context"
	"errors"
	"fmt"
	"github.com/podnet/podnet/internal/testutil"
	"testing"
	"time"

	"github.com/podnet/podnet/store"
)

// TestRollingUpgrade runs three hosts of which host3 announces a podnetd
// older than exception records and writes addresses the old way (no
// exception record, and a release that leaves one behind). While it is
// alive the others follow the address records and route its --ip address;
// once it announces the new layout they repair the exception records,
// stop following addresses, and keep the same routes. The network's IPv6
// pool is followed the same way (address records only while the old
// podnetd is alive).
func TestRollingUpgrade(t *testing.T) {
	l := newLab(t, labOptions{hosts: 3, v6: true})
	h1, h2, h3 := l.hosts[0], l.hosts[1], l.hosts[2]
	ctx := context.Background()
	h1.container("")
	h2.container("")
	h3.container("")
	following := func(h *labHost) bool {
		h.ov.mu.Lock()
		defer h.ov.mu.Unlock()
		pv, pv6 := h.ov.view.pools[l.pool], h.ov.view.pools[l.pool6]
		if pv == nil || pv6 == nil || pv.fromAddrs != pv6.fromAddrs {
			return pv != nil && pv.fromAddrs // an odd answer: the caller's check fails
		}
		return pv.fromAddrs
	}
	// waitFollowing waits until host1 and host2 follow address records
	// (and are in legacy mode) or not.
	waitFollowing := func(want bool, timeout time.Duration) {
		t.Helper()
		for _, h := range []*labHost{h1, h2} {
			testutil.Eventually(t, timeout, fmt.Sprintf("%s following address records: %v", h.name, want), func() error {
				if got, legacy := following(h), h.ov.Stats().Legacy; got != want || legacy != want {
					return fmt.Errorf("following %v, legacy %v", got, legacy)
				}
				return nil
			})
		}
	}
	waitFollowing(false, 3*time.Second)

	// host3 restarts as an old podnetd.
	h3.setAlive(false)
	h3.oldLayout = true
	h3.setAlive(true)
	waitFollowing(true, 3*time.Second)
	// The old IPAM of host3 takes an address in host2's block without an
	// exception record, and "released" another one whose record it left.
	b2 := l.blocksOf(l.pool)["host2"][0]
	inB2 := b2.Addr().Next().Next().Next().Next().Next().Next().Next().Next()         // .8
	stale := b2.Addr().Next().Next().Next().Next().Next().Next().Next().Next().Next() // .9
	_, err := l.raw.Create(ctx, store.AddrKey(l.pool, inB2), store.Address{IP: inB2, Kind: store.AddrContainer, Host: "host3", Since: time.Now()})
	must(t, err)
	must(t, l.raw.Put(ctx, store.ExcKey(l.pool, stale), store.Exception{Host: "host3"}))
	route := func(*labHost) string {
		return fmt.Sprintf("%s/32 via %s dev %s onlink", inB2, h3.underlay.Addr, DeviceName(labVNI))
	}
	staleRoute := fmt.Sprintf("%s/32 via %s dev %s onlink", stale, h3.underlay.Addr, DeviceName(labVNI))
	for _, h := range []*labHost{h1, h2} {
		testutil.Eventually(t, 3*time.Second, h.name+" routes host3's address", func() error {
			rs := h.routes()
			if !contains(rs, route(h)) || contains(rs, staleRoute) {
				return fmt.Errorf("routes %v: want %q and not %q", rs, route(h), staleRoute)
			}
			return nil
		})
	}

	// host3 is upgraded: the others repair the records and stop following
	// addresses, keeping the route.
	h3.setAlive(false)
	h3.oldLayout = false
	h3.setAlive(true)
	waitFollowing(false, 15*time.Second)
	for _, h := range []*labHost{h1, h2} {
		rs := h.routes()
		if !contains(rs, route(h)) || contains(rs, staleRoute) {
			t.Fatalf("%s after the upgrade: routes %v: want %q and not %q", h.name, rs, route(h), staleRoute)
		}
	}
	var e store.Exception
	if _, err := l.raw.Get(ctx, store.ExcKey(l.pool, inB2), &e); err != nil || e.Host != "host3" {
		t.Fatalf("exception record of %s: %+v (%v), want owner host3", inB2, e, err)
	}
	if _, err := l.raw.Get(ctx, store.ExcKey(l.pool, stale), nil); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("stale exception record of %s: %v, want it deleted", stale, err)
	}

	// Now host3's (new) IPAM writes an exception record with its --ip
	// address, and the others route it from that record alone.
	cx := h3.container(b2.Addr().Next().Next().Next().Next().Next().Next().Next().Next().Next().Next().String()) // .10
	want := fmt.Sprintf("%s/32 via %s dev %s onlink", cx.addr, h3.underlay.Addr, DeviceName(labVNI))
	testutil.Eventually(t, 3*time.Second, "host1 routes host3's new --ip address", func() error {
		if !contains(h1.routes(), want) {
			return fmt.Errorf("no %q in %v", want, h1.routes())
		}
		return nil
	})
	if following(h1) {
		t.Fatal("host1 follows address records again")
	}
}
