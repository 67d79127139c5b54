package overlay

import (
	"encoding/json"
	"fmt"
	"math"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/podnet/podnet/store"
)

// The scale scenario: this host (h0000) plus N remote hosts, 4 blocks
// (/26) each in one /10 pool, every block half full (32 container
// addresses, which hosts keeping exception records never receive), and one
// borrowed address per host (an exception record): N+1 exceptions, one of
// them this host's (routed to its bridge).
const (
	scaleBlocks = 4
	scaleAddrs  = 32
)

var scalePool = netip.MustParsePrefix("100.64.0.0/10")

func scaleHost(i int) string { return fmt.Sprintf("h%04d", i) }

func scaleUnderlay(i int) netip.Addr {
	return netip.AddrFrom4([4]byte{10, 80, byte(1 + i/250), byte(1 + i%250)})
}

// scaleBlock is host i's block j.
func scaleBlock(i, j int) netip.Prefix {
	n := uint32(i*scaleBlocks+j) * 64
	base := scalePool.Addr().As4()
	v := uint32(base[0])<<24 | uint32(base[1])<<16 | uint32(base[2])<<8 | uint32(base[3]) + n
	return netip.PrefixFrom(netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}), 26)
}

// scaleBorrowed is the address host i borrowed: .60 of the next host's
// first block.
func scaleBorrowed(i, n int) netip.Addr {
	a := scaleBlock((i+1)%(n+1), 0).Addr()
	for range 60 {
		a = a.Next()
	}
	return a
}

// scaleListing is the scenario as etcd would list each followed prefix,
// values JSON-encoded exactly as RegisterHost, KeepAlive and the IPAM
// write them. addrs (the address records) is filled only when asked.
type scaleListing struct {
	hosts, alive, refs, blocks, exc, addrs []store.KV
}

func scaleKVs(n int, withAddrs bool) scaleListing {
	var l scaleListing
	put := func(out *[]store.KV, key string, v any) {
		b, _ := json.Marshal(v)
		*out = append(*out, store.KV{Key: key, Value: b, ModRev: int64(len(*out) + 1)})
	}
	now := time.Now()
	for i := 0; i <= n; i++ {
		name := scaleHost(i)
		put(&l.hosts, store.HostKey(name), store.Host{Name: name, Underlay: scaleUnderlay(i), Since: now})
		put(&l.alive, store.AliveKey(name), store.HostAlive{Name: name, Started: now, IPAMLayout: store.IPAMLayoutExceptions})
		put(&l.refs, store.PoolRefKey(scalePool, name), store.PoolRef{Host: name, Since: now})
		for j := range scaleBlocks {
			b := scaleBlock(i, j)
			put(&l.blocks, store.BlockKey(scalePool, b), store.Block{Host: name, Claimed: now})
			if !withAddrs {
				continue
			}
			a := b.Addr()
			for range scaleAddrs {
				a = a.Next()
				put(&l.addrs, store.AddrKey(scalePool, a), store.Address{IP: a, Kind: store.AddrContainer, Host: name, Since: now})
			}
		}
		borrowed := scaleBorrowed(i, n)
		put(&l.exc, store.ExcKey(scalePool, borrowed), store.Exception{Host: name})
		if withAddrs {
			put(&l.addrs, store.AddrKey(scalePool, borrowed), store.Address{IP: borrowed, Kind: store.AddrContainer, Host: name, Since: now})
		}
	}
	return l
}

// scaleOverlay is h0000's Overlay in a fresh namespace with n remote
// hosts, its view fed through the followers as Run feeds it (no etcd is
// contacted). It returns the heap the view took and the namespace's name.
func scaleOverlay(tb testing.TB, n int) (*Overlay, Network, uint64, string) {
	o, ns := nsOverlay(tb, scaleHost(0), "10.80.1.1/16", "pn-scale")
	n0 := Network{ID: "scale", VNI: 100, Bridge: "pn-scale", Pools: []netip.Prefix{scalePool}}
	if _, err := o.EnsureNetwork(n0); err != nil {
		tb.Fatal(err)
	}
	l := scaleKVs(n, false)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	o.feed(scalePool, l)
	o.mu.Lock()
	o.view.dirty = newDirtySet() // what the first pass clears: not part of the view
	o.view.pools[scalePool].dirty = o.view.dirty
	o.mu.Unlock()
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(l) // measured while the listing is still live: the difference is the view alone
	return o, n0, after.HeapAlloc - min(before.HeapAlloc, after.HeapAlloc), ns.Name
}

