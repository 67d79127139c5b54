package overlay

import (
	"testing"
	"time"

	"github.com/podnet/podnet/internal/link"
	"github.com/podnet/podnet/internal/metrics"
	"github.com/podnet/podnet/internal/metrics/metricstest"
	"github.com/podnet/podnet/internal/testutil"
	"github.com/podnet/podnet/overlay/wireguard"
	"github.com/podnet/podnet/store"
	"github.com/podnet/podnet/store/storetest"
	"github.com/vishvananda/netlink"
)

// TestDesiredRemoteCounts: remote hosts count once across networks; block
// routes count, single-address exceptions and this host's blocks do not.
func TestDesiredRemoteCounts(t *testing.T) {
	f := newFixture().host("a", "10.250.0.1", true).host("b", "10.250.0.2", true).host("c", "10.250.0.3", true)
	f.block(pool4, "10.1.0.0/26", "a").block(pool4, "10.1.0.64/26", "b").block(pool4, "10.1.0.128/26", "c").
		block(pool4, "10.1.0.192/26", "c").
		addr(pool4, "10.1.0.70", "c", "container") // c's address in b's block: an exception route
	other := Network{ID: "net2", VNI: 43, Bridge: "pn-net2", Pools: nil, MTU: 1450}
	d := compute(t, f, testNet(pool4), other)
	hosts, blocks := d.remote()
	if hosts != 2 || blocks != 3 {
		t.Fatalf("remote() = %d hosts, %d blocks; want 2 hosts (b, c), 3 blocks", hosts, blocks)
	}
}

// TestWireGuardPeersMetric: with encryption, a clean pass sets
// podnet_wireguard_peers to the remote hosts it left programmed (each one
// a peer), and a failed pass (no counts) leaves it alone.
func TestWireGuardPeersMetric(t *testing.T) {
	// The pass only asks whether there is a device: this kernel may have
	// no WireGuard (the guest's tests program a real one).
	p := &program{o: &Overlay{wg: new(wireguard.Device)}}
	p.observe(true, time.Now(), &remoteCounts{hosts: 2, blocks: 5})
	if v := peersMetric(t); v != 2 {
		t.Fatalf("podnet_wireguard_peers = %v after a clean pass with 2 peers", v)
	}
	p.observe(false, time.Now(), nil)
	if v := peersMetric(t); v != 2 {
		t.Fatalf("podnet_wireguard_peers = %v after a failed pass, want 2 still", v)
	}
}

// peersMetric reads podnet_wireguard_peers as a scrape would.
func peersMetric(t *testing.T) float64 {
	t.Helper()
	mfs, err := metrics.NewRegistry("t").Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "podnet_wireguard_peers" {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatal("podnet_wireguard_peers not exported")
	return 0
}

// TestSyncMetrics programs a namespace and checks that passes are counted
// by kind, changes by object, and the remote gauges follow a host's death.
func TestSyncMetrics(t *testing.T) {
	o, _, k := offlineOverlay(t)
	f := newFixture().host("a", "10.250.0.1", true).host("b", "10.250.0.2", true).host("c", "10.250.0.3", true)
	f.block(pool4, "10.1.0.0/26", "a").block(pool4, "10.1.0.64/26", "b").block(pool4, "10.1.0.128/26", "c")
	n := testNet(pool4)
	n.Bridge = ""
	_, err := o.EnsureNetwork(n)
	must(t, err)
	o.view = f.v

	passes := func(kind string) float64 { return metricstest.Value(metrics.OverlaySyncs.WithLabelValues(kind)) }
	routesAdded := func() float64 {
		return metricstest.Value(metrics.OverlayChanges.WithLabelValues("route", "add"))
	}
	full0, inc0, same0, routes0 := passes(passFull), passes(passIncremental), passes(passUnchanged), routesAdded()
	lat0 := metricstest.SampleCount(metrics.OverlaySyncDuration.WithLabelValues(passFull))

	_, err = o.sync(syncOptions{full: true})
	must(t, err)
	if passes(passFull) != full0+1 || metricstest.SampleCount(metrics.OverlaySyncDuration.WithLabelValues(passFull)) != lat0+1 {
		t.Fatal("the full pass was not counted or timed")
	}
	if d := routesAdded() - routes0; d != 2 {
		t.Errorf("route additions +%v, want +2", d)
	}
	if h, b := metricstest.Value(metrics.OverlayRemoteHosts), metricstest.Value(metrics.OverlayRemoteBlocks); h != 2 || b != 2 {
		t.Errorf("remote hosts %v, blocks %v; want 2 and 2", h, b)
	}
	_, err = o.sync(syncOptions{})
	must(t, err)
	if passes(passUnchanged) != same0+1 {
		t.Error("a pass with nothing to do was not counted as unchanged")
	}
	delete(f.v.alive, "c")
	_, err = o.sync(syncOptions{})
	must(t, err)
	if passes(passIncremental) != inc0+1 {
		t.Error("the pass after a host died was not counted as incremental")
	}
	if h, b := metricstest.Value(metrics.OverlayRemoteHosts), metricstest.Value(metrics.OverlayRemoteBlocks); h != 1 || b != 1 {
		t.Errorf("after c died: remote hosts %v, blocks %v; want 1 and 1", h, b)
	}
	_, err = Cleanup(k)
	must(t, err)
}

// offlineOverlay returns an overlay for host "a" that programs a fresh
// namespace whose eth0 (10.250.0.1/24) is the underlay. Its store points
// nowhere: tests set the view themselves and call sync.
func offlineOverlay(t *testing.T) (*Overlay, *testutil.NetNS, *link.Kernel) {
	t.Helper()
	testutil.SkipUnlessLinkType(t, "vxlan")
	ns := testutil.NewNetNS(t)
	must(t, ns.NL.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "eth0"}, PeerName: "eth1"}))
	eth0, err := ns.NL.LinkByName("eth0")
	must(t, err)
	must(t, ns.NL.AddrAdd(eth0, mustAddr("10.250.0.1/24")))
	must(t, ns.NL.LinkSetUp(eth0))
	k := &link.Kernel{NL: ns.NL, ProcSys: "/proc/sys"}
	u, err := DetectUnderlay(k, "eth0")
	must(t, err)
	st, err := store.Open(store.Config{Endpoints: []string{"127.0.0.1:1"}})
	must(t, err)
	t.Cleanup(func() { _ = st.Close() })
	sysctl := func(key, value string) error { return nil } // IPv6 is on in a fresh namespace
	o, err := New(Config{Host: "a", Store: st, Kernel: k, Logger: storetest.Logger(t), Underlay: u, Sysctl: sysctl})
	must(t, err)
	return o, ns, k
}
