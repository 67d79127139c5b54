package overlay

import (
	"context"
	"encoding/hex"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/podnet/podnet/store"
)

// minSyncInterval spaces programming passes: the first change after a
// quiet spell is programmed at once, changes arriving during or just after
// a pass are coalesced into the next one.
const minSyncInterval = 20 * time.Millisecond

// deviceCheckInterval is how often Run checks that the VXLAN devices still
// exist between full resyncs (a deleted device is recreated and refilled).
const deviceCheckInterval = 10 * time.Second

// retryInterval is how soon a pass that failed is retried.
const retryInterval = time.Second

// Run follows hosts/, alive/ and the ipam/<pool>/ prefixes of the
// registered networks' pools with store.Follow and programs the kernel
// after every change, coalescing bursts. It also resyncs fully every
// Resync. Nothing is programmed until every followed prefix has been
// listed once, so a restart never acts on a partial view. Run returns when
// ctx ends and leaves the kernel state in place: established cross-host
// connections survive a podnetd restart, and the next Run finds every
// correct entry already there and touches none of them.
func (o *Overlay) Run(ctx context.Context) {
	o.mu.Lock()
	if o.running {
		o.mu.Unlock()
		o.log.Error("overlay Run called twice; ignoring the second call")
		return
	}
	o.running = true
	o.view = newView()
	o.mu.Unlock()
	defer func() {
		o.mu.Lock()
		o.running = false
		o.mu.Unlock()
	}()

	var wg sync.WaitGroup
	defer wg.Wait()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	wg.Add(2)
	go func() { defer wg.Done(); o.st.Follow(ctx, store.HostsPrefix, hostsFollower{o}) }()
	go func() { defer wg.Done(); o.st.Follow(ctx, store.AlivePrefix, aliveFollower{o}) }()
	pools := map[netip.Prefix]context.CancelFunc{}

	started := time.Now()
	resync := time.NewTicker(o.resync)
	defer resync.Stop()
	devCheck := time.NewTicker(min(deviceCheckInterval, o.resync))
	defer devCheck.Stop()
	retry := time.NewTimer(0)
	<-retry.C
	var last time.Time
	full := false
	for {
		select {
		case <-ctx.Done():
			for _, stop := range pools {
				stop()
			}
			o.log.Info("overlay stopped; kernel state left in place")
			return
		case <-o.wake:
		case <-resync.C:
			full = true
		case <-devCheck.C:
			if !o.devicesIntact() {
				full = true
			} else {
				continue
			}
		case <-retry.C:
		}
		o.followPools(ctx, &wg, pools)
		if !o.ready() {
			continue // a snapshot is pending; its arrival wakes us
		}
		if wait := minSyncInterval - time.Since(last); wait > 0 {
			select {
			case <-ctx.Done():
				continue
			case <-time.After(wait):
			}
		}
		select { // changes that came while waiting are in this pass
		case <-o.wake:
		default:
		}
		last = time.Now()
		gc := full && time.Since(started) >= o.resync
		if _, err := o.sync(syncOptions{full: full, gcOrphans: gc}); err != nil {
			o.log.Warn("overlay sync incomplete; retrying", "err", err, "in", retryInterval)
			retry.Reset(retryInterval)
		}
		full = false
	}
}

// followPools starts a Follow for each pool of a registered network that
// has none and stops those of pools no longer registered.
func (o *Overlay) followPools(ctx context.Context, wg *sync.WaitGroup, running map[netip.Prefix]context.CancelFunc) {
	o.mu.Lock()
	defer o.mu.Unlock()
	want := map[netip.Prefix]bool{}
	for _, n := range o.networks {
		for _, p := range n.Pools {
			want[p] = true
		}
	}
	for p, stop := range running {
		if !want[p] {
			stop()
			delete(running, p)
			delete(o.view.pools, p)
		}
	}
	for p := range want {
		if _, ok := running[p]; ok {
			continue
		}
		pv := newPoolView()
		o.view.pools[p] = pv
		pctx, stop := context.WithCancel(ctx)
		running[p] = stop
		f := &poolFollower{o: o, pool: p, pv: pv}
		wg.Add(1)
		go func() { defer wg.Done(); o.st.Follow(pctx, store.IPAMPrefix(p), f) }()
	}
}

// ready reports whether every followed prefix has been listed.
func (o *Overlay) ready() bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	if !o.view.hostsLoaded || !o.view.aliveLoaded {
		return false
	}
	for _, pv := range o.view.pools {
		if !pv.loaded {
			return false
		}
	}
	return true
}

// devicesIntact reports whether every registered network's device exists
// (ip link show pnxV).
func (o *Overlay) devicesIntact() bool {
	o.mu.Lock()
	vnis := make([]int, 0, len(o.networks))
	for _, n := range o.networks {
		vnis = append(vnis, n.VNI)
	}
	o.mu.Unlock()
	for _, v := range vnis {
		if _, err := o.k.NL.LinkByName(DeviceName(v)); err != nil {
			return false
		}
	}
	return true
}

// hostsFollower keeps view.hosts: host → underlay address.
type hostsFollower struct{ o *Overlay }

