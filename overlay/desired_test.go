package overlay

import (
	"fmt"
	"net/netip"
	"reflect"
	"sort"
	"strings"
	"testing"
)

var (
	pool4 = netip.MustParsePrefix("10.1.0.0/16")
	pool6 = netip.MustParsePrefix("fd00:1::/64")
	under = Underlay{Addr: netip.MustParseAddr("10.250.0.1"), Prefix: netip.MustParsePrefix("10.250.0.0/24"), Dev: "eth0", MTU: 1500}
)

// fixture builds views the way the followers would.
type fixture struct {
	v *view
}

func newFixture() *fixture { return &fixture{v: newView()} }

// host registers h at underlay u, alive or not.
func (f *fixture) host(h, u string, alive bool) *fixture {
	f.v.hosts[h] = netip.MustParseAddr(u)
	if alive {
		f.v.alive[h] = true
	}
	return f
}

func (f *fixture) pool(p netip.Prefix) *poolView {
	if f.v.pools[p] == nil {
		f.v.pools[p] = newPoolView()
		f.v.pools[p].loaded = true
	}
	return f.v.pools[p]
}

func (f *fixture) block(p netip.Prefix, b, h string) *fixture {
	f.pool(p).setBlock(netip.MustParsePrefix(b), h)
	return f
}

func (f *fixture) addr(p netip.Prefix, a, h, kind string) *fixture {
	f.pool(p).addrs[netip.MustParseAddr(a)] = addrOwner{host: h, container: kind == "container"}
	return f
}

func testNet(pools ...netip.Prefix) Network {
	return Network{ID: "net1", VNI: 42, Bridge: "pn-net1", Pools: pools, MTU: 1450}
}

func compute(t *testing.T, f *fixture, nets ...Network) desired {
	t.Helper()
	return computeDesired(local{host: "a", underlay: under, networks: nets}, f.v, func(msg string, args ...any) {
		t.Logf("warn: %s %v", msg, args)
	})
}

// routeLines renders routes as iproute2-like lines, sorted.
func routeLines(d desired) []string {
	var out []string
	for _, r := range d.routes {
		s := r.dst.String()
		if r.via.IsValid() {
			s += " via " + r.via.String()
		}
		s += " dev " + r.dev
		if r.onlink {
			s += " onlink"
		}
		if r.src.IsValid() {
			s += " src " + r.src.String()
		}
		out = append(out, s)
	}
	sort.Strings(out)
	return out
}

func neighLines(d desired) []string {
	var out []string
	for dev, ds := range d.devices {
		for ip, mac := range ds.neigh {
			out = append(out, fmt.Sprintf("%s %s %s", dev, ip, mac))
		}
		for mac, dst := range ds.fdb {
			out = append(out, fmt.Sprintf("%s fdb %s %s", dev, mac, dst))
		}
	}
	sort.Strings(out)
	return out
}

func assertLines(t *testing.T, what string, got, want []string) {
	t.Helper()
	sort.Strings(want)
	if len(got) == 0 && len(want) == 0 {
		return
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s:\n got: %s\nwant: %s", what, strings.Join(got, "\n      "), strings.Join(want, "\n      "))
	}
}

func TestDesiredBlocksOfRemoteAliveHostsOnly(t *testing.T) {
	f := newFixture().
		host("a", "10.250.0.1", true). // this host
		host("b", "10.250.0.2", true).
		host("c", "10.250.0.3", false) // dead: record but no alive key
	f.v.alive["d"] = true // alive but never registered an underlay
	f.v.alive["e"] = true // alive, underlay unusable (the follower stores it invalid)
	f.block(pool4, "10.1.0.0/26", "a").
		block(pool4, "10.1.0.64/26", "b").
		block(pool4, "10.1.1.0/26", "b").
		block(pool4, "10.1.0.128/26", "c").
		block(pool4, "10.1.0.192/26", "d")
	f.v.hosts["e"] = netip.Addr{}
	f.block(pool4, "10.1.2.0/26", "e")
	// A pool of no registered network is ignored.
	f.block(netip.MustParsePrefix("10.9.0.0/16"), "10.9.0.0/26", "b")

	d := compute(t, f, testNet(pool4))
	assertLines(t, "routes", routeLines(d), []string{
		"10.1.0.64/26 via 10.250.0.2 dev pnx42 onlink",
		"10.1.1.0/26 via 10.250.0.2 dev pnx42 onlink",
	})
	mac := VTEPMAC("b", 42).String()
	assertLines(t, "neighbors", neighLines(d), []string{
		"pnx42 10.250.0.2 " + mac,
		"pnx42 fdb " + mac + " 10.250.0.2",
	})
}

