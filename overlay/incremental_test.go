package overlay

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"strings"
	"testing"

	"github.com/podnet/podnet/internal/link"
	"github.com/podnet/podnet/internal/testutil"
	"github.com/podnet/podnet/store"
	"github.com/podnet/podnet/store/storetest"
	"github.com/vishvananda/netlink"
)

// fakeEtcd holds keys as etcd would and hands every change to the
// followers an Overlay's Run would have started, as watch events.
type fakeEtcd struct {
	t    *testing.T
	o    *Overlay
	kv   map[string][]byte
	rev  int64
	pool map[netip.Prefix]map[string]*poolFollower // pool → kind → follower
}

func newFakeEtcd(t *testing.T, o *Overlay, pools ...netip.Prefix) *fakeEtcd {
	e := &fakeEtcd{t: t, o: o, kv: map[string][]byte{}, pool: map[netip.Prefix]map[string]*poolFollower{}}
	hostsFollower{o}.Snapshot(nil)
	aliveFollower{o}.Snapshot(nil)
	for _, p := range pools {
		e.follow(p, kindRefs, kindBlocks, kindExc)
		if p.Addr().Is6() {
			e.follow(p, kindAddrs)
		}
	}
	return e
}

// follow starts followers of the given kinds of p's keys, each with a
// snapshot of what the fake holds.
func (e *fakeEtcd) follow(p netip.Prefix, kinds ...string) {
	e.o.mu.Lock()
	pv := e.o.poolView(p)
	e.o.mu.Unlock()
	if e.pool[p] == nil {
		e.pool[p] = map[string]*poolFollower{}
	}
	for _, kind := range kinds {
		f := &poolFollower{o: e.o, pool: p, pv: pv, kind: kind}
		e.pool[p][kind] = f
		prefix := store.IPAMPrefix(p) + kind + "/"
		var kvs []store.KV
		for k, v := range e.kv {
			if strings.HasPrefix(k, prefix) {
				kvs = append(kvs, store.KV{Key: k, Value: v, ModRev: e.rev})
			}
		}
		f.Snapshot(kvs)
	}
}

// unfollowAddrs is what Run does when a pool's address records are no
// longer needed.
func (e *fakeEtcd) unfollowAddrs(p netip.Prefix) {
	e.o.mu.Lock()
	defer e.o.mu.Unlock()
	e.pool[p][kindAddrs].stop()
	delete(e.pool[p], kindAddrs)
	pv := e.o.view.pools[p]
	delete(pv.scopes, kindAddrs)
	pv.setSource(false)
	clear(pv.addrs)
}

func (e *fakeEtcd) put(key string, v any) {
	b, err := json.Marshal(v)
	must(e.t, err)
	e.kv[key] = b
	e.deliver(store.Event{Type: store.EventPut, Key: key, Value: b})
}

func (e *fakeEtcd) del(key string) {
	if _, ok := e.kv[key]; !ok {
		return
	}
	delete(e.kv, key)
	e.deliver(store.Event{Type: store.EventDelete, Key: key})
}

func (e *fakeEtcd) deliver(ev store.Event) {
	e.rev++
	ev.ModRev = e.rev
	evs := []store.Event{ev}
	switch {
	case strings.HasPrefix(ev.Key, store.HostsPrefix):
		hostsFollower{e.o}.Changes(evs)
	case strings.HasPrefix(ev.Key, store.AlivePrefix):
		aliveFollower{e.o}.Changes(evs)
	default:
		for p, fs := range e.pool {
			for kind, f := range fs {
				if strings.HasPrefix(ev.Key, store.IPAMPrefix(p)+kind+"/") {
					f.Changes(evs)
				}
			}
		}
	}
}

// nsOverlay is host's Overlay in a fresh namespace whose underlay is eth0
// (a veth) at cidr, with up bridges of the given names; its store is never
// contacted (tests feed the followers themselves).
func nsOverlay(tb testing.TB, host, cidr string, bridges ...string) (*Overlay, *testutil.NetNS) {
	testutil.SkipUnlessLinkType(tb, "vxlan")
	ns := testutil.NewNetNS(tb)
	must(tb, ns.NL.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "eth0"}, PeerName: "eth1"}))
	eth0, err := ns.NL.LinkByName("eth0")
	must(tb, err)
	must(tb, ns.NL.AddrAdd(eth0, mustAddr(cidr)))
	must(tb, ns.NL.LinkSetUp(eth0))
	for _, b := range bridges {
		must(tb, ns.NL.LinkAdd(&netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: b}}))
		br, err := ns.NL.LinkByName(b)
		must(tb, err)
		must(tb, ns.NL.LinkSetUp(br))
	}
	k := &link.Kernel{NL: ns.NL, ProcSys: "/proc/sys"}
	u, err := DetectUnderlay(k, "eth0")
	must(tb, err)
	st, err := store.Open(store.Config{Endpoints: []string{"127.0.0.1:1"}}) // never contacted
	must(tb, err)
	tb.Cleanup(func() { st.Close() })
	o, err := New(Config{Host: host, Store: st, Kernel: k, Logger: storetest.Logger(tb), Underlay: u,
		Sysctl: func(string, string) error { return nil }})
	must(tb, err)
	return o, ns
}

