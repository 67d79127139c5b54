package catalog

import (
	"context"
	"maps"
	"slices"
	"strings"
	"sync"

	"github.com/podnet/podnet/feed"
	"github.com/podnet/podnet/policy"
	"github.com/podnet/podnet/store"
)

// Where containers come from. The catalog does not follow every
// container of the cluster (epmeta/, ctrmeta/): it follows the selection
// index (sel/ep/, sel/ctr/: the containers some service or policy
// selects, written by their own hosts, store's selindex.go), its own
// host's records whole, and the records of live hosts whose podnetd keeps
// no selection index (an older version, during a rolling upgrade). One
// record may arrive from two sources at once (a host being upgraded):
// metaSrc keeps each source's copy, and the container's record is any
// copy left (they are the same record), gone with the last one.

// metaCopy is one source's copy of a container record.
type metaCopy struct {
	prefix string
	kv     store.KV
}

// isMetaSource says whether prefix feeds container records.
func isMetaSource(prefix string) bool {
	return prefix == store.SelectedEndpoints || prefix == store.SelectedContainers ||
		strings.HasPrefix(prefix, store.EndpointMetaPrefix("")) || strings.HasPrefix(prefix, store.ContainerMetaPrefix(""))
}

// canonical maps a source key to the record key it stands for
// (epmeta/<host>/<ep> or ctrmeta/<host>/<id>).
func canonical(key string) string {
	if k, ok := store.MetaKeyOfSelected(key); ok {
		return k
	}
	return key
}

// applyMetaSource records kv of source prefix and applies what the
// container's record now is.
func (c *Catalog) applyMetaSource(prefix string, kv store.KV, deleted bool) {
	key := canonical(kv.Key)
	if host, _, ok := store.SplitHostKey(key, metaPrefixOf(key)); ok && !deleted && host != c.self &&
		(prefix == store.EndpointMetaPrefix(host) || prefix == store.ContainerMetaPrefix(host)) && !c.legacyWant[host] {
		return // a delivery after the host's feed was cancelled
	}
	if prefix == store.SelectedEndpoints || prefix == store.SelectedContainers {
		// This host's records come from its own prefixes, whole.
		if host, _, ok := store.SplitHostKey(key, metaPrefixOf(key)); !ok || host == c.self {
			return
		}
	}
	srcs := c.metaSrc[key]
	i := slices.IndexFunc(srcs, func(m metaCopy) bool { return m.prefix == prefix })
	switch {
	case deleted && i < 0:
		return
	case deleted:
		srcs = slices.Delete(srcs, i, i+1)
	case i >= 0 && string(srcs[i].kv.Value) == string(kv.Value):
		srcs[i].kv = kv
		return // the same record again (a reselection, a second source)
	case i >= 0:
		srcs[i].kv = kv
	default:
		srcs = append(srcs, metaCopy{prefix, kv})
	}
	if len(srcs) == 0 {
		delete(c.metaSrc, key)
	} else {
		c.metaSrc[key] = srcs
	}
	eff, gone := store.KV{Key: key}, true
	for _, s := range srcs {
		if gone || s.kv.ModRev > eff.ModRev {
			eff, gone = store.KV{Key: key, Value: s.kv.Value, ModRev: s.kv.ModRev}, false
		}
	}
	if strings.HasPrefix(key, store.EndpointMetaPrefix("")) {
		c.applyEndpointMeta(eff, gone)
	} else {
		c.applyContainerMeta(eff, gone)
	}
}

// metaPrefixOf is the record prefix of a canonical key.
func metaPrefixOf(key string) string {
	if strings.HasPrefix(key, store.EndpointMetaPrefix("")) {
		return store.EndpointMetaPrefix("")
	}
	return store.ContainerMetaPrefix("")
}

// metaSourceKeysLocked lists the keys source prefix gave, as it gave them.
func (c *Catalog) metaSourceKeysLocked(prefix string) []string {
	var out []string
	for _, srcs := range c.metaSrc {
		for _, m := range srcs {
			if m.prefix == prefix {
				out = append(out, m.kv.Key)
			}
		}
	}
	return out
}

// legacyFeeds follows epmeta/<host>/ and ctrmeta/<host>/ of the live
// hosts without the selection index.
type legacyFeeds struct {
	mu     sync.Mutex
	feeds  *feed.Hub
	cancel map[string]func()
}