func TestDesiredExceptions(t *testing.T) {
	f := newFixture().
		host("a", "10.250.0.1", true).
		host("b", "10.250.0.2", true).
		host("c", "10.250.0.3", true).
		host("dead", "10.250.0.9", false)
	f.block(pool4, "10.1.0.0/26", "a").
		block(pool4, "10.1.0.64/26", "b").
		block(pool4, "10.1.0.128/26", "c")
	f.addr(pool4, "10.1.0.66", "b", "container"). // b in its own block: no exception
							addr(pool4, "10.1.0.70", "c", "container").     // c borrowed from b's block
							addr(pool4, "10.1.3.5", "b", "container").      // --ip in an unclaimed block
							addr(pool4, "10.1.0.80", "a", "container").     // this host's container in b's block
							addr(pool4, "10.1.4.4", "a", "container").      // this host, unclaimed block: covered by the bridge
							addr(pool4, "10.1.0.10", "b", "container").     // b's container in this host's block
							addr(pool4, "10.1.0.140", "dead", "container"). // owner dead: nothing
							addr(pool4, "10.1.0.1", "", "gateway").         // anycast gateway
							addr(pool4, "10.1.0.129", "b", "aux")           // aux kinds are not exceptions

	d := compute(t, f, testNet(pool4))
	assertLines(t, "routes", routeLines(d), []string{
		"10.1.0.64/26 via 10.250.0.2 dev pnx42 onlink",
		"10.1.0.128/26 via 10.250.0.3 dev pnx42 onlink",
		"10.1.0.70/32 via 10.250.0.3 dev pnx42 onlink",
		"10.1.3.5/32 via 10.250.0.2 dev pnx42 onlink",
		"10.1.0.80/32 dev pn-net1",
		"10.1.0.10/32 via 10.250.0.2 dev pnx42 onlink",
	})
	if !d.routes[netip.MustParsePrefix("10.1.0.70/32")].exception {
		t.Error("10.1.0.70/32 not marked as an exception")
	}
}

func TestDesiredDirectRouting(t *testing.T) {
	f := newFixture().
		host("a", "10.250.0.1", true).
		host("near", "10.250.0.2", true).
		host("far", "10.99.0.5", true)
	f.block(pool4, "10.1.0.64/26", "near").
		block(pool4, "10.1.0.128/26", "far").
		addr(pool4, "10.1.0.130", "near", "container")
	n := testNet(pool4)
	n.DirectRouting = true
	d := compute(t, f, n)
	assertLines(t, "routes", routeLines(d), []string{
		"10.1.0.64/26 via 10.250.0.2 dev eth0",
		"10.1.0.128/26 via 10.99.0.5 dev pnx42 onlink",
		"10.1.0.130/32 via 10.250.0.2 dev eth0",
	})
	// Without direct routing everything goes through the VXLAN device.
	d = compute(t, f, testNet(pool4))
	assertLines(t, "routes", routeLines(d), []string{
		"10.1.0.64/26 via 10.250.0.2 dev pnx42 onlink",
		"10.1.0.128/26 via 10.99.0.5 dev pnx42 onlink",
		"10.1.0.130/32 via 10.250.0.2 dev pnx42 onlink",
	})
}

func TestDesiredDeadHostRemoved(t *testing.T) {
	f := newFixture().host("a", "10.250.0.1", true).host("b", "10.250.0.2", true)
	f.block(pool4, "10.1.0.64/26", "b").addr(pool4, "10.1.0.3", "b", "container")
	f.pool(pool4).refs["b"] = true
	d := compute(t, f, testNet(pool4))
	if len(d.routes) != 2 || len(d.devices["pnx42"].neigh) != 1 || len(d.devices["pnx42"].fdb) != 1 {
		t.Fatalf("alive host: routes %v, device %+v", routeLines(d), d.devices["pnx42"])
	}
	delete(f.v.alive, "b")
	d = compute(t, f, testNet(pool4))
	if len(d.routes) != 0 || len(d.devices["pnx42"].neigh) != 0 || len(d.devices["pnx42"].fdb) != 0 {
		t.Fatalf("dead host still programmed: routes %v, device %+v", routeLines(d), d.devices["pnx42"])
	}
	if _, ok := d.devices["pnx42"]; !ok {
		t.Fatal("the device itself must stay wanted")
	}
}

func TestDesiredNeighborsOnlyForHostsUsingTheNetwork(t *testing.T) {
	f := newFixture().host("a", "10.250.0.1", true).host("b", "10.250.0.2", true).
		host("other", "10.250.0.7", true).host("fresh", "10.250.0.8", true)
	f.block(pool4, "10.1.0.64/26", "b")
	f.pool(pool4).refs["fresh"] = true // created the network, no block yet
	d := compute(t, f, testNet(pool4))
	hosts := d.devices["pnx42"].hosts
	if len(hosts) != 2 || !hosts["b"].IsValid() || !hosts["fresh"].IsValid() {
		t.Fatalf("neighbor hosts = %v, want b and fresh", hosts)
	}
}

