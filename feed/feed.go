package feed

import (
	"context"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/podnet/podnet/store"
)

// Source follows a prefix the way store.Store.Follow does: a snapshot,
// then changes, until ctx ends.
type Source interface {
	Follow(ctx context.Context, prefix string, f store.Follower)
}

// Hub holds the feeds of one podnetd.
type Hub struct {
	src     Source
	log     *slog.Logger
	created time.Time

	mu      sync.Mutex
	ctx     context.Context // set by Run: feeds follow from then on
	feeds   map[string]*feed
	sources map[string]Source // per prefix, instead of src
	wg      sync.WaitGroup
}

// New returns a hub reading from src; Run starts it.
func New(src Source, log *slog.Logger) *Hub {
	if log == nil {
		log = slog.Default()
	}
	return &Hub{src: src, log: log, created: time.Now(), feeds: map[string]*feed{}, sources: map[string]Source{}}
}

// SetSource makes prefix read from src instead of the hub's source; call
// it before anyone subscribes to prefix.
func (h *Hub) SetSource(prefix string, src Source) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.sources[prefix] = src
}

// Run follows every prefix that has readers, and those that get some
// later, until ctx ends; it returns when every Follow has.
func (h *Hub) Run(ctx context.Context) {
	h.mu.Lock()
	h.ctx = ctx
	for _, f := range h.feeds {
		h.startLocked(f)
	}
	h.mu.Unlock()
	<-ctx.Done()
	h.wg.Wait()
}

// Subscribe adds f as a reader of prefix: it gets a snapshot as soon as
// the prefix is listed (at once, from another goroutine, if it is), then
// every change. cancel removes it; the prefix is no longer followed once
// nobody reads it. Neither calls f itself, so both may be called with
// locks held that f's callbacks take; a delivery under way when cancel
// returns may still reach f.
func (h *Hub) Subscribe(prefix string, f store.Follower) (cancel func()) {
	h.mu.Lock()
	defer h.mu.Unlock()
	fd := h.feeds[prefix]
	if fd == nil {
		fd = &feed{prefix: prefix, kvs: map[string]store.KV{}, created: time.Now()}
		h.feeds[prefix] = fd
	}
	r := &reader{f: f}
	fd.add(r)
	go fd.prime(r)
	if h.ctx != nil {
		h.startLocked(fd)
	}
	var once sync.Once
	return func() { once.Do(func() { h.unsubscribe(fd, r) }) }
}

func (h *Hub) unsubscribe(fd *feed, r *reader) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if fd.remove(r) > 0 {
		return
	}
	if fd.stop != nil {
		fd.stop()
	}
	if h.feeds[fd.prefix] == fd {
		delete(h.feeds, fd.prefix)
	}
}

// startLocked starts fd's Follow unless it runs. Called with h.mu held.
func (h *Hub) startLocked(fd *feed) {
	if fd.stop != nil {
		return
	}
	ctx, stop := context.WithCancel(h.ctx)
	fd.stop = stop
	src := h.src
	if s, ok := h.sources[fd.prefix]; ok {
		src = s
	}
	h.log.Debug("following", "prefix", fd.prefix)
	h.wg.Go(func() { src.Follow(ctx, fd.prefix, fd) })
}

// Stale lists the followed prefixes that heard nothing from etcd (no
// listing, change or progress notification) for longer than bound,
// sorted; a prefix never listed counts from when it was first read.
func (h *Hub) Stale(bound time.Duration) []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	now := time.Now()
	for p, fd := range h.feeds {
		if now.Sub(fd.lastHeard()) > bound {
			out = append(out, p)
		}
	}
	slices.Sort(out)
	return out
}

// LastHeard is when the followed prefix that heard from etcd least
// recently last did (as Stale judges each one): while every watch is
// connected it stays within a few seconds of now, and it stops moving
// when etcd is out of reach. With nothing followed yet (podnetd waiting
// for etcd at start) it is when the hub was made. podnetd exports it as
// podnet_etcd_view_last_heard_timestamp_seconds.
func (h *Hub) LastHeard() time.Time {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.feeds) == 0 {
		return h.created
	}
	var oldest time.Time
	for _, fd := range h.feeds {
		if t := fd.lastHeard(); oldest.IsZero() || t.Before(oldest) {
			oldest = t
		}
	}
	return oldest
}