// incrementalOverlay is host "a" (underlay 10.250.0.1/24) with the given
// networks registered.
func incrementalOverlay(t *testing.T, nets ...Network) *Overlay {
	var bridges []string
	for _, n := range nets {
		bridges = append(bridges, n.Bridge)
	}
	o, _ := nsOverlay(t, "a", "10.250.0.1/24", bridges...)
	for _, n := range nets {
		_, err := o.EnsureNetwork(n)
		must(t, err)
	}
	return o
}

// checkApplied fails unless what the incremental passes applied is what a
// full computation of the current view wants.
func checkApplied(t *testing.T, o *Overlay, what string) {
	t.Helper()
	o.kmu.Lock()
	defer o.kmu.Unlock()
	o.mu.Lock()
	nets := make([]Network, 0, len(o.networks))
	for _, n := range o.networks {
		nets = append(nets, n)
	}
	want := computeDesired(local{host: o.host, underlay: o.underlay, networks: nets}, o.view, nil)
	o.mu.Unlock()
	if o.applied == nil {
		t.Fatalf("%s: nothing applied (a pass failed)", what)
	}
	if !o.applied.equal(want) {
		t.Fatalf("%s: incremental state differs from a full computation:\n routes %s\n neigh %s\nwant routes %s\n neigh %s",
			what, strings.Join(routeLines(*o.applied), "; "), strings.Join(neighLines(*o.applied), "; "),
			strings.Join(routeLines(want), "; "), strings.Join(neighLines(want), "; "))
	}
	// The counts the metrics show, moved event by event, are what a walk
	// of everything counts.
	if hosts, blocks := want.remote(); o.remote != (remoteCounts{hosts: hosts, blocks: blocks}) {
		t.Fatalf("%s: remote counts moved to %+v, a walk counts %d hosts, %d blocks", what, o.remote, hosts, blocks)
	}
}

// collidingHosts finds two host names whose VTEP MACs collide on vni.
func collidingHosts(vni int) (string, string) {
	seen := map[string]string{}
	for i := 0; ; i++ {
		h := fmt.Sprintf("c%d", i)
		m := VTEPMAC(h, vni).String()
		if prev, ok := seen[m]; ok {
			return prev, h
		}
		seen[m] = h
	}
}

// TestIncrementalMatchesFull drives an overlay with random etcd events of
// every kind — hosts moving, dying and returning, blocks claimed and
// released, exceptions, references, IPv6 addresses, colliding VTEP MACs,
// the switch between exception and address records — programming each
// batch incrementally, and checks after every batch that the result is
// exactly what a full computation wants, and regularly that a full pass
// against the kernel finds nothing to change.
func TestIncrementalMatchesFull(t *testing.T) {
	for seed := range uint64(4) {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) { incrementalWalk(t, seed) })
	}
}

