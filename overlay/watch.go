package overlay

import (
	"context"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/podnet/podnet/feed"
	"github.com/podnet/podnet/overlay/wireguard"
	"github.com/podnet/podnet/store"
)

// minSyncInterval spaces full passes: the first change after a quiet
// spell is programmed at once, changes arriving during or just after a
// full pass are coalesced into the next one. Incremental passes are not
// spaced: each costs what its events change.
const minSyncInterval = 20 * time.Millisecond

// deviceCheckInterval is how often Run checks that the VXLAN devices still
// exist between full resyncs (a deleted device is recreated and refilled).
const deviceCheckInterval = 10 * time.Second

// retryInterval is how soon a pass that failed is retried.
const retryInterval = time.Second

// Kinds of keys of a pool the overlay follows, each under ipam/<pool>/.
const (
	kindRefs   = store.KindRef
	kindBlocks = store.KindBlock
	kindExc    = store.KindExc
	kindAddrs  = store.KindAddr
)

// followKey names one Follow of a pool.
type followKey struct {
	pool netip.Prefix
	kind string
}

// Run reads hosts/ and alive/, and for each pool of the registered
// networks its refs/, blocks/ and exc/ keys (and addrs/ while a podnetd
// older than exception records is alive, or its writes are not repaired
// yet), from the
// feeds shared with the rest of podnetd (Config.Feeds); it programs the kernel after every batch of changes
// (incremental passes), and fully at start, every Resync and when the
// registered networks change. Nothing is programmed until every followed
// prefix has been listed once, so a restart never acts on a partial view.
// While it runs, the bridges of IPv6 pools answer neighbor solicitations
// (ndp.go); they stop when it returns.
// Run returns when ctx ends and leaves the kernel state in place:
// established cross-host connections survive a podnetd restart, and the
// next Run finds every correct entry already there and touches none of
// them.
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
	if o.feeds == nil {
		h := feed.New(o.st, o.log)
		wg.Go(func() { h.Run(ctx) })
		o.feeds = h
		defer func() { o.feeds = nil }()
	}
	defer o.feeds.Subscribe(store.HostsPrefix, hostsFollower{o})()
	defer o.feeds.Subscribe(store.AlivePrefix, aliveFollower{o})()
	fs := &follows{running: map[followKey]*poolFollower{}, repairs: map[netip.Prefix]context.CancelFunc{}}

	started := time.Now()
	resync := time.NewTicker(o.resync)
	defer resync.Stop()
	devCheck := time.NewTicker(min(deviceCheckInterval, o.resync))
	defer devCheck.Stop()
	retry := time.NewTimer(0)
	<-retry.C
	var last time.Time
	full := false
	// The responders answer from the routes the kernel has, so they start
	// at once: after a restart the previous instance's routes are in place.
	o.syncResponders()
	defer o.closeResponders()
	for {
		select {
		case <-ctx.Done():
			fs.stopAll(o)
			o.log.Info("overlay stopped; kernel state left in place")
			return
		case <-o.wake:
		case <-resync.C:
			full = true
		case <-devCheck.C:
			o.syncResponders()
			if !o.devicesIntact() {
				full = true
			} else {
				continue
			}
		case <-retry.C:
		}
		o.followPools(ctx, &wg, fs)
		if !o.ready() {
			continue // a snapshot is pending; its arrival wakes us
		}
		if !full {
			if _, done, err := o.step(); done {
				if err != nil {
					o.log.Warn("overlay update incomplete; a full pass follows", "err", err, "in", retryInterval)
					retry.Reset(retryInterval)
				}
				continue
			}
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
		o.syncResponders()
		full = false
	}
}

// follows are the running Follows of pools and repairs of their
// exception records.
type follows struct {
	running map[followKey]*poolFollower
	repairs map[netip.Prefix]context.CancelFunc
}

func (fs *follows) stopAll(o *Overlay) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for k, f := range fs.running {
		f.stop()
		delete(fs.running, k)
	}
	for p, stop := range fs.repairs {
		stop()
		delete(fs.repairs, p)
	}
}

