package clusterdns

import (
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/podnet/podnet/internal/index"
	"github.com/podnet/podnet/store"
)

// entry is one endpoint (or one name of it) as the DNS server sees it.
type entry struct {
	host string
	// names are the index forms of the names it answers to.
	names []string
	// ptr is the name PTR queries answer (the container name as written).
	ptr    string
	v4, v6 netip.Addr
	ready  bool
	// src says where it came from, and so when it is answered.
	src entrySource
}

type entrySource uint8

const (
	// fromMeta: epmeta/<host>/, followed for hosts without the name
	// index (podnetds of an older version); answered while the host is
	// alive and still without the index.
	fromMeta entrySource = iota
	// fromIndex: dns/names/ or dns/addrs/, read on demand; answered
	// while the host is alive and keeps the index.
	fromIndex
	// fromDisk: the file of a previous run; answered, for a name, until
	// etcd has answered for that name.
	fromDisk
)

// records is the in-memory index of what the DNS answers: the endpoints
// of the names and addresses asked for (fromIndex), every endpoint of
// hosts without the index (fromMeta), and what was loaded from disk; and
// the live hosts. Followers write it; queries read it.
type records struct {
	log *slog.Logger

	mu      sync.RWMutex
	entries map[string]*entry              // key (epmeta, index or file key) → entry
	byName  map[string]map[string]struct{} // index name → keys
	byAddr  map[netip.Addr]map[string]struct{}
	byHost  map[string]map[string]struct{} // host → its fromMeta keys
	// alive maps each live host to its DNS layout (HostAlive.MetaLayout).
	alive map[string]int
	// settled are the names and addresses etcd has answered for (their
	// index watch has its listing): disk entries no longer count there.
	settledNames map[string]bool
	settledAddrs map[netip.Addr]bool
	// gen counts changes, for the disk cache.
	gen atomic.Uint64
}

func newRecords(log *slog.Logger) *records {
	return &records{log: log, entries: map[string]*entry{}, byName: map[string]map[string]struct{}{},
		byAddr: map[netip.Addr]map[string]struct{}{}, byHost: map[string]map[string]struct{}{},
		alive: map[string]int{}, settledNames: map[string]bool{}, settledAddrs: map[netip.Addr]bool{}}
}

// entryOfMeta turns a metadata record into an entry; false if it is
// unusable.
func (r *records) entryOfMeta(kv store.KV) (*entry, bool) {
	host, _, ok := store.SplitHostKey(kv.Key, store.EndpointMetaPrefix(""))
	if !ok {
		return nil, false
	}
	var m store.EndpointMeta
	if err := kv.Decode(&m); err != nil {
		r.log.Warn("endpoint metadata ignored", "err", err)
		return nil, false
	}
	e := &entry{host: host, ready: m.Ready, src: fromMeta}
	for _, n := range append([]string{m.Name}, m.Aliases...) {
		k, ok := containerLabel(n)
		if !ok {
			continue
		}
		if e.ptr == "" {
			e.ptr = n // PTR answers the name as written, and only one that resolves back
		}
		if !slices.Contains(e.names, k) {
			e.names = append(e.names, k)
		}
	}
	if a := m.IPv4.Unmap(); a.Is4() {
		e.v4 = a
	}
	if a := m.IPv6; a.Is6() && !a.Is4In6() {
		e.v6 = a.WithZone("")
	}
	return e, true
}

// entryOfIndex turns a name index key under prefix into an entry; label
// is the name the prefix lists ("" for an address prefix).
func (r *records) entryOfIndex(kv store.KV, prefix, label string) (*entry, bool) {
	host, _, ok := store.SplitDNSKey(kv.Key, prefix)
	if !ok {
		return nil, false
	}
	var v store.DNSName
	if err := kv.Decode(&v); err != nil {
		r.log.Warn("cluster DNS name index record ignored", "err", err)
		return nil, false
	}
	e := &entry{host: host, ready: true, src: fromIndex}
	if label != "" {
		e.names = []string{label}
	}
	if _, ok := containerLabel(v.Name); ok {
		e.ptr = v.Name
	}
	if a := v.IPv4.Unmap(); a.Is4() {
		e.v4 = a
	}
	if a := v.IPv6; a.Is6() && !a.Is4In6() {
		e.v6 = a.WithZone("")
	}
	return e, e.v4.IsValid() || e.v6.IsValid()
}

// putLocked indexes e under key, replacing what key held.
func (r *records) putLocked(key string, e *entry) {
	r.removeLocked(key)
	r.entries[key] = e
	for _, n := range e.names {
		index.Add(r.byName, n, key)
	}
	for _, a := range []netip.Addr{e.v4, e.v6} {
		if a.IsValid() {
			index.Add(r.byAddr, a, key)
		}
	}
	if e.src == fromMeta {
		index.Add(r.byHost, e.host, key)
	}
	r.gen.Add(1)
}

func (r *records) removeLocked(key string) {
	e, ok := r.entries[key]
	if !ok {
		return
	}
	delete(r.entries, key)
	for _, n := range e.names {
		index.Remove(r.byName, n, key)
	}
	for _, a := range []netip.Addr{e.v4, e.v6} {
		if a.IsValid() {
			index.Remove(r.byAddr, a, key)
		}
	}
	if e.src == fromMeta {
		index.Remove(r.byHost, e.host, key)
	}
	r.gen.Add(1)
}