func incrementalWalk(t *testing.T, seed uint64) {
	n1 := Network{ID: "net1", VNI: 42, Bridge: "pn-net1", Pools: []netip.Prefix{pool4, pool6}, MTU: 1450, DirectRouting: true}
	p2 := netip.MustParsePrefix("10.2.0.0/16")
	n2 := Network{ID: "net2", VNI: 43, Bridge: "pn-net2", Pools: []netip.Prefix{p2}, MTU: 1450}
	o := incrementalOverlay(t, n1, n2)
	e := newFakeEtcd(t, o, pool4, pool6, p2)
	x, y := collidingHosts(42)
	hosts := []string{"a", "b", "c", "d", "e", "f", x, y}
	underlays := []string{"10.250.0.2", "10.250.0.3", "10.99.0.4", "10.99.0.5", "10.250.0.6", "10.99.0.7", "10.250.0.1", ""}
	blocks := map[netip.Prefix][]netip.Prefix{}
	for i := range 6 {
		blocks[pool4] = append(blocks[pool4], netip.MustParsePrefix(fmt.Sprintf("10.1.%d.0/26", i)))
		blocks[pool6] = append(blocks[pool6], netip.MustParsePrefix(fmt.Sprintf("fd00:1::%x/122", i*64)))
		blocks[p2] = append(blocks[p2], netip.MustParsePrefix(fmt.Sprintf("10.2.%d.0/26", i)))
	}
	addr := func(p netip.Prefix, rng *rand.Rand) netip.Addr {
		b := blocks[p][rng.IntN(len(blocks[p])+1)%len(blocks[p])]
		if rng.IntN(6) == 0 { // outside every block of the list
			b = netip.PrefixFrom(b.Addr(), b.Bits()-2).Masked()
			b = netip.PrefixFrom(b.Addr().Next().Next(), b.Addr().BitLen())
			if b.Addr().Is4() {
				return netip.AddrFrom4([4]byte{b.Addr().As4()[0], b.Addr().As4()[1], 200, byte(rng.IntN(8) + 1)})
			}
		}
		a := b.Addr()
		for range 1 + rng.IntN(6) {
			a = a.Next()
		}
		return a
	}
	pick := func(rng *rand.Rand, s []string) string { return s[rng.IntN(len(s))] }
	// "" is a host without an underlay (no multi-host networking).
	underlayOf := func(s string) netip.Addr {
		if s == "" {
			return netip.Addr{}
		}
		return netip.MustParseAddr(s)
	}
	pools := []netip.Prefix{pool4, pool6, p2}
	// A first state, programmed by a full pass, as at start.
	rng := rand.New(rand.NewPCG(seed, 2))
	for _, h := range hosts {
		e.put(store.HostKey(h), store.Host{Name: h, Underlay: underlayOf(underlays[rng.IntN(6)])})
		e.put(store.AliveKey(h), store.HostAlive{Name: h, IPAMLayout: store.IPAMLayoutExceptions})
	}
	e.put(store.HostKey("a"), store.Host{Name: "a", Underlay: netip.MustParseAddr("10.250.0.1")})
	_, err := o.sync(syncOptions{})
	must(t, err)
	checkApplied(t, o, "first pass")

	addrsFollowed := false
	for i := range 600 {
		var did []string
		for range 1 + rng.IntN(3) {
			h := pick(rng, hosts)
			p := pools[rng.IntN(len(pools))]
			switch op := rng.IntN(10); op {
			case 0:
				u := pick(rng, underlays)
				e.put(store.HostKey(h), store.Host{Name: h, Underlay: underlayOf(u)})
				did = append(did, "host "+h+" at "+u)
			case 1:
				if rng.IntN(2) == 0 {
					e.del(store.AliveKey(h))
					did = append(did, h+" dies")
				} else {
					e.put(store.AliveKey(h), store.HostAlive{Name: h, IPAMLayout: store.IPAMLayoutExceptions})
					did = append(did, h+" lives")
				}
			case 2, 3:
				b := blocks[p][rng.IntN(len(blocks[p]))]
				if rng.IntN(3) == 0 {
					e.del(store.BlockKey(p, b))
					did = append(did, "release "+b.String())
				} else {
					e.put(store.BlockKey(p, b), store.Block{Host: h})
					did = append(did, h+" claims "+b.String())
				}
			case 4, 5:
				a := addr(p, rng)
				if p.Addr().Is6() {
					if rng.IntN(3) == 0 {
						e.del(store.AddrKey(p, a))
					} else {
						kind := store.AddrContainer
						if rng.IntN(8) == 0 {
							kind = store.AddrGateway
						}
						e.put(store.AddrKey(p, a), store.Address{IP: a, Kind: kind, Host: h})
					}
					did = append(did, "v6 address "+a.String()+" of "+h)
					break
				}
				if rng.IntN(3) == 0 {
					e.del(store.ExcKey(p, a))
				} else {
					e.put(store.ExcKey(p, a), store.Exception{Host: h})
				}
				did = append(did, "exception "+a.String()+" of "+h)
			case 6:
				if rng.IntN(2) == 0 {
					e.del(store.PoolRefKey(p, h))
				} else {
					e.put(store.PoolRefKey(p, h), store.PoolRef{Host: h})
				}
				did = append(did, "ref "+h+" "+p.String())
			case 7:
				// Address records of the IPv4 pool, followed or not.
				a := addr(pool4, rng)
				if rng.IntN(3) == 0 {
					e.del(store.AddrKey(pool4, a))
				} else {
					e.put(store.AddrKey(pool4, a), store.Address{IP: a, Kind: store.AddrContainer, Host: h})
				}
				did = append(did, "v4 address "+a.String()+" of "+h)
			case 8:
				if rng.IntN(4) != 0 {
					continue
				}
				if addrsFollowed {
					e.unfollowAddrs(pool4)
					did = append(did, "stop following v4 addresses")
				} else {
					e.follow(pool4, kindAddrs)
					did = append(did, "follow v4 addresses")
				}
				addrsFollowed = !addrsFollowed
			case 9:
				// The colliding pair: one of them comes and goes.
				c := x
				if rng.IntN(2) == 0 {
					c = y
				}
				if rng.IntN(2) == 0 {
					e.del(store.AliveKey(c))
				} else {
					e.put(store.AliveKey(c), store.HostAlive{Name: c, IPAMLayout: store.IPAMLayoutExceptions})
				}
				did = append(did, "colliding "+c+" toggles")
			}
		}
		_, done, err := o.step()
		if err != nil || !done {
			t.Fatalf("step %d (%v): done %v, %v", i, did, done, err)
		}
		checkApplied(t, o, fmt.Sprintf("step %d (%v)", i, did))
		if i%50 == 49 {
			ch, err := o.sync(syncOptions{full: true})
			if err != nil || ch.Total() != 0 {
				t.Fatalf("after step %d a full pass against the kernel changed %+v (%v): the kernel was not what was applied", i, ch, err)
			}
		}
	}
	s := o.Stats()
	if s.Steps < 300 || s.Changes.RoutesAdded == 0 || s.Changes.RoutesDeleted == 0 || s.Changes.NeighDeleted == 0 {
		t.Fatalf("the random walk did not exercise every kind of change: %+v", s)
	}
	t.Logf("%d incremental passes, %d entries recomputed, changes %+v", s.Steps, s.StepKeys, s.Changes)
}

