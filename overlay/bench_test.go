package overlay

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"runtime"
	"testing"
	"time"

	"github.com/podnet/podnet/internal/link"
	"github.com/podnet/podnet/internal/testutil"
	"github.com/podnet/podnet/store"
	"github.com/podnet/podnet/store/storetest"
	"github.com/vishvananda/netlink"
)

// The scale scenario: this host plus 100 remote hosts, 4 blocks (/26) each
// in one /16 pool, every block half full (32 container addresses), and one
// borrowed address per remote host (100 exceptions).
const (
	scaleHosts  = 100
	scaleBlocks = 4
	scaleAddrs  = 32
)

var scalePool = netip.MustParsePrefix("10.64.0.0/16")

// scaleKVs renders the scenario as etcd would list it: hosts/, alive/ and
// ipam/<pool>/, values JSON-encoded exactly as RegisterHost, KeepAlive and
// the IPAM write them.
func scaleKVs() (hosts, alive, pool []store.KV) {
	put := func(out *[]store.KV, key string, v any) {
		b, _ := json.Marshal(v)
		*out = append(*out, store.KV{Key: key, Value: b})
	}
	now := time.Now()
	for i := 0; i <= scaleHosts; i++ {
		name := fmt.Sprintf("h%03d", i)
		u := netip.AddrFrom4([4]byte{10, 80, byte(1 + i/250), byte(1 + i%250)})
		put(&hosts, store.HostKey(name), store.Host{Name: name, Underlay: u, Since: now})
		put(&alive, store.AliveKey(name), store.HostAlive{Name: name, Started: now})
		put(&pool, store.PoolRefKey(scalePool, name), store.PoolRef{Host: name, Since: now})
		for j := range scaleBlocks {
			b := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 64, byte(i), byte(j * 64)}), 26)
			put(&pool, store.BlockKey(scalePool, b), store.Block{Host: name, Claimed: now})
			a := b.Addr()
			for range scaleAddrs {
				a = a.Next()
				put(&pool, store.AddrKey(scalePool, a), store.Address{IP: a, Kind: store.AddrContainer, Host: name, Since: now})
			}
		}
		// One address borrowed from the next host's first block.
		borrowed := netip.AddrFrom4([4]byte{10, 64, byte((i + 1) % (scaleHosts + 1)), 60})
		put(&pool, store.AddrKey(scalePool, borrowed), store.Address{IP: borrowed, Kind: store.AddrContainer, Host: name, Since: now})
	}
	return hosts, alive, pool
}

// scaleOverlay is h000's Overlay in a fresh namespace, its view fed
// through the followers from scaleKVs (no etcd is contacted).
func scaleOverlay(tb testing.TB) (*Overlay, Network, uint64) {
	testutil.SkipUnlessLinkType(tb, "vxlan")
	ns := testutil.NewNetNS(tb)
	must(tb, ns.NL.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "eth0"}, PeerName: "eth1"}))
	eth0, err := ns.NL.LinkByName("eth0")
	must(tb, err)
	must(tb, ns.NL.AddrAdd(eth0, mustAddr("10.80.1.1/16")))
	must(tb, ns.NL.LinkSetUp(eth0))
	br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: "pn-scale"}}
	must(tb, ns.NL.LinkAdd(br))
	must(tb, ns.NL.LinkSetUp(br))
	k := &link.Kernel{NL: ns.NL, ProcSys: "/proc/sys"}
	u, err := DetectUnderlay(k, "eth0")
	must(tb, err)
	st, err := store.Open(store.Config{Endpoints: []string{"127.0.0.1:1"}})
	must(tb, err)
	tb.Cleanup(func() { st.Close() })
	o, err := New(Config{Host: "h000", Store: st, Kernel: k, Logger: storetest.Logger(tb), Underlay: u})
	must(tb, err)
	n := Network{ID: "scale", VNI: 100, Bridge: "pn-scale", Pools: []netip.Prefix{scalePool}}
	if _, err := o.EnsureNetwork(n); err != nil {
		tb.Fatal(err)
	}
	hosts, alive, pool := scaleKVs()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	o.view.pools[scalePool] = newPoolView()
	hostsFollower{o}.Snapshot(hosts)
	aliveFollower{o}.Snapshot(alive)
	(&poolFollower{o: o, pool: scalePool, pv: o.view.pools[scalePool]}).Snapshot(pool)
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(hosts) // measured while the listing is still live:
	runtime.KeepAlive(alive) // the difference is the view alone
	runtime.KeepAlive(pool)
	return o, n, after.HeapAlloc - min(before.HeapAlloc, after.HeapAlloc)
}

// TestScale100Hosts programs 100 remote hosts × 4 blocks from scratch,
// resyncs with nothing to change, and logs the times and memory. Only the
// entry counts are asserted.
func TestScale100Hosts(t *testing.T) {
	o, _, viewBytes := scaleOverlay(t)
	start := time.Now()
	ch, err := o.sync(syncOptions{})
	must(t, err)
	scratch := time.Since(start)
	// 400 block routes; 100 exceptions to remote owners (h001..h099 borrowed
	// from their successor, h100 from this host); and this host's own
	// borrowed address (in h001's block) routed to its bridge.
	if ch.RoutesAdded != scaleHosts*scaleBlocks+scaleHosts+1 || ch.NeighAdded != scaleHosts || ch.FDBAdded != scaleHosts {
		t.Fatalf("from scratch: %+v", ch)
	}
	start = time.Now()
	ch, err = o.sync(syncOptions{full: true, gcOrphans: true})
	must(t, err)
	resync := time.Since(start)
	if ch.Total() != 0 {
		t.Fatalf("resync changed %+v", ch)
	}
	start = time.Now()
	_, err = o.sync(syncOptions{})
	must(t, err)
	event := time.Since(start)
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	t.Logf("100 hosts × 4 blocks (+%d addresses, %d exceptions): from scratch %v (%d routes, %d neighbors, %d fdb); "+
		"full resync with nothing to change %v; pass after an etcd event that changes nothing here %v; view %d KiB; heap in use %d MiB",
		scaleHosts*scaleBlocks*scaleAddrs, scaleHosts+1, scratch, scaleHosts*scaleBlocks+scaleHosts+1, scaleHosts, scaleHosts,
		resync, event, viewBytes/1024, ms.HeapInuse>>20)
}

func BenchmarkProgram100x4(b *testing.B) {
	o, n, viewBytes := scaleOverlay(b)
	b.Run("scratch", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			b.StopTimer()
			must(b, o.RemoveNetwork(n.ID)) // device gone: nothing left
			if _, err := o.EnsureNetwork(n); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
			if _, err := o.sync(syncOptions{}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("resync", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if ch, err := o.sync(syncOptions{full: true, gcOrphans: true}); err != nil || ch.Total() != 0 {
				b.Fatalf("%+v %v", ch, err)
			}
		}
	})
	b.Run("event-nochange", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if ch, err := o.sync(syncOptions{}); err != nil || ch.Total() != 0 {
				b.Fatalf("%+v %v", ch, err)
			}
		}
	})
	b.Run("desired", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			o.plan()
		}
	})
	b.ReportMetric(float64(viewBytes), "view-bytes")
}
