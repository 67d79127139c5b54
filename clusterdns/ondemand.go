package clusterdns

import (
	"context"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/podnet/podnet/feed"
	"github.com/podnet/podnet/store"
)

// Names on demand. A name (or a PTR address) is read where it lives the
// first time it is asked: its index prefix (dns/names/<label>/) is
// listed and then watched, through the shared feeds, so later queries
// are answered from memory and a removed container stops resolving as
// soon as its owner deletes its index key. A name nobody asked for in
// idleAfter is dropped, and so is the least recently asked one when
// maxWatches are followed. Hosts whose podnetd keeps no index (an older
// version, during a rolling upgrade) are followed whole instead
// (epmeta/<host>/), while they are alive.
const (
	// firstLookupWait bounds how long a first query waits for etcd's
	// answer; past it, the query is answered from what is known (the file
	// of a previous run, hosts without the index) and the watch keeps
	// trying.
	firstLookupWait = 500 * time.Millisecond
	// missPause: after a first lookup etcd did not answer in time, first
	// lookups do not wait for this long (etcd is likely down).
	missPause = 5 * time.Second
	// idleAfter drops names not asked for that long.
	idleAfter = 10 * time.Minute
	// maxWatches bounds the names and addresses followed.
	maxWatches = 20000
)

// watch is one followed index prefix.
type watch struct {
	prefix     string
	label      string     // the name, for a name prefix
	addr       netip.Addr // the address, for an address prefix
	cancel     func()
	loaded     chan struct{}
	loadedOnce sync.Once
	used       atomic.Int64 // unix nanoseconds of the last query
	// keys are the index keys it put into records, dropped that it is no
	// longer followed (a delivery may still arrive after its cancel): both
	// guarded by records.mu.
	keys    map[string]struct{}
	dropped bool
}

// lookups follows what the DNS was asked for, and the hosts without the
// name index.
type lookups struct {
	feeds *feed.Hub
	recs  *records

	mu      sync.Mutex
	watches map[string]*watch // prefix → watch
	legacy  map[string]func() // host without the index → cancel of its epmeta/<host>/ feed
	stopped bool
	// missUntil: unix nanoseconds until which first lookups do not wait.
	missUntil atomic.Int64
}

func newLookups(feeds *feed.Hub, recs *records) *lookups {
	return &lookups{feeds: feeds, recs: recs, watches: map[string]*watch{}, legacy: map[string]func(){}}
}

// name makes sure label is followed, waiting (bounded) for its first
// listing.
func (l *lookups) name(ctx context.Context, label string) {
	l.ensure(ctx, &watch{prefix: store.DNSNamePrefix(label), label: label})
}

// address makes sure a is followed, as name does.
func (l *lookups) address(ctx context.Context, a netip.Addr) {
	l.ensure(ctx, &watch{prefix: store.DNSAddrPrefix(a), addr: a})
}

func (l *lookups) ensure(ctx context.Context, nw *watch) {
	now := time.Now()
	l.mu.Lock()
	if l.stopped {
		l.mu.Unlock()
		return
	}
	w := l.watches[nw.prefix]
	if w == nil {
		if len(l.watches) >= maxWatches {
			l.evictLocked(1)
		}
		w = nw
		w.loaded = make(chan struct{})
		w.keys = map[string]struct{}{}
		l.watches[w.prefix] = w
		w.cancel = l.feeds.Subscribe(w.prefix, indexFollower{l.recs, w})
	}
	w.used.Store(now.UnixNano())
	l.mu.Unlock()
	select {
	case <-w.loaded:
		return
	default:
	}
	if now.UnixNano() < l.missUntil.Load() {
		return
	}
	t := time.NewTimer(firstLookupWait)
	defer t.Stop()
	select {
	case <-w.loaded:
	case <-t.C:
		l.missUntil.Store(time.Now().Add(missPause).UnixNano())
	case <-ctx.Done():
	}
}

// evictLocked drops the n least recently asked watches.
func (l *lookups) evictLocked(n int) {
	for range n {
		var old *watch
		for _, w := range l.watches {
			if old == nil || w.used.Load() < old.used.Load() {
				old = w
			}
		}
		if old == nil {
			return
		}
		l.dropLocked(old)
	}
}

func (l *lookups) dropLocked(w *watch) {
	delete(l.watches, w.prefix)
	w.cancel()
	l.recs.mu.Lock()
	l.recs.dropWatchLocked(w)
	l.recs.mu.Unlock()
}

// expire drops the watches idle for longer than idleAfter.
func (l *lookups) expire(now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, w := range l.watches {
		if now.Sub(time.Unix(0, w.used.Load())) > idleAfter {
			l.dropLocked(w)
		}
	}
}

// expireLoop runs expire until ctx ends.
func (l *lookups) expireLoop(ctx context.Context) {
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			l.expire(now)
		}
	}
}

// stop ends every feed.
func (l *lookups) stop() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.stopped = true
	for _, w := range l.watches {
		w.cancel()
	}
	for _, cancel := range l.legacy {
		cancel()
	}
	l.watches, l.legacy = map[string]*watch{}, map[string]func(){}
}

// setLegacy follows epmeta/<host>/ of exactly the hosts in want (the live
// hosts without the name index), and forgets the others' entries.
func (l *lookups) setLegacy(want map[string]bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.stopped {
		return
	}
	for host, cancel := range l.legacy {
		if want[host] {
			continue
		}
		cancel()
		delete(l.legacy, host)
		l.recs.mu.Lock()
		l.recs.removeHostMetaLocked(host)
		l.recs.mu.Unlock()
	}
	for host := range want {
		if _, ok := l.legacy[host]; !ok {
			l.legacy[host] = l.feeds.Subscribe(store.EndpointMetaPrefix(host), hostMetaFollower{l.recs, host})
		}
	}
}

// aliveFollower feeds alive/ into records and tells lookups which hosts
// to follow whole.
type aliveFollower struct {
	r      *records
	l      *lookups
	loaded *atomic.Bool
}

// layoutOf reads a liveness record's DNS layout (0 when unreadable: the
// host is then followed whole, which is always correct).
func layoutOf(v []byte) int {
	var a store.HostAlive
	if (store.KV{Value: v}).Decode(&a) != nil {
		return 0
	}
	return a.MetaLayout
}

func (f aliveFollower) Snapshot(kvs []store.KV) {
	alive := map[string]int{}
	for _, kv := range kvs {
		if h, ok := store.AliveHost(kv.Key); ok {
			alive[h] = layoutOf(kv.Value)
		}
	}
	f.r.mu.Lock()
	f.r.alive = alive
	f.r.gen.Add(1)
	want := f.r.legacyHostsLocked()
	f.r.mu.Unlock()
	f.l.setLegacy(want)
	f.loaded.Store(true)
}

func (f aliveFollower) Changes(evs []store.Event) {
	f.r.mu.Lock()
	for _, ev := range evs {
		h, ok := store.AliveHost(ev.Key)
		if !ok {
			continue
		}
		if ev.Type == store.EventDelete {
			delete(f.r.alive, h)
			f.r.log.Info("host no longer alive: its containers stop resolving", "peer", h)
		} else {
			f.r.alive[h] = layoutOf(ev.Value)
		}
	}
	f.r.gen.Add(1)
	want := f.r.legacyHostsLocked()
	f.r.mu.Unlock()
	f.l.setLegacy(want)
}

// legacyHostsLocked lists the live hosts without the name index.
func (r *records) legacyHostsLocked() map[string]bool {
	out := map[string]bool{}
	for h, layout := range r.alive {
		if layout < store.MetaLayoutNames {
			out[h] = true
		}
	}
	return out
}