// TestEventCostsOnlyWhatItChanges feeds each kind of event of the scale
// scenario (100 remote hosts) and counts the kernel changes it makes: an
// address inside its owner's block none at all, the others exactly the
// entries they touch.
func TestEventCostsOnlyWhatItChanges(t *testing.T) {
	o, _, _, _ := scaleOverlay(t, 100)
	_, err := o.sync(syncOptions{})
	must(t, err)
	for _, ev := range scaleEvents(100) {
		before := o.Stats()
		for _, half := range ev.pair {
			half(o)
			if _, done, err := o.step(); err != nil || !done {
				t.Fatalf("%s: done %v, %v", ev.name, done, err)
			}
		}
		after := o.Stats()
		if got := after.Changes.Total() - before.Changes.Total(); got != ev.kernel {
			t.Errorf("%s: %d kernel changes, want %d", ev.name, got, ev.kernel)
		}
		if after.Syncs != before.Syncs {
			t.Errorf("%s: a full pass ran", ev.name)
		}
		// A handful of entries recomputed, not the cluster's.
		if keys := after.StepKeys - before.StepKeys; keys > 20 {
			t.Errorf("%s: %d entries recomputed", ev.name, keys)
		}
		checkApplied(t, o, ev.name)
	}
	ch, err := o.sync(syncOptions{full: true})
	if err != nil || ch.Total() != 0 {
		t.Fatalf("full pass after the events changed %+v (%v)", ch, err)
	}
}

// TestHostMoveKeepsItsFDBEntry moves a host to another underlay address,
// once through a full pass and once incrementally: its FDB entry must
// follow (the kernel keeps one destination per unicast MAC, so adding the
// new one and deleting the old one would leave none).
func TestHostMoveKeepsItsFDBEntry(t *testing.T) {
	n := Network{ID: "net1", VNI: 42, Bridge: "pn-net1", Pools: []netip.Prefix{pool4}, MTU: 1450}
	o := incrementalOverlay(t, n)
	e := newFakeEtcd(t, o, pool4)
	e.put(store.HostKey("b"), store.Host{Name: "b", Underlay: netip.MustParseAddr("10.99.0.2")})
	e.put(store.AliveKey("b"), store.HostAlive{Name: "b", IPAMLayout: store.IPAMLayoutExceptions})
	e.put(store.BlockKey(pool4, netip.MustParsePrefix("10.1.0.64/26")), store.Block{Host: "b"})
	_, err := o.sync(syncOptions{})
	must(t, err)
	dev, err := o.k.NL.LinkByName(DeviceName(42))
	must(t, err)
	fdb := func() []string {
		es, err := nlKernel{h: o.k.NL}.listFDB(dev.Attrs().Index)
		must(t, err)
		var out []string
		for _, x := range es {
			out = append(out, x.mac+" "+x.dst.String())
		}
		return out
	}
	mac := VTEPMAC("b", 42).String()
	for i, u := range []string{"10.99.0.3", "10.99.0.4"} {
		e.put(store.HostKey("b"), store.Host{Name: "b", Underlay: netip.MustParseAddr(u)})
		if i == 0 {
			_, err = o.sync(syncOptions{}) // the view changed: a full diff
		} else {
			_, _, err = o.step()
		}
		must(t, err)
		if got := fdb(); len(got) != 1 || got[0] != mac+" "+u {
			t.Fatalf("after b moved to %s the FDB holds %v, want %s %s", u, got, mac, u)
		}
	}
}