// feed hands a listing to the followers Run would start.
func (o *Overlay) feed(pool netip.Prefix, l scaleListing) {
	o.mu.Lock()
	pv := o.poolView(pool)
	o.mu.Unlock()
	hostsFollower{o}.Snapshot(l.hosts)
	aliveFollower{o}.Snapshot(l.alive)
	for kind, kvs := range map[string][]store.KV{kindRefs: l.refs, kindBlocks: l.blocks, kindExc: l.exc} {
		(&poolFollower{o: o, pool: pool, pv: pv, kind: kind}).Snapshot(kvs)
	}
	if l.addrs != nil {
		(&poolFollower{o: o, pool: pool, pv: pv, kind: kindAddrs}).Snapshot(l.addrs)
	}
}

// TestScale100Hosts programs 100 remote hosts × 4 blocks from scratch,
// resyncs with nothing to change, and logs the times and memory. Only the
// entry counts are asserted.
func TestScale100Hosts(t *testing.T) {
	const scaleHosts = 100
	o, _, viewBytes, _ := scaleOverlay(t, scaleHosts)
	start := time.Now()
	ch, err := o.sync(syncOptions{})
	must(t, err)
	scratch := time.Since(start)
	// 400 block routes; 100 exceptions to remote owners (h0001..h0099
	// borrowed from their successor, h0100 from this host); and this
	// host's own borrowed address (in h0001's block) routed to its bridge.
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
	t.Logf("100 hosts × 4 blocks (%d exceptions): from scratch %v (%d routes, %d neighbors, %d fdb); "+
		"full resync with nothing to change %v; full computation that changes nothing %v; view %d KiB; heap in use %d MiB",
		scaleHosts+1, scratch, scaleHosts*scaleBlocks+scaleHosts+1, scaleHosts, scaleHosts,
		resync, event, viewBytes/1024, ms.HeapInuse>>20)
}

// scaleSizes are the cluster sizes of BenchmarkScale; SCALE_HOSTS (a
// comma-separated list) overrides them.
func scaleSizes(tb testing.TB) []int {
	s := os.Getenv("SCALE_HOSTS")
	if s == "" {
		return []int{100, 1000, 5000}
	}
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 20 {
			tb.Fatalf("SCALE_HOSTS=%q: want numbers ≥ 20", s)
		}
		out = append(out, n)
	}
	return out
}

// BenchmarkScale measures, for 100, 1000 and 5000 remote hosts × 4
// blocks: programming from scratch, a full resync with nothing to change,
// the cost of each kind of etcd event (fed through the followers and
// programmed incrementally, as Run does), and memory.
func BenchmarkScale(b *testing.B) {
	for _, n := range scaleSizes(b) {
		b.Run(fmt.Sprintf("hosts=%d", n), func(b *testing.B) { benchScale(b, n) })
	}
}

