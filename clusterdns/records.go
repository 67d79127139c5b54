package clusterdns

import (
	"log/slog"
	"net/netip"
	"slices"
	"sync"

	"github.com/podnet/podnet/internal/index"
	"github.com/podnet/podnet/store"
)

// entry is one endpoint as the DNS server sees it.
type entry struct {
	host string
	// names are the index forms of the container name and its aliases.
	names []string
	// ptr is the name PTR queries answer (the container name as written).
	ptr    string
	v4, v6 netip.Addr
	ready  bool
}

// records is the in-memory index of every host's endpoint metadata and of
// the live hosts. Followers write it; queries read it.
type records struct {
	log *slog.Logger

	mu      sync.RWMutex
	entries map[string]*entry              // epmeta key → entry
	byName  map[string]map[string]struct{} // index name → epmeta keys
	byAddr  map[netip.Addr]map[string]struct{}
	alive   map[string]bool
}

func newRecords(log *slog.Logger) *records {
	return &records{log: log, entries: map[string]*entry{}, byName: map[string]map[string]struct{}{},
		byAddr: map[netip.Addr]map[string]struct{}{}, alive: map[string]bool{}}
}

// entryOf turns a metadata record into an entry; false if it is unusable.
func (r *records) entryOf(kv store.KV) (*entry, bool) {
	host, _, ok := store.SplitHostKey(kv.Key, store.EndpointMetaPrefix(""))
	if !ok {
		return nil, false
	}
	var m store.EndpointMeta
	if err := kv.Decode(&m); err != nil {
		r.log.Warn("endpoint metadata ignored", "err", err)
		return nil, false
	}
	e := &entry{host: host, ready: m.Ready}
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
}

// answerable says whether e may be answered: ready, on a live host.
func (r *records) answerable(e *entry) bool { return e.ready && r.alive[e.host] }

// lookup returns the addresses of every answerable container called name
// (an index form).
func (r *records) lookup(name string) (v4, v6 []netip.Addr) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	for key := range r.byName[name] {
		e := r.entries[key]
		if !r.answerable(e) {
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
	var out []string
	for key := range r.byAddr[addr] {
		e := r.entries[key]
		if r.answerable(e) && e.ptr != "" && !slices.Contains(out, e.ptr) {
			out = append(out, e.ptr)
		}
	}
	slices.Sort(out)
	return out
}

// metaFollower feeds epmeta/ into records.
type metaFollower struct{ r *records }

func (f metaFollower) Snapshot(kvs []store.KV) {
	r := f.r
	fresh := map[string]*entry{}
	for _, kv := range kvs {
		if e, ok := r.entryOf(kv); ok {
			fresh[kv.Key] = e
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.entries = map[string]*entry{}
	r.byName = map[string]map[string]struct{}{}
	r.byAddr = map[netip.Addr]map[string]struct{}{}
	for k, e := range fresh {
		r.putLocked(k, e)
	}
	r.log.Debug("cluster DNS records loaded", "endpoints", len(fresh))
}

func (f metaFollower) Changes(evs []store.Event) {
	r := f.r
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, ev := range evs {
		if ev.Type == store.EventDelete {
			r.removeLocked(ev.Key)
			continue
		}
		if e, ok := r.entryOf(store.KV{Key: ev.Key, Value: ev.Value, ModRev: ev.ModRev}); ok {
			r.putLocked(ev.Key, e)
		} else {
			r.removeLocked(ev.Key)
		}
	}
}

// aliveFollower feeds alive/ into records.
type aliveFollower struct{ r *records }

func (f aliveFollower) Snapshot(kvs []store.KV) {
	alive := map[string]bool{}
	for _, kv := range kvs {
		if h, ok := store.AliveHost(kv.Key); ok {
			alive[h] = true
		}
	}
	f.r.mu.Lock()
	f.r.alive = alive
	f.r.mu.Unlock()
}

func (f aliveFollower) Changes(evs []store.Event) {
	f.r.mu.Lock()
	defer f.r.mu.Unlock()
	for _, ev := range evs {
		h, ok := store.AliveHost(ev.Key)
		if !ok {
			continue
		}
		if ev.Type == store.EventDelete {
			delete(f.r.alive, h)
			f.r.log.Info("host no longer alive: its containers stop resolving", "peer", h)
		} else {
			f.r.alive[h] = true
		}
	}
}