func (f hostsFollower) Snapshot(kvs []store.KV) {
	hosts := make(map[string]netip.Addr, len(kvs))
	for _, kv := range kvs {
		if name, u, ok := f.parse(kv.Key, kv.Value); ok {
			hosts[name] = u
		}
	}
	f.o.mu.Lock()
	f.o.view.hosts, f.o.view.hostsLoaded = hosts, true
	f.o.mu.Unlock()
	f.o.kick()
}

func (f hostsFollower) Changes(evs []store.Event) {
	f.o.mu.Lock()
	for _, e := range evs {
		name := strings.TrimPrefix(e.Key, store.HostsPrefix)
		if e.Type == store.EventDelete {
			delete(f.o.view.hosts, name)
			continue
		}
		if name, u, ok := f.parse(e.Key, e.Value); ok {
			f.o.view.hosts[name] = u
		}
	}
	f.o.mu.Unlock()
	f.o.kick()
}

func (f hostsFollower) parse(key string, value []byte) (string, netip.Addr, bool) {
	var h store.Host
	if err := (store.KV{Key: key, Value: value}).Decode(&h); err != nil {
		f.o.log.Warn("ignoring undecodable host record", "key", key, "err", err)
		return "", netip.Addr{}, false
	}
	name := strings.TrimPrefix(key, store.HostsPrefix)
	if h.Underlay == "" {
		return name, netip.Addr{}, true // a host without an overlay
	}
	u, err := netip.ParseAddr(h.Underlay)
	if err != nil || !u.Is4() {
		f.o.log.Warn("ignoring host with an unusable underlay address", "host", name, "underlay", h.Underlay)
		return name, netip.Addr{}, true
	}
	return name, u, true
}

// aliveFollower keeps view.alive: the hosts whose liveness key exists.
type aliveFollower struct{ o *Overlay }

func (f aliveFollower) Snapshot(kvs []store.KV) {
	alive := make(map[string]bool, len(kvs))
	for _, kv := range kvs {
		alive[strings.TrimPrefix(kv.Key, store.AlivePrefix)] = true
	}
	f.o.mu.Lock()
	f.o.view.alive, f.o.view.aliveLoaded = alive, true
	f.o.mu.Unlock()
	f.o.kick()
}

func (f aliveFollower) Changes(evs []store.Event) {
	f.o.mu.Lock()
	for _, e := range evs {
		name := strings.TrimPrefix(e.Key, store.AlivePrefix)
		if e.Type == store.EventDelete {
			delete(f.o.view.alive, name)
		} else {
			f.o.view.alive[name] = true
		}
	}
	f.o.mu.Unlock()
	f.o.kick()
}

// poolFollower keeps one pool's blocks, references and addresses. It
// writes only into its own poolView, which followPools replaces when the
// pool is dropped, so a late callback cannot resurrect a forgotten pool.
type poolFollower struct {
	o    *Overlay
	pool netip.Prefix
	pv   *poolView
}

func (f *poolFollower) Snapshot(kvs []store.KV) {
	fresh := newPoolView()
	for _, kv := range kvs {
		f.apply(fresh, store.Event{Type: store.EventPut, Key: kv.Key, Value: kv.Value})
	}
	f.o.mu.Lock()
	*f.pv = *fresh
	f.pv.loaded = true
	f.o.mu.Unlock()
	f.o.kick()
}

func (f *poolFollower) Changes(evs []store.Event) {
	f.o.mu.Lock()
	for _, e := range evs {
		f.apply(f.pv, e)
	}
	f.o.mu.Unlock()
	f.o.kick()
}

// apply folds one key of ipam/<pool>/ into pv.
func (f *poolFollower) apply(pv *poolView, e store.Event) {
	rest := strings.TrimPrefix(e.Key, store.IPAMPrefix(f.pool))
	kind, name, ok := strings.Cut(rest, "/")
	if !ok {
		return
	}
	del := e.Type == store.EventDelete
	switch kind {
	case "refs":
		if del {
			delete(pv.refs, name)
		} else {
			pv.refs[name] = true
		}
	case "blocks":
		b, err := store.ParsePoolName(name)
		if err != nil {
			f.o.log.Warn("ignoring malformed block key", "key", e.Key, "err", err)
			return
		}
		b = b.Masked()
		if del {
			pv.delBlock(b)
			return
		}
		var rec store.Block
		if err := (store.KV{Key: e.Key, Value: e.Value}).Decode(&rec); err != nil || rec.Host == "" {
			f.o.log.Warn("ignoring undecodable block record", "key", e.Key, "err", err)
			return
		}
		pv.setBlock(b, rec.Host)
	case "addrs":
		raw, err := hex.DecodeString(name)
		a, ok := netip.AddrFromSlice(raw)
		if err != nil || !ok {
			f.o.log.Warn("ignoring malformed address key", "key", e.Key)
			return
		}
		if del {
			delete(pv.addrs, a)
			return
		}
		var rec store.Address
		if err := (store.KV{Key: e.Key, Value: e.Value}).Decode(&rec); err != nil {
			f.o.log.Warn("ignoring undecodable address record", "key", e.Key, "err", err)
			return
		}
		// A tunnel address is routed to its owner like a container address.
		pv.addrs[a] = addrOwner{host: rec.Host,
			container: rec.Kind == store.AddrContainer || rec.Kind == store.AddrTunnel || rec.Kind == ""}
	}
}