func benchScale(b *testing.B, n int) {
	o, net0, viewBytes, nsName := scaleOverlay(b, n)
	if _, err := o.sync(syncOptions{}); err != nil {
		b.Fatal(err)
	}
	// From scratch, interleaved with the anchor: the same entries loaded
	// by iproute2 (ip -batch, bridge -batch: one netlink request per
	// entry, as the overlay makes) into the same emptied namespace.
	b.Run("scratch", func(b *testing.B) {
		o.kmu.Lock()
		batch := iproute2Batch(o.applied)
		o.kmu.Unlock()
		reset := func() {
			must(b, o.RemoveNetwork(net0.ID)) // device gone: nothing left
			if _, err := o.EnsureNetwork(net0); err != nil {
				b.Fatal(err)
			}
		}
		var ours, anchor, ratios []float64
		for i := 0; i < b.N; i++ {
			reset()
			start := time.Now()
			if _, err := o.sync(syncOptions{}); err != nil {
				b.Fatal(err)
			}
			t1 := time.Since(start)
			reset()
			start = time.Now()
			must(b, batch.load(nsName))
			t2 := time.Since(start)
			ours, anchor = append(ours, ms(t1)), append(anchor, ms(t2))
			ratios = append(ratios, ms(t1)/ms(t2))
		}
		reset()
		if _, err := o.sync(syncOptions{}); err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(median64(ours), "podnet-ms")
		b.ReportMetric(median64(anchor), "iproute2-ms")
		b.ReportMetric(median64(ratios), "ratio")
	})
	b.Run("resync", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if ch, err := o.sync(syncOptions{full: true, gcOrphans: true}); err != nil || ch.Total() != 0 {
				b.Fatalf("%+v %v", ch, err)
			}
		}
	})
	for _, ev := range scaleEvents(n) {
		b.Run("event-"+ev.name, func(b *testing.B) {
			b.ReportAllocs()
			before := o.Stats().Changes.Total()
			for b.Loop() {
				for _, half := range ev.pair {
					half(o)
					if _, done, err := o.step(); err != nil || !done {
						b.Fatalf("step: done %v, %v", done, err)
					}
				}
			}
			events := float64(2 * b.N)
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/events, "ns/event")
			b.ReportMetric(float64(o.Stats().Changes.Total()-before)/events, "kernel-ops/event")
		})
	}
	// Memory, reported as a sub-benchmark (a parent's metrics are not
	// printed): the view alone, the whole heap in use, the process RSS.
	b.Run("memory", func(b *testing.B) {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		b.ReportMetric(float64(viewBytes), "view-bytes")
		b.ReportMetric(float64(ms.HeapInuse), "heap-inuse-bytes")
		b.ReportMetric(float64(rssBytes()), "rss-bytes")
		b.ReportMetric(0, "ns/op")
		runtime.KeepAlive(o) // measured with the overlay, its view and what it applied live
	})
}

// rssBytes is this process's resident set (VmRSS), 0 if unknown.
func rssBytes() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb * 1024
		}
	}
	return 0
}

// scaleEvent is one kind of etcd event, as a pair that returns the view
// to where it was (so that every iteration does the same work).
type scaleEvent struct {
	name string
	pair [2]func(o *Overlay)
	// kernel is the number of kernel changes the pair makes.
	kernel int
}