// followPools starts the Follows each pool of a registered network needs
// and stops the others: refs/, blocks/ and exc/ always; addrs/ only while
// an old podnetd is alive or its writes are not repaired yet (repair.go),
// for IPv4 and IPv6 pools alike (IPv6 bridges answer neighbor
// solicitations from the routes: ndp.go).
func (o *Overlay) followPools(ctx context.Context, wg *sync.WaitGroup, fs *follows) {
	o.mu.Lock()
	defer o.mu.Unlock()
	legacy := o.view.legacy()
	want := map[followKey]bool{}
	for _, n := range o.networks {
		for _, p := range n.Pools {
			pv := o.poolView(p)
			if legacy {
				pv.consistent = false
			}
			for _, kind := range []string{kindRefs, kindBlocks, kindExc} {
				want[followKey{p, kind}] = true
			}
			if legacy || !pv.consistent {
				want[followKey{p, kindAddrs}] = true
			}
		}
	}
	for k, f := range fs.running {
		if want[k] {
			continue
		}
		f.stop()
		delete(fs.running, k)
		pv := o.view.pools[k.pool]
		if pv == nil {
			continue
		}
		delete(pv.scopes, k.kind)
		if k.kind == kindAddrs {
			pv.setSource(false)
			clear(pv.addrs)
			o.log.Info("exception records agree with the address records: no longer following addresses", "pool", k.pool)
		}
	}
	for p, pv := range o.view.pools {
		if !want[followKey{p, kindRefs}] {
			delete(o.view.pools, p)
			if stop := fs.repairs[p]; stop != nil {
				stop()
				delete(fs.repairs, p)
			}
		} else if stop := fs.repairs[p]; stop != nil && legacy {
			stop()
			delete(fs.repairs, p)
		} else if stop == nil && !legacy && !pv.consistent && pv.scopes[kindAddrs] {
			rctx, stop := context.WithCancel(ctx)
			fs.repairs[p] = stop
			wg.Add(1)
			go func() { defer wg.Done(); o.repair(rctx, p, pv) }()
		}
	}
	for k := range want {
		if _, ok := fs.running[k]; ok {
			continue
		}
		pv := o.view.pools[k.pool]
		pv.scopes[k.kind] = false
		f := &poolFollower{o: o, pool: k.pool, pv: pv, kind: k.kind}
		f.cancel = o.feeds.Subscribe(store.IPAMPrefix(k.pool)+k.kind+"/", f)
		fs.running[k] = f
	}
}

// poolView returns the view of pool p, new (empty, its exceptions from
// exception records) if there is none. Called with o.mu held.
func (o *Overlay) poolView(p netip.Prefix) *poolView {
	pv := o.view.pools[p]
	if pv == nil {
		pv = newPoolView()
		pv.fromAddrs = false
		pv.dirty = o.view.dirty
		o.view.pools[p] = pv
	}
	return pv
}

