package overlay

import (
	"net/netip"
	"testing"

	"github.com/vishvananda/netlink"
)

// TestSyncEveryRouteKindIsStable programs one of each kind of entry — a
// VXLAN block route, a direct route, a /32 to a remote owner, a /32 to the
// bridge, an IPv6 block via a link-local next hop, a /128 to the bridge —
// and removes the proxy NDP entries an older podnetd left on the bridge,
// then checks that a full pass finds nothing to change
// (the kernel's read-back matches what was written), that drift is
// repaired, that entries of a host that died are removed, and that
// Cleanup removes everything.
func TestSyncEveryRouteKindIsStable(t *testing.T) {
	o, ns, k := offlineOverlay(t)
	must(t, ns.NL.LinkAdd(&netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: "pn-net1"}}))
	br, err := ns.NL.LinkByName("pn-net1")
	must(t, err)
	must(t, ns.NL.LinkSetUp(br))
	// What a podnetd before the NDP responders left: a proxy entry per
	// remote IPv6 container address.
	must(t, ns.NL.NeighSet(&netlink.Neigh{LinkIndex: br.Attrs().Index, Family: netlink.FAMILY_V6, Flags: netlink.NTF_PROXY,
		IP: netip.MustParseAddr("fd00:1::41").AsSlice()}))

	f := newFixture().host("a", "10.250.0.1", true).host("b", "10.250.0.2", true).host("far", "10.99.0.5", true)
	f.block(pool4, "10.1.0.0/26", "a").block(pool4, "10.1.0.64/26", "b").block(pool4, "10.1.0.128/26", "far").
		addr(pool4, "10.1.0.70", "far", "container"). // remote owner in b's block
		addr(pool4, "10.1.0.80", "a", "container")    // this host in b's block: dev bridge
	f.block(pool6, "fd00:1::40/122", "b").
		addr(pool6, "fd00:1::41", "b", "container").
		addr(pool6, "fd00:1::48", "a", "container") // /128 to the bridge
	n := testNet(pool4, pool6)
	n.DirectRouting = true // b is inside the underlay subnet, far is not
	_, err = o.EnsureNetwork(n)
	must(t, err)
	o.view = f.v

	ch, err := o.sync(syncOptions{full: true})
	must(t, err)
	if ch.RoutesAdded != 6 || ch.NeighAdded != 4 || ch.FDBAdded != 2 || ch.ProxyDeleted != 1 {
		t.Fatalf("first pass: %+v", ch)
	}
	if ch, err = o.sync(syncOptions{full: true}); err != nil || ch.Total() != 0 {
		t.Fatalf("second full pass changed %+v (%v): the read-back differs from what was written", ch, err)
	}

	// Drift: a route deleted and a neighbor changed behind our back.
	rs, err := nlKernel{h: ns.NL}.listRoutes()
	must(t, err)
	must(t, ns.NL.RouteDel(&rs[0]))
	dev, err := ns.NL.LinkByName(DeviceName(n.VNI))
	must(t, err)
	must(t, nlKernel{h: ns.NL}.setNeigh(dev.Attrs().Index, netip.MustParseAddr("10.250.0.2"), VTEPMAC("zzz", 1)))
	if ch, _ := o.sync(syncOptions{}); ch.Total() != 0 {
		t.Fatalf("a pass with an unchanged view read the kernel: %+v", ch)
	}
	if ch, err = o.sync(syncOptions{full: true}); err != nil || ch.RoutesAdded != 1 || ch.NeighAdded != 1 || ch.Total() != 2 {
		t.Fatalf("repair pass: %+v (%v)", ch, err)
	}

	// b dies: its neighbors (IPv4 and link-local), FDB entry and block
	// routes go; far's entries stay.
	delete(f.v.alive, "b")
	ch, err = o.sync(syncOptions{})
	must(t, err)
	if ch.RoutesDeleted != 2 || ch.NeighDeleted != 2 || ch.FDBDeleted != 1 || ch.Total() != 5 {
		t.Fatalf("host death: %+v", ch)
	}

	removed, err := Cleanup(k)
	must(t, err)
	if len(removed) != 1 || removed[0] != DeviceName(n.VNI) {
		t.Fatalf("Cleanup removed %v", removed)
	}
	if rs, _ := (nlKernel{h: ns.NL}).listRoutes(); len(rs) != 0 {
		t.Fatalf("routes after Cleanup: %v", rs)
	}
}

// TestDesiredSize counts the kernel entries a full pass lists and keeps:
// routes, neighbors and FDB entries of every device.
func TestDesiredSize(t *testing.T) {
	d := desired{routes: map[netip.Prefix]route{netip.MustParsePrefix("10.1.0.0/26"): {}, netip.MustParsePrefix("10.1.0.64/26"): {}},
		devices: map[string]*devState{
			"pnx1": {neigh: map[netip.Addr]string{netip.MustParseAddr("10.9.0.1"): "m"}, fdb: map[string]netip.Addr{"m": netip.MustParseAddr("10.9.0.1")}},
			"pnx2": {neigh: map[netip.Addr]string{}, fdb: map[string]netip.Addr{}},
		}}
	if got := d.size(); got != 4 {
		t.Fatalf("size = %d, want 4 (2 routes, 1 neighbor, 1 FDB entry)", got)
	}
}