// scaleEvents are the events of item 1 of the scale requirements, on
// hosts of the scenario with n remote hosts.
func scaleEvents(n int) []scaleEvent {
	pool := func(o *Overlay, kind string) *poolFollower {
		return &poolFollower{o: o, pool: scalePool, pv: o.view.pools[scalePool], kind: kind}
	}
	put := func(key string, v any) store.Event {
		b, _ := json.Marshal(v)
		return store.Event{Type: store.EventPut, Key: key, Value: b, ModRev: 1 << 40}
	}
	del := func(key string) store.Event { return store.Event{Type: store.EventDelete, Key: key, ModRev: 1 << 40} }
	pair := func(kind string, a, b store.Event) [2]func(*Overlay) {
		apply := func(e store.Event) func(*Overlay) {
			return func(o *Overlay) {
				switch kind {
				case "hosts":
					hostsFollower{o}.Changes([]store.Event{e})
				case "alive":
					aliveFollower{o}.Changes([]store.Event{e})
				default:
					pool(o, kind).Changes([]store.Event{e})
				}
			}
		}
		return [2]func(*Overlay){apply(a), apply(b)}
	}
	nth := func(p netip.Prefix, k int) netip.Addr {
		a := p.Addr()
		for range k {
			a = a.Next()
		}
		return a
	}
	own := nth(scaleBlock(5, 0), 10)          // in h0005's block, owned by h0005
	exc := nth(scaleBlock(5, 0), 11)          // in h0005's block, owned by h0007
	free := scaleBlock(n+1, 0)                // beyond every host's blocks
	leaver, mover := n/2, n/2+1               // remote hosts with 4 blocks and an exception each
	moved := netip.MustParseAddr("10.81.0.7") // outside the underlay subnet
	return []scaleEvent{
		// An address record inside its owner's block: what every container
		// start writes. Hosts keeping exception records do not receive it;
		// where it is received (IPv6 pools, an old podnetd alive) it changes
		// nothing. Fed here as a record that names the block's claimant.
		{"addr-own", pair(kindExc, put(store.ExcKey(scalePool, own), store.Exception{Host: scaleHost(5)}),
			del(store.ExcKey(scalePool, own))), 0},
		// A borrowed address or an --ip in another host's block: one /32.
		{"exception", pair(kindExc, put(store.ExcKey(scalePool, exc), store.Exception{Host: scaleHost(7)}),
			del(store.ExcKey(scalePool, exc))), 2},
		// A block claimed, then released: one route.
		{"block", pair(kindBlocks, put(store.BlockKey(scalePool, free), store.Block{Host: scaleHost(9)}),
			del(store.BlockKey(scalePool, free))), 2},
		// A host leaving (liveness lease gone) and arriving again: its
		// neighbor, FDB entry, 4 block routes and its exception.
		{"host-leave-arrive", pair("alive", del(store.AliveKey(scaleHost(leaver))),
			put(store.AliveKey(scaleHost(leaver)), store.HostAlive{Name: scaleHost(leaver), IPAMLayout: store.IPAMLayoutExceptions})), 14},
		// A host changing its underlay address and back: its 5 routes are
		// replaced, its neighbor moves (added, old one deleted), its FDB
		// entry is replaced.
		{"host-move", pair("hosts", put(store.HostKey(scaleHost(mover)), store.Host{Name: scaleHost(mover), Underlay: moved}),
			put(store.HostKey(scaleHost(mover)), store.Host{Name: scaleHost(mover), Underlay: scaleUnderlay(mover)})), 16},
	}
}

func ms(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e6 }

func median64(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s) == 0 {
		return math.NaN()
	}
	return s[len(s)/2]
}

// iproute2 is a state rendered for ip -batch and bridge -batch.
type iproute2 struct{ ip, bridge string }

// iproute2Batch renders d as the commands an operator would load by hand:
// neighbors and FDB entries, then routes.
func iproute2Batch(d *desired) iproute2 {
	var ip, br strings.Builder
	for dev, ds := range d.devices {
		for a, mac := range ds.neigh {
			fmt.Fprintf(&ip, "neigh replace %s lladdr %s dev %s nud permanent\n", a, mac, dev)
		}
		for mac, dst := range ds.fdb {
			fmt.Fprintf(&br, "fdb append %s dev %s dst %s self permanent\n", mac, dev, dst)
		}
	}
	for _, r := range d.routes {
		if r.via.IsValid() {
			onlink := ""
			if r.onlink {
				onlink = " onlink"
			}
			fmt.Fprintf(&ip, "route replace %s via %s dev %s%s proto %d\n", r.dst, r.via, r.dev, onlink, RouteProtocol)
		} else {
			fmt.Fprintf(&ip, "route replace %s dev %s proto %d scope link\n", r.dst, r.dev, RouteProtocol)
		}
	}
	return iproute2{ip: ip.String(), bridge: br.String()}
}

// load runs bridge -batch then ip -batch in the named namespace.
func (b iproute2) load(ns string) error {
	for _, c := range []struct{ tool, in string }{{"bridge", b.bridge}, {"ip", b.ip}} {
		cmd := exec.Command(c.tool, "-n", ns, "-batch", "-")
		cmd.Stdin = strings.NewReader(c.in)
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("%s -batch: %w: %s", c.tool, err, out)
		}
	}
	return nil
}