func TestDesiredIPv6(t *testing.T) {
	f := newFixture().host("a", "10.250.0.1", true).host("b", "10.250.0.2", true).host("c", "10.250.0.3", false)
	f.block(pool6, "fd00:1::40/122", "b").
		block(pool6, "fd00:1::/122", "a").
		addr(pool6, "fd00:1::41", "b", "container").
		addr(pool6, "fd00:1::5", "a", "container").
		addr(pool6, "fd00:1::42", "b", "container").
		addr(pool6, "fd00:1::1000", "b", "container"). // --ip outside b's blocks
		addr(pool6, "fd00:1::88", "c", "container")    // dead owner
	n := testNet(pool4, pool6)
	n.DirectRouting = true // never applies to IPv6 blocks
	d := compute(t, f, n)
	ll := linkLocal(VTEPMAC("b", 42)).String()
	assertLines(t, "routes", routeLines(d), []string{
		"fd00:1::40/122 via " + ll + " dev pnx42 onlink",
		"fd00:1::1000/128 via " + ll + " dev pnx42 onlink",
	})
	mac := VTEPMAC("b", 42).String()
	assertLines(t, "neighbors", neighLines(d), []string{
		"pnx42 10.250.0.2 " + mac,
		"pnx42 " + ll + " " + mac,
		"pnx42 fdb " + mac + " 10.250.0.2",
	})
}

func TestVTEPMAC(t *testing.T) {
	a := VTEPMAC("host-a", 42)
	if a.String() != VTEPMAC("host-a", 42).String() {
		t.Fatal("VTEPMAC is not deterministic")
	}
	if a[0] != 0x02 || a[1] != 0x71 {
		t.Fatalf("VTEPMAC %s: want a locally administered unicast 02:71:… address", a)
	}
	if a.String() == VTEPMAC("host-b", 42).String() || a.String() == VTEPMAC("host-a", 43).String() {
		t.Fatal("VTEPMAC ignores the host or the VNI")
	}
	// Pinned: every host of a cluster must compute the same MAC, across
	// podnet versions too.
	if got := VTEPMAC("h1", 1).String(); got != pinnedMAC {
		t.Fatalf(`VTEPMAC("h1", 1) = %s, want %s: changing the derivation breaks mixed-version clusters`, got, pinnedMAC)
	}
	if got := linkLocal(a).String(); !strings.HasPrefix(got, "fe80::71:") {
		t.Fatalf("link-local of %s = %s", a, got)
	}
}

// TestVTEPMACCollision finds two host names whose MACs collide on one VNI
// (a birthday search over 32 bits) and checks that only one is programmed.
func TestVTEPMACCollision(t *testing.T) {
	if testing.Short() {
		t.Skip("birthday search")
	}
	seen := map[string]string{}
	var x, y string
	for i := 0; x == ""; i++ {
		h := fmt.Sprintf("h%d", i)
		m := VTEPMAC(h, 7).String()
		if prev, ok := seen[m]; ok {
			x, y = prev, h
		}
		seen[m] = h
	}
	f := newFixture().host("a", "10.250.0.1", true).host(x, "10.250.0.2", true).host(y, "10.250.0.3", true)
	f.block(pool4, "10.1.0.64/26", x).block(pool4, "10.1.0.128/26", y)
	n := testNet(pool4)
	n.VNI = 7
	d := compute(t, f, n)
	if len(d.devices["pnx7"].fdb) != 1 || len(d.routes) != 1 {
		t.Fatalf("colliding hosts %s and %s: fdb %v routes %v", x, y, d.devices["pnx7"].fdb, routeLines(d))
	}
}

func TestClaimantWithMixedBlockSizes(t *testing.T) {
	pv := newPoolView()
	pv.setBlock(netip.MustParsePrefix("10.1.0.0/26"), "a")
	pv.setBlock(netip.MustParsePrefix("10.1.1.0/24"), "b")
	for addr, want := range map[string]string{"10.1.0.5": "a", "10.1.1.200": "b", "10.1.2.1": ""} {
		if got := pv.claimant(netip.MustParseAddr(addr)); got != want {
			t.Errorf("claimant(%s) = %q, want %q", addr, got, want)
		}
	}
	pv.delBlock(netip.MustParsePrefix("10.1.1.0/24"))
	if got := pv.claimant(netip.MustParseAddr("10.1.1.200")); got != "" || len(pv.bits) != 1 {
		t.Errorf("after delete: claimant %q, bits %v", got, pv.bits)
	}
}

const pinnedMAC = "02:71:98:37:71:fc"
