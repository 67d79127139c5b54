package overlay

import (
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/podnet/podnet/overlay/wireguard"
)

// testKey is a fixed public key per name.
func testKey(name string) wireguard.Key {
	var k wireguard.Key
	copy(k[:], name)
	k[31] = 1
	return k
}

// keyed gives host h the WireGuard part of a record (key "" = none).
func (f *fixture) keyed(h, key string) *fixture {
	f.v.keys[h] = hostKey{set: true, valid: true, key: testKey(key), port: 51820}
	return f
}

func encLocal(nets ...Network) local {
	return local{host: "a", underlay: under, networks: nets, wg: &wgLocal{dev: "pnwg", key: testKey("a")}}
}

// peerLines renders peers as "host endpoint allowed,allowed", sorted.
func peerLines(d desired) []string {
	var out []string
	for h, p := range d.peers {
		var as []string
		for _, a := range p.AllowedIPs {
			as = append(as, a.String())
		}
		out = append(out, h+" "+p.Endpoint.String()+" "+strings.Join(as, ","))
	}
	slices.Sort(out)
	return out
}

// encryptedFixture: a (this host, encrypted) and b, f, g with keys; c in
// clear; d keyed but dead; e with a's own key; g with f's key.
func encryptedFixture() *fixture {
	f := newFixture().host("a", "10.250.0.1", true).
		host("b", "10.250.0.2", true).keyed("b", "b").
		host("c", "10.250.0.3", true).
		host("d", "10.250.0.4", false).keyed("d", "d").
		host("e", "10.250.0.5", true).keyed("e", "a").
		host("f", "10.250.0.6", true).keyed("f", "f").
		host("g", "10.250.0.7", true).keyed("g", "f").
		block(pool4, "10.1.0.0/26", "a").block(pool4, "10.1.0.64/26", "b").block(pool4, "10.1.0.128/26", "c").
		block(pool4, "10.1.0.192/26", "d").block(pool4, "10.1.1.0/26", "e").block(pool4, "10.1.1.64/26", "f").
		block(pool4, "10.1.1.128/26", "g").
		addr(pool4, "10.1.0.200", "b", "container") // b's address in dead d's block
	f.pool(pool6).setBlock(netip.MustParsePrefix("fd00:1::/122"), "b")
	return f
}

// With encryption every destination of a keyed, live host goes into
// pnwg (direct routing too), its peer allows exactly those, and hosts in
// clear, dead, with this host's key or a key another host has first get
// nothing; no VXLAN device holds an entry.
func TestEncryptedRoutesAndPeers(t *testing.T) {
	f := encryptedFixture()
	n := testNet(pool4, pool6)
	n.DirectRouting = true
	d := computeDesired(encLocal(n), f.v, func(msg string, args ...any) { t.Logf("warn: %s %v", msg, args) })
	want := []string{"10.1.0.200/32 dev pnwg", "10.1.0.64/26 dev pnwg", "10.1.1.64/26 dev pnwg", "fd00:1::/122 dev pnwg"}
	if got := routeLines(d); !slices.Equal(got, want) {
		t.Errorf("routes:\n got %v\nwant %v", got, want)
	}
	wantPeers := []string{"b 10.250.0.2:51820 10.1.0.64/26,10.1.0.200/32,fd00:1::/122", "f 10.250.0.6:51820 10.1.1.64/26"}
	if got := peerLines(d); !slices.Equal(got, wantPeers) {
		t.Errorf("peers:\n got %v\nwant %v", got, wantPeers)
	}
	for dev, ds := range d.devices {
		if len(ds.neigh)+len(ds.fdb) > 0 {
			t.Errorf("%s holds VXLAN entries with encryption: %v %v", dev, ds.neigh, ds.fdb)
		}
	}
}

// In clear, a host whose record carries a key (it takes only WireGuard)
// gets nothing: no clear traffic leaves for it.
func TestClearSkipsEncryptedHosts(t *testing.T) {
	f := encryptedFixture()
	d := compute(t, f, testNet(pool4))
	want := []string{"10.1.0.128/26 via 10.250.0.3 dev pnx42 onlink"}
	if got := routeLines(d); !slices.Equal(got, want) {
		t.Errorf("routes:\n got %v\nwant %v", got, want)
	}
	if len(d.peers) != 0 {
		t.Errorf("peers in clear: %v", d.peers)
	}
}

// Incremental passes keep the peers and routes a full computation would
// have, event by event: a block changing hands, a key changing, a host
// dying, another losing its key, an exception appearing.
func TestIncrementalPeersMatchFull(t *testing.T) {
	v := newView()
	l := encLocal(testNet(pool4))
	pv := newPoolView()
	pv.fromAddrs, pv.dirty = false, v.dirty
	v.pools[pool4] = pv
	key := func(name string) hostKey { return hostKey{set: true, valid: true, key: testKey(name), port: 51820} }
	v.setHost("a", netip.MustParseAddr("10.250.0.1"), key("a"))
	for _, h := range []string{"b", "c", "d"} {
		v.setHost(h, netip.MustParseAddr("10.250.0."+string('0'+rune(h[0]-'a'+1))), key(h))
		v.setAlive(h, false)
	}
	v.setAlive("a", false)
	pv.setBlock(netip.MustParsePrefix("10.1.0.64/26"), "b")
	pv.setBlock(netip.MustParsePrefix("10.1.0.128/26"), "c")
	m := newModel(l, v, nil)
	applied := m.full()
	reset := func() { v.dirty = newDirtySet(); pv.dirty = v.dirty }
	reset()
	steps := []struct {
		what string
		do   func()
	}{
		{"block moves from c to d", func() { pv.setBlock(netip.MustParsePrefix("10.1.0.128/26"), "d") }},
		{"b's key changes", func() { v.setHost("b", netip.MustParseAddr("10.250.0.2"), key("b2")) }},
		{"an exception of d in b's block", func() { pv.setExc(netip.MustParseAddr("10.1.0.70"), addrOwner{host: "d", container: true}) }},
		{"d dies", func() { v.delAlive("d") }},
		{"b loses its key (switched to clear)", func() { v.setHost("b", netip.MustParseAddr("10.250.0.2"), hostKey{}) }},
		{"d returns", func() { v.setAlive("d", false) }},
		{"c takes d's key", func() { v.setHost("c", netip.MustParseAddr("10.250.0.3"), key("d")) }},
		{"d is removed", func() { v.delHost("d") }},
	}
	for _, s := range steps {
		s.do()
		sp := m.plan(v.dirty, &applied)
		reset()
		applyPlanPure(&applied, sp)
		want := newModel(l, v, nil).full()
		if !slices.Equal(routeLines(applied), routeLines(want)) || !slices.Equal(peerLines(applied), peerLines(want)) {
			t.Fatalf("after %s:\n routes %v\n want   %v\n peers  %v\n want   %v", s.what, routeLines(applied), routeLines(want),
				peerLines(applied), peerLines(want))
		}
		t.Logf("after %s: peers %v", s.what, peerLines(applied))
	}
}

// applyPlanPure does to d what applyStep does to the kernel and applied.
func applyPlanPure(d *desired, sp stepPlan) {
	for _, e := range sp.routes {
		if e.ok {
			d.routes[e.dst] = e.want
		} else {
			delete(d.routes, e.dst)
		}
	}
	for _, e := range sp.peers {
		if e.ok {
			d.peers[e.host] = e.want
		} else {
			delete(d.peers, e.host)
		}
	}
}