// syncLegacy follows the hosts that need it now, and drops what the
// others' feeds gave.
func (c *Catalog) syncLegacy() {
	c.mu.RLock()
	want := maps.Clone(c.legacyWant)
	c.mu.RUnlock()
	l := &c.legacy
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.feeds == nil {
		return
	}
	for h, cancel := range l.cancel {
		if want[h] {
			continue
		}
		cancel()
		delete(l.cancel, h)
		c.dropSources(store.EndpointMetaPrefix(h), store.ContainerMetaPrefix(h))
	}
	for h := range want {
		if _, ok := l.cancel[h]; ok {
			continue
		}
		ep, ctr := store.EndpointMetaPrefix(h), store.ContainerMetaPrefix(h)
		c1 := l.feeds.Subscribe(ep, catalogFollower{c: c, prefix: ep})
		c2 := l.feeds.Subscribe(ctr, catalogFollower{c: c, prefix: ctr})
		l.cancel[h] = func() { c1(); c2() }
	}
}

// legacyWantLocked recomputes which live hosts keep no selection index
// (called as alive/ changes, so that Loaded waits for their records).
func (c *Catalog) legacyWantLocked() {
	clear(c.legacyWant)
	for h := range c.alive {
		if h != c.self && c.layout[h] < store.MetaLayoutSelected {
			c.legacyWant[h] = true
		}
	}
}

// legacyLoadedLocked says whether the records of every host followed
// whole were read.
func (c *Catalog) legacyLoadedLocked() bool {
	for h := range c.legacyWant {
		if !c.loaded[store.EndpointMetaPrefix(h)] || !c.loaded[store.ContainerMetaPrefix(h)] {
			return false
		}
	}
	return true
}

// dropSources forgets what the given source prefixes gave.
func (c *Catalog) dropSources(prefixes ...string) {
	c.mu.Lock()
	for _, p := range prefixes {
		for _, k := range c.metaSourceKeysLocked(p) {
			c.applyMetaSource(p, store.KV{Key: k}, true)
		}
		delete(c.loaded, p)
	}
	c.mu.Unlock()
	c.signal()
}

// runLegacy follows the hosts without the selection index until ctx
// ends.
func (c *Catalog) runLegacy(ctx context.Context, feeds *feed.Hub) {
	l := &c.legacy
	l.mu.Lock()
	l.feeds, l.cancel = feeds, map[string]func(){}
	l.mu.Unlock()
	c.syncLegacy()
	<-ctx.Done()
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, cancel := range l.cancel {
		cancel()
	}
	l.feeds, l.cancel = nil, nil
}

// Selects reports whether a service or a network policy selects a
// container with these labels: its host then writes it to the selection
// index. Until services and policies have been read it says yes
// (selecting too much costs only fan-out).
func (c *Catalog) Selects(labels map[string]string) bool {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if !c.loaded[store.ServicesPrefix] || !c.loaded[store.PoliciesPrefix] {
		return true
	}
	return c.selectsLocked(labels)
}

func (c *Catalog) selectsLocked(labels map[string]string) bool {
	if len(c.selAll) > 0 {
		return true
	}
	for k, v := range labels {
		for name := range c.byTerm[term(k, v)] {
			if s := c.services[name]; s != nil && selects(s.Selector, labels) {
				return true
			}
		}
		for key := range c.selByTerm[policy.Term(k, v)] {
			if s := c.sels[key]; s != nil && policy.Matches(s.sel, labels) {
				return true
			}
		}
		for key := range c.selByKey[k] {
			if s := c.sels[key]; s != nil && policy.Matches(s.sel, labels) {
				return true
			}
		}
	}
	return false
}

// SelectorsLoaded says whether Selects answers from the services and
// policies (it says yes to everything before).
func (c *Catalog) SelectorsLoaded() bool {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.loaded[store.ServicesPrefix] && c.loaded[store.PoliciesPrefix]
}

// SelectorsChanged is signalled (coalesced) when the selectors of the
// services or policies change: what Selects says may have changed.
func (c *Catalog) SelectorsChanged() <-chan struct{} { return c.selSignal }

func (c *Catalog) selectorsChanged() {
	select {
	case c.selSignal <- struct{}{}:
	default:
	}
}

// LoadSelection reads the services and policies once and returns what
// Selects would say (for a podnetd's start, before its catalog runs).
func LoadSelection(ctx context.Context, st *store.Store) (store.Selection, error) {
	c := New("", false, nil)
	for _, p := range []string{store.ServicesPrefix, store.PoliciesPrefix} {
		kvs, _, err := st.List(ctx, p)
		if err != nil {
			return nil, err
		}
		c.snapshot(p, kvs)
	}
	return c.Selects, nil
}