// removeHostMetaLocked drops every fromMeta entry of host.
func (r *records) removeHostMetaLocked(host string) {
	for key := range r.byHost[host] {
		r.removeLocked(key)
	}
}

// answerable says whether e may be answered: ready, on a live host, and
// from the source that host's layout makes current.
func (r *records) answerable(e *entry) bool {
	layout, alive := r.alive[e.host]
	switch {
	case !e.ready || !alive:
		return false
	case e.src == fromIndex:
		return layout >= store.MetaLayoutNames
	case e.src == fromMeta:
		return layout < store.MetaLayoutNames
	}
	return true
}

// lookup returns the addresses of every answerable container called name
// (an index form).
func (r *records) lookup(name string) (v4, v6 []netip.Addr) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	settled := r.settledNames[name]
	for key := range r.byName[name] {
		e := r.entries[key]
		if settled && e.src == fromDisk || !r.answerable(e) {
			continue
		}
		if e.v4.IsValid() && !slices.Contains(v4, e.v4) {
			v4 = append(v4, e.v4)
		}
		if e.v6.IsValid() && !slices.Contains(v6, e.v6) {
			v6 = append(v6, e.v6)
		}
	}
	return v4, v6
}

// ptr returns the names of the answerable containers holding addr.
func (r *records) ptr(addr netip.Addr) []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	settled := r.settledAddrs[addr]
	var out []string
	for key := range r.byAddr[addr] {
		e := r.entries[key]
		if settled && e.src == fromDisk || !r.answerable(e) || e.ptr == "" || slices.Contains(out, e.ptr) {
			continue
		}
		out = append(out, e.ptr)
	}
	slices.Sort(out)
	return out
}

// hostMetaFollower feeds epmeta/<host>/ of one host without the name
// index into records.
type hostMetaFollower struct {
	r    *records
	host string
}

func (f hostMetaFollower) Snapshot(kvs []store.KV) {
	r := f.r
	fresh := map[string]*entry{}
	for _, kv := range kvs {
		if e, ok := r.entryOfMeta(kv); ok && e.host == f.host {
			fresh[kv.Key] = e
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.followedWholeLocked(f.host) {
		return // a delivery after its feed was cancelled
	}
	r.removeHostMetaLocked(f.host)
	for k, e := range fresh {
		r.putLocked(k, e)
	}
	r.log.Debug("cluster DNS records of a host without the name index loaded", "peer", f.host, "endpoints", len(fresh))
}

func (f hostMetaFollower) Changes(evs []store.Event) {
	r := f.r
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.followedWholeLocked(f.host) {
		return
	}
	for _, ev := range evs {
		if ev.Type == store.EventDelete {
			r.removeLocked(ev.Key)
			continue
		}
		if e, ok := r.entryOfMeta(store.KV{Key: ev.Key, Value: ev.Value, ModRev: ev.ModRev}); ok && e.host == f.host {
			r.putLocked(ev.Key, e)
		} else {
			r.removeLocked(ev.Key)
		}
	}
}

// followedWholeLocked says whether host is one whose metadata is
// followed whole: alive, without the name index.
func (r *records) followedWholeLocked(host string) bool {
	layout, alive := r.alive[host]
	return alive && layout < store.MetaLayoutNames
}

// indexFollower feeds one name's (or one address's) index prefix into
// records: the endpoints etcd lists there replace what the prefix held.
type indexFollower struct {
	r *records
	w *watch
}

func (f indexFollower) Snapshot(kvs []store.KV) {
	r, w := f.r, f.w
	r.mu.Lock()
	if w.dropped {
		r.mu.Unlock()
		return
	}
	for key := range w.keys {
		r.removeLocked(key)
	}
	w.keys = map[string]struct{}{}
	for _, kv := range kvs {
		if e, ok := r.entryOfIndex(kv, w.prefix, w.label); ok {
			r.putLocked(kv.Key, e)
			w.keys[kv.Key] = struct{}{}
		}
	}
	r.settleLocked(w, true)
	r.mu.Unlock()
	w.loadedOnce.Do(func() { close(w.loaded) })
}

func (f indexFollower) Changes(evs []store.Event) {
	r, w := f.r, f.w
	r.mu.Lock()
	defer r.mu.Unlock()
	if w.dropped {
		return
	}
	for _, ev := range evs {
		if !strings.HasPrefix(ev.Key, w.prefix) {
			continue
		}
		var e *entry
		ok := ev.Type != store.EventDelete
		if ok {
			e, ok = r.entryOfIndex(store.KV{Key: ev.Key, Value: ev.Value, ModRev: ev.ModRev}, w.prefix, w.label)
		}
		if !ok {
			r.removeLocked(ev.Key)
			delete(w.keys, ev.Key)
			continue
		}
		r.putLocked(ev.Key, e)
		w.keys[ev.Key] = struct{}{}
	}
}

// settleLocked marks w's name or address as answered by etcd (or, when
// it is dropped, no longer).
func (r *records) settleLocked(w *watch, on bool) {
	switch {
	case w.label != "" && on:
		r.settledNames[w.label] = true
	case w.label != "":
		delete(r.settledNames, w.label)
	case on:
		r.settledAddrs[w.addr] = true
	default:
		delete(r.settledAddrs, w.addr)
	}
}

// dropWatchLocked forgets what w read (it is no longer followed).
func (r *records) dropWatchLocked(w *watch) {
	w.dropped = true
	for key := range w.keys {
		r.removeLocked(key)
	}
	w.keys = map[string]struct{}{}
	r.settleLocked(w, false)
}