// ready reports whether every followed prefix has been listed.
func (o *Overlay) ready() bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	if !o.view.hostsLoaded || !o.view.aliveLoaded {
		return false
	}
	for _, pv := range o.view.pools {
		for _, loaded := range pv.scopes {
			if !loaded {
				return false
			}
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
	if o.wg != nil && !o.wg.Exists() {
		return false
	}
	for _, v := range vnis {
		if _, err := o.k.NL.LinkByName(DeviceName(v)); err != nil {
			return false
		}
	}
	return true
}

// count adds what a watch delivered to the kind's counters: a listing
// (snapshot) or changes. Called with o.mu held.
func (o *Overlay) count(kind string, snapshot bool, kvs []store.KV, evs []store.Event) {
	if o.watch == nil {
		o.watch = map[string]*WatchStats{}
	}
	w := o.watch[kind]
	if w == nil {
		w = &WatchStats{}
		o.watch[kind] = w
	}
	if snapshot {
		w.Snapshots++
		w.SnapshotKeys += len(kvs)
		for _, kv := range kvs {
			w.SnapshotBytes += int64(len(kv.Key) + len(kv.Value))
		}
	}
	w.Events += len(evs)
	for _, e := range evs {
		w.EventBytes += int64(len(e.Key) + len(e.Value))
	}
}

// hostsFollower keeps view.hosts: host → underlay address.
type hostsFollower struct{ o *Overlay }

func (f hostsFollower) Snapshot(kvs []store.KV) {
	hosts := make(map[string]hostRec, len(kvs))
	for _, kv := range kvs {
		if name, h, ok := f.parse(kv.Key, kv.Value); ok {
			hosts[name] = h
		}
	}
	f.o.mu.Lock()
	f.o.count("hosts", true, kvs, nil)
	v := f.o.view
	cur := make(map[string]hostRec, len(v.hosts))
	for name, u := range v.hosts {
		cur[name] = hostRec{u, v.keys[name]}
	}
	replaceAll(cur, hosts, func(name string, h hostRec) { v.setHost(name, h.underlay, h.key) }, v.delHost)
	v.hostsLoaded = true
	f.o.mu.Unlock()
	f.o.kick()
	f.o.publishPeers()
}

func (f hostsFollower) Changes(evs []store.Event) {
	f.o.mu.Lock()
	f.o.count("hosts", false, nil, evs)
	for _, e := range evs {
		if e.Type == store.EventDelete {
			f.o.view.delHost(strings.TrimPrefix(e.Key, store.HostsPrefix))
			continue
		}
		if name, h, ok := f.parse(e.Key, e.Value); ok {
			f.o.view.setHost(name, h.underlay, h.key)
		}
	}
	f.o.mu.Unlock()
	f.o.kick()
	f.o.publishPeers()
}

// hostRec is what the overlay reads of a host record.
type hostRec struct {
	underlay netip.Addr
	key      hostKey
}

func (f hostsFollower) parse(key string, value []byte) (string, hostRec, bool) {
	var h store.Host
	if err := (store.KV{Key: key, Value: value}).Decode(&h); err != nil {
		f.o.log.Warn("ignoring undecodable host record", "key", key, "err", err)
		return "", hostRec{}, false
	}
	name := strings.TrimPrefix(key, store.HostsPrefix)
	var k hostKey
	if h.WireGuard != nil {
		k = hostKey{set: true, port: h.WireGuard.Port}
		pub, err := wireguard.ParseKey(h.WireGuard.PublicKey)
		switch {
		case err != nil:
			f.o.log.Warn("host record has an unusable WireGuard key; the host gets no encrypted traffic", "host", name, "err", err)
		case h.WireGuard.Port < 1 || h.WireGuard.Port > 65535:
			f.o.log.Warn("host record has an unusable WireGuard port; the host gets no encrypted traffic", "host", name,
				"port", h.WireGuard.Port)
		default:
			k.key, k.valid = pub, true
		}
	}
	if !h.Underlay.IsValid() {
		return name, hostRec{key: k}, true // a host without an overlay
	}
	if !h.Underlay.Is4() {
		f.o.log.Warn("ignoring host with an unusable underlay address", "host", name, "underlay", h.Underlay)
		return name, hostRec{key: k}, true
	}
	return name, hostRec{h.Underlay, k}, true
}

// aliveFollower keeps view.alive: the hosts whose liveness key exists, and
// which of them run a podnetd that does not keep exception records.
type aliveFollower struct{ o *Overlay }

func (f aliveFollower) Snapshot(kvs []store.KV) {
	alive := make(map[string]bool, len(kvs))
	for _, kv := range kvs {
		alive[strings.TrimPrefix(kv.Key, store.AlivePrefix)] = oldLayout(kv.Value)
	}
	f.o.mu.Lock()
	f.o.count("alive", true, kvs, nil)
	v := f.o.view
	replaceAll(v.alive, alive, v.setAlive, v.delAlive)
	v.aliveLoaded = true
	f.o.mu.Unlock()
	f.o.kick()
}

func (f aliveFollower) Changes(evs []store.Event) {
	f.o.mu.Lock()
	f.o.count("alive", false, nil, evs)
	for _, e := range evs {
		name := strings.TrimPrefix(e.Key, store.AlivePrefix)
		if e.Type == store.EventDelete {
			f.o.view.delAlive(name)
		} else {
			f.o.view.setAlive(name, oldLayout(e.Value))
		}
	}
	f.o.mu.Unlock()
	f.o.kick()
}

// oldLayout reports whether a liveness record comes from a podnetd that
// does not keep exception records (an unreadable one counts as old: the
// address records are then followed, which is always correct).
func oldLayout(value []byte) bool {
	var a store.HostAlive
	if err := (store.KV{Value: value}).Decode(&a); err != nil {
		return true
	}
	return a.IPAMLayout < store.IPAMLayoutExceptions
}

// poolFollower keeps one kind of a pool's keys (kind "": all of them, as
// tests list a pool at once). It writes only into its own poolView, which
// followPools replaces when the pool is dropped, and not at all once
// stopped, so a late callback cannot resurrect what was forgotten.
type poolFollower struct {
	o      *Overlay
	pool   netip.Prefix
	pv     *poolView
	kind   string
	cancel func() // its subscription's
	dead   bool
}

// stop ends the subscription; called with o.mu held (cancelling a
// subscription never waits for a delivery, see package feed).
func (f *poolFollower) stop() {
	f.dead = true
	if f.cancel != nil {
		f.cancel()
	}
}

func (f *poolFollower) name() string {
	if f.kind == "" {
		return "pool"
	}
	return f.kind
}

func (f *poolFollower) Snapshot(kvs []store.KV) {
	fresh := newPoolView() // its changes are recorded nowhere that matters
	for _, kv := range kvs {
		f.apply(fresh, store.Event{Type: store.EventPut, Key: kv.Key, Value: kv.Value, ModRev: kv.ModRev})
	}
	f.o.mu.Lock()
	defer f.o.kick()
	defer f.o.mu.Unlock()
	if f.dead {
		return
	}
	f.o.count(f.name(), true, kvs, nil)
	pv := f.pv
	for _, kind := range []string{kindRefs, kindBlocks, kindExc, kindAddrs} {
		if f.kind != "" && f.kind != kind {
			continue
		}
		pv.replace(kind, fresh)
		pv.scopes[kind] = true
	}
	if f.kind == "" {
		pv.loaded = true
	}
	if f.kind == kindAddrs {
		pv.setSource(true)
	}
}

func (f *poolFollower) Changes(evs []store.Event) {
	f.o.mu.Lock()
	defer f.o.kick()
	defer f.o.mu.Unlock()
	if f.dead {
		return
	}
	f.o.count(f.name(), false, nil, evs)
	for _, e := range evs {
		f.apply(f.pv, e)
	}
}

// replace makes pv's records of one kind those of fresh, through the
// set/del methods: only what differs is marked changed.
func (p *poolView) replace(kind string, fresh *poolView) {
	switch kind {
	case kindRefs:
		replaceAll(p.refs, fresh.refs, func(h string, _ bool) { p.setRef(h) }, p.delRef)
	case kindBlocks:
		replaceAll(p.blocks, fresh.blocks, p.setBlock, p.delBlock)
	case kindAddrs:
		replaceAll(p.addrs, fresh.addrs, p.setAddr, p.delAddr)
	case kindExc:
		replaceAll(p.exc, fresh.exc, p.setExc, p.delExc)
	}
}

// replaceAll makes cur hold fresh's entries: del for each key fresh lacks,
// set for each of fresh's (the setters ignore what does not change).
func replaceAll[K comparable, V any](cur, fresh map[K]V, set func(K, V), del func(K)) {
	for k := range cur {
		if _, ok := fresh[k]; !ok {
			del(k)
		}
	}
	for k, v := range fresh {
		set(k, v)
	}
}

// apply folds one key of ipam/<pool>/ into pv.
func (f *poolFollower) apply(pv *poolView, e store.Event) {
	k, err := store.ParseIPAMKey(f.pool, e.Key)
	if err != nil {
		f.o.log.Warn("ignoring malformed IPAM key", "key", e.Key, "err", err)
		return
	}
	if f.kind != "" && k.Kind != f.kind {
		return
	}
	del := e.Type == store.EventDelete
	switch k.Kind {
	case kindRefs:
		if del {
			pv.delRef(k.Host)
		} else {
			pv.setRef(k.Host)
		}
	case kindBlocks:
		if del {
			pv.delBlock(k.Block)
			return
		}
		var rec store.Block
		if err := (store.KV{Key: e.Key, Value: e.Value}).Decode(&rec); err != nil || rec.Host == "" {
			f.o.log.Warn("ignoring undecodable block record", "key", e.Key, "err", err)
			return
		}
		pv.setBlock(k.Block, rec.Host)
	case kindExc:
		f.applyExc(pv, k.Addr, e)
	case kindAddrs:
		if del {
			pv.delAddr(k.Addr)
			return
		}
		var rec store.Address
		if err := (store.KV{Key: e.Key, Value: e.Value}).Decode(&rec); err != nil {
			f.o.log.Warn("ignoring undecodable address record", "key", e.Key, "err", err)
			return
		}
		// A tunnel address is routed to its owner like a container address.
		pv.setAddr(k.Addr, addrOwner{host: rec.Host,
			container: rec.Kind == store.AddrContainer || rec.Kind == store.AddrTunnel || rec.Kind == "", rev: e.ModRev})
	}
}

func (f *poolFollower) applyExc(pv *poolView, a netip.Addr, e store.Event) {
	if e.Type == store.EventDelete {
		pv.delExc(a)
		return
	}
	var rec store.Exception
	if err := (store.KV{Key: e.Key, Value: e.Value}).Decode(&rec); err != nil {
		f.o.log.Warn("ignoring undecodable exception record", "key", e.Key, "err", err)
		return
	}
	pv.setExc(a, addrOwner{host: rec.Host, container: true, rev: e.ModRev})
}