// Loaded reports whether prefix has readers and has been listed.
func (h *Hub) Loaded(prefix string) bool {
	h.mu.Lock()
	fd := h.feeds[prefix]
	h.mu.Unlock()
	if fd == nil {
		return false
	}
	fd.mu.Lock()
	defer fd.mu.Unlock()
	return fd.loaded
}

// Prefixes lists the followed prefixes, sorted.
func (h *Hub) Prefixes() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Sorted(maps.Keys(h.feeds))
}

// feed is one followed prefix: its current keys and its readers. It is
// the store.Follower of its Follow.
type feed struct {
	prefix  string
	created time.Time
	stop    context.CancelFunc // its Follow's; nil until started (guarded by Hub.mu)
	heard   atomic.Int64       // unix nanoseconds of the last word from etcd

	// rmu guards readers only, and is never held while a reader is
	// called: Subscribe and cancel never wait for a delivery.
	rmu     sync.Mutex
	readers []*reader

	// mu orders deliveries: the keys, and which readers had their
	// snapshot.
	mu     sync.Mutex
	kvs    map[string]store.KV
	loaded bool
}

// reader is one subscriber; primed (guarded by feed.mu) says it had its
// snapshot.
type reader struct {
	f      store.Follower
	primed bool
}

var _ store.ProgressFollower = (*feed)(nil)

func (fd *feed) lastHeard() time.Time {
	if n := fd.heard.Load(); n != 0 {
		return time.Unix(0, n)
	}
	return fd.created
}

func (fd *feed) hear() { fd.heard.Store(time.Now().UnixNano()) }

func (fd *feed) add(r *reader) {
	fd.rmu.Lock()
	defer fd.rmu.Unlock()
	fd.readers = append(fd.readers, r)
}

// remove unsubscribes r and returns how many readers are left.
func (fd *feed) remove(r *reader) int {
	fd.rmu.Lock()
	defer fd.rmu.Unlock()
	fd.readers = slices.DeleteFunc(fd.readers, func(x *reader) bool { return x == r })
	return len(fd.readers)
}

func (fd *feed) current() []*reader {
	fd.rmu.Lock()
	defer fd.rmu.Unlock()
	return slices.Clone(fd.readers)
}

// prime gives a new reader the feed's keys if they were listed already
// (otherwise the listing will).
func (fd *feed) prime(r *reader) {
	fd.mu.Lock()
	defer fd.mu.Unlock()
	if fd.loaded && !r.primed {
		r.primed = true
		r.f.Snapshot(fd.listLocked())
	}
}

// listLocked is the feed's keys as a listing, sorted by key.
func (fd *feed) listLocked() []store.KV {
	out := slices.Collect(maps.Values(fd.kvs))
	slices.SortFunc(out, func(a, b store.KV) int { return strings.Compare(a.Key, b.Key) })
	return out
}

// Snapshot replaces the feed's keys and hands the listing on.
func (fd *feed) Snapshot(kvs []store.KV) {
	fd.hear()
	fd.mu.Lock()
	defer fd.mu.Unlock()
	fd.kvs = make(map[string]store.KV, len(kvs))
	for _, kv := range kvs {
		fd.kvs[kv.Key] = kv
	}
	fd.loaded = true
	for _, r := range fd.current() {
		r.primed = true
		r.f.Snapshot(kvs)
	}
}

// Changes applies evs to the feed's keys and hands them on (a reader
// still waiting for its snapshot gets the keys as they now are instead).
func (fd *feed) Changes(evs []store.Event) {
	fd.hear()
	fd.mu.Lock()
	defer fd.mu.Unlock()
	for _, ev := range evs {
		if ev.Type == store.EventDelete {
			delete(fd.kvs, ev.Key)
		} else {
			fd.kvs[ev.Key] = store.KV{Key: ev.Key, Value: ev.Value, ModRev: ev.ModRev}
		}
	}
	var list []store.KV
	for _, r := range fd.current() {
		if r.primed {
			r.f.Changes(evs)
			continue
		}
		if list == nil {
			list = fd.listLocked()
		}
		r.primed = true
		r.f.Snapshot(list)
	}
}

// Progress notes that the watch is connected and caught up.
func (fd *feed) Progress() { fd.hear() }

// Start returns a hub reading from src that runs until ctx ends: for a
// reader on its own (tests, tools).
func Start(ctx context.Context, src Source, log *slog.Logger) *Hub {
	h := New(src, log)
	go h.Run(ctx)
	return h
}
