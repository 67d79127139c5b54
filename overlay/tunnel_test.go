package overlay

import (
	"net/netip"
	"slices"
	"testing"
)

// addrLines renders the addresses podnet puts on its devices, sorted.
func addrLines(d desired) []string {
	var out []string
	for dev, as := range d.addrs {
		for a := range as {
			out = append(out, dev+" "+a.String())
		}
	}
	slices.Sort(out)
	return out
}

// tunnelFixture: a (this host) with its tunnel addresses 10.1.0.5 and
// fd00:1::5 in its own blocks; b on the underlay subnet, far beyond it;
// b's block holding an address of a (a borrowed one: a /32 to a's
// bridge) and one of far's.
func tunnelFixture() *fixture {
	f := newFixture().host("a", "10.250.0.1", true).host("b", "10.250.0.2", true).host("far", "10.99.0.5", true).
		keyed("a", "a").keyed("b", "b").keyed("far", "far")
	f.block(pool4, "10.1.0.0/26", "a").block(pool4, "10.1.0.64/26", "b").block(pool4, "10.1.0.128/26", "far").
		addr(pool4, "10.1.0.5", "a", "container").
		addr(pool4, "10.1.0.70", "far", "container").
		addr(pool4, "10.1.0.80", "a", "container")
	f.block(pool6, "fd00:1::/122", "a").block(pool6, "fd00:1::40/122", "b").
		addr(pool6, "fd00:1::5", "a", "container").
		addr(pool6, "fd00:1::41", "b", "container")
	return f
}

func tunnelNet(direct bool) Network {
	n := testNet(pool4, pool6)
	n.DirectRouting = direct
	n.Tunnels = []netip.Addr{netip.MustParseAddr("10.1.0.5"), netip.MustParseAddr("fd00:1::5")}
	return n
}

// In clear, every route to another host that leaves by the VXLAN device
// has this host's tunnel address in the pool as its source (IPv6 too),
// and the addresses are on that device; a direct route keeps the
// underlay source (the other host routes the underlay back directly),
// and a route to this host's own bridge has none.
func TestTunnelSourceInClear(t *testing.T) {
	f := tunnelFixture()
	f.v.keys = map[string]hostKey{}
	d := compute(t, f, tunnelNet(true))
	assertLines(t, "routes", routeLines(d), []string{
		"10.1.0.64/26 via 10.250.0.2 dev eth0",
		"10.1.0.128/26 via 10.99.0.5 dev pnx42 onlink src 10.1.0.5",
		"10.1.0.70/32 via 10.99.0.5 dev pnx42 onlink src 10.1.0.5",
		"10.1.0.80/32 dev pn-net1",
		"fd00:1::40/122 via " + linkLocal(VTEPMAC("b", 42)).String() + " dev pnx42 onlink src fd00:1::5",
	})
	assertLines(t, "addresses", addrLines(d), []string{"pnx42 10.1.0.5", "pnx42 fd00:1::5"})

	// Without tunnel addresses (IPAM could not reserve them), routes have
	// no source and no address is wanted.
	n := tunnelNet(false)
	n.Tunnels = nil
	d = compute(t, f, n)
	for _, r := range d.routes {
		if r.src.IsValid() {
			t.Errorf("route %s has source %s without tunnel addresses", r.dst, r.src)
		}
	}
	if len(d.addrs) != 0 {
		t.Errorf("addresses without tunnel addresses: %v", addrLines(d))
	}
}

// With encryption every route into pnwg (direct routing too) has the
// tunnel address of its pool as source, and the addresses are on pnwg,
// none on the VXLAN device.
func TestTunnelSourceEncrypted(t *testing.T) {
	d := computeDesired(encLocal(tunnelNet(true)), tunnelFixture().v, func(msg string, args ...any) { t.Logf("warn: %s %v", msg, args) })
	assertLines(t, "routes", routeLines(d), []string{
		"10.1.0.64/26 dev pnwg src 10.1.0.5",
		"10.1.0.128/26 dev pnwg src 10.1.0.5",
		"10.1.0.70/32 dev pnwg src 10.1.0.5",
		"10.1.0.80/32 dev pn-net1",
		"fd00:1::40/122 dev pnwg src fd00:1::5",
	})
	assertLines(t, "addresses", addrLines(d), []string{"pnwg 10.1.0.5", "pnwg fd00:1::5"})
}

// The source is accepted at the other end: on every other host, the peer
// of this host allows its tunnel addresses (its blocks hold them, or,
// borrowed, they are routed to it as exceptions), and each of those
// hosts routes them back into pnwg, towards this host (the reply leaves
// encrypted, and a strict reverse-path check of the request passes).
func TestTunnelAllowedOnEveryPeer(t *testing.T) {
	f := tunnelFixture()
	// a's second tunnel address, borrowed inside b's block (its own
	// blocks were full): an exception everywhere else.
	f.addr(pool4, "10.1.0.90", "a", "container")
	tunnels := []netip.Addr{netip.MustParseAddr("10.1.0.5"), netip.MustParseAddr("10.1.0.90"), netip.MustParseAddr("fd00:1::5")}
	for _, self := range []string{"b", "far"} {
		l := encLocal(testNet(pool4, pool6))
		l.host, l.wg.key = self, testKey(self)
		l.underlay.Addr = f.v.hosts[self]
		d := computeDesired(l, f.v, func(msg string, args ...any) { t.Logf("%s: warn: %s %v", self, msg, args) })
		peer, ok := d.peers["a"]
		if !ok {
			t.Fatalf("%s has no peer for a: %v", self, peerLines(d))
		}
		for _, ta := range tunnels {
			if !slices.ContainsFunc(peer.AllowedIPs, func(p netip.Prefix) bool { return p.Contains(ta) }) {
				t.Errorf("%s: a's tunnel address %s outside a's allowed IPs %v", self, ta, peer.AllowedIPs)
			}
			r, ok := longestMatch(d, ta)
			if !ok || r.dev != "pnwg" || r.host != "a" {
				t.Errorf("%s: reply to a's tunnel address %s routed %+v (%v), want into pnwg towards a", self, ta, r, ok)
			}
		}
	}
}

// longestMatch is the route of d the kernel would pick for a.
func longestMatch(d desired, a netip.Addr) (route, bool) {
	var best route
	found := false
	for dst, r := range d.routes {
		if dst.Contains(a) && (!found || dst.Bits() > best.dst.Bits()) {
			best, found = r, true
		}
	}
	return best, found
}

// A change of the tunnel addresses is a change of the network: sources
// and addresses follow, and the incremental model computes the same
// sources as a full one.
func TestTunnelIncrementalMatchesFull(t *testing.T) {
	f := tunnelFixture()
	l := encLocal(tunnelNet(false))
	m := newModel(l, f.v, nil)
	full := m.full()
	for dst, want := range full.routes {
		got, ok := m.routeFor(dst)
		if !ok || got != want {
			t.Errorf("routeFor(%s) = %+v (%v), full computation %+v", dst, got, ok, want)
		}
	}
	if a, b := tunnelNet(false), testNet(pool4, pool6); sameNetwork(a, b) {
		t.Error("sameNetwork ignores the tunnel addresses")
	}
}
