package service

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/podnet/podnet/store"
)

// ctrKey names a container cluster-wide.
type ctrKey struct{ host, id string }

// Member modes: how a selected container is reached.
const (
	modeNetwork   = "network"           // its own address on a podnet network
	modeHost      = store.ModeHost      // its host's address
	modeContainer = store.ModeContainer // the address of the container whose stack it shares
)

// member is one container as services see it, built from its records:
// one epmeta record per podnet endpoint, or one ctrmeta record.
type member struct {
	key    ctrKey
	name   string
	labels map[string]string
	ready  bool
	mode   string
	parent string // container mode: the full ID of the container it shares
	// eps holds the addresses of each of its podnet endpoints.
	eps map[string][2]netip.Addr // epmeta key → v4, v6
	// ctr is set for host- and container-mode containers.
	ctr bool
}

// Catalog is the in-memory view of everything services depend on: the
// services, the containers they may select (epmeta/ and ctrmeta/), the
// hosts' underlay addresses and their liveness. podnetd runs one: the
// proxy agent computes each host's rules from it and the cluster DNS
// answers service names from it. One-shot copies answer `podnetctl service
// get`.
type Catalog struct {
	self string
	v6   bool
	log  *slog.Logger

	mu       sync.RWMutex
	services map[string]*store.Service
	members  map[ctrKey]*member
	epmeta   map[string]store.EndpointMeta  // epmeta key → record
	ctrmeta  map[string]store.ContainerMeta // ctrmeta key → record
	alive    map[string]bool
	underlay map[string]netip.Addr
	// hostAddrs holds, per registered host, its addresses that no
	// external IP may be (hostAddrs), with why.
	hostAddrs map[string]map[netip.Addr]string
	byLabel   map[string]map[ctrKey]struct{} // "k=v" → containers
	byTerm    map[string]map[string]struct{} // "k=v" → services selecting it
	byVIP     map[netip.Addr]string
	epByCtr   map[ctrKey]map[string]struct{} // container → its epmeta keys
	children  map[ctrKey]map[ctrKey]struct{} // container → container-mode members sharing its stack
	byHost    map[string]map[ctrKey]struct{}
	// loaded counts the prefixes whose first snapshot arrived.
	loaded map[string]bool
	// dirty holds services whose computed result may have changed since
	// the agent last looked, with the write time of the oldest change (zero
	// when unknown); all says every service is.
	dirty   map[string]time.Time
	all     bool
	changed chan struct{}
	// gen counts updates, for readers that poll for "anything new" (the
	// DNS records saved on disk) without taking Changed from the agent.
	gen atomic.Uint64
	// externalOK checks an external IP of a service record against the
	// cluster's rules (nil: every one passes); see CheckExternalIPs.
	externalOK func(netip.Addr) error
}

// CheckExternalIPs makes the agent program only the external IPs ok
// accepts: a record written by hand, or by a podnetd of an older version,
// can hold any address, and the cluster's rules (--external-ip-cidrs)
// hold on every host whatever etcd says. Call it before Run.
func (c *Catalog) CheckExternalIPs(ok func(netip.Addr) error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.externalOK = ok
}

// hostRecordLocked keeps hostAddrs in line with host h's record; when
// they change, every service with external IPs is marked (which of them
// the agent programs may change).
func (c *Catalog) hostRecordLocked(h string, rec store.Host, deleted bool) {
	var now map[netip.Addr]string
	if !deleted && rec.Name == h {
		now = map[netip.Addr]string{}
		hostAddrs(rec, func(a netip.Addr, why string) { now[a] = why })
	}
	if maps.Equal(now, c.hostAddrs[h]) {
		return
	}
	if now == nil {
		delete(c.hostAddrs, h)
	} else {
		c.hostAddrs[h] = now
	}
	for name, s := range c.services {
		if len(s.ExternalIPs) > 0 {
			c.markDirty(name, time.Time{})
		}
	}
}

// externalRefusedLocked says why the agent leaves external IP a out
// (nil: it programs it): the cluster's rules, and the addresses of the
// registered hosts.
func (c *Catalog) externalRefusedLocked(a netip.Addr) error {
	if c.externalOK != nil {
		if err := c.externalOK(a); err != nil {
			return err
		}
	}
	for _, addrs := range c.hostAddrs {
		if why, ok := addrs[a]; ok {
			return fmt.Errorf("external IP %s is %s, which podnet never takes over", a, why)
		}
	}
	return nil
}

// refusedExternalIPs says, for service name, which of its external IPs
// the agent leaves out and why (nil: none).
func (c *Catalog) refusedExternalIPs(name string) []string {
	c.mu.RLock()
	defer c.mu.RUnlock()
	s := c.services[name]
	if s == nil {
		return nil
	}
	var out []string
	for _, a := range s.ExternalIPs {
		if err := c.externalRefusedLocked(a); err != nil {
			out = append(out, err.Error()+" (left out)")
		}
	}
	return out
}

// catalogPrefixes are what a Catalog follows.
var catalogPrefixes = []string{store.ServicesPrefix, store.EndpointMetaPrefix(""), store.ContainerMetaPrefix(""),
	store.AlivePrefix, store.HostsPrefix}

// NewCatalog returns an empty catalog for host self; v6 says the service
// CIDR is IPv6 (endpoints are then picked by their IPv6 address).
func NewCatalog(self string, v6 bool, log *slog.Logger) *Catalog {
	if log == nil {
		log = slog.Default()
	}
	return &Catalog{self: self, v6: v6, log: log,
		services: map[string]*store.Service{}, members: map[ctrKey]*member{},
		epmeta: map[string]store.EndpointMeta{}, ctrmeta: map[string]store.ContainerMeta{},
		alive: map[string]bool{}, underlay: map[string]netip.Addr{}, hostAddrs: map[string]map[netip.Addr]string{},
		byLabel: map[string]map[ctrKey]struct{}{}, byTerm: map[string]map[string]struct{}{},
		byVIP: map[netip.Addr]string{}, epByCtr: map[ctrKey]map[string]struct{}{},
		children: map[ctrKey]map[ctrKey]struct{}{}, byHost: map[string]map[ctrKey]struct{}{}, loaded: map[string]bool{}, dirty: map[string]time.Time{},
		changed: make(chan struct{}, 1)}
}

// Run follows etcd until ctx ends.
func (c *Catalog) Run(ctx context.Context, st *store.Store) {
	var wg sync.WaitGroup
	for _, p := range catalogPrefixes {
		wg.Go(func() { st.Follow(ctx, p, catalogFollower{c: c, prefix: p}) })
	}
	wg.Wait()
}

// loadCatalog builds a one-shot catalog from a listing of etcd.
func loadCatalog(ctx context.Context, st *store.Store, self string, v6 bool) (*Catalog, error) {
	c := NewCatalog(self, v6, slog.New(slog.DiscardHandler))
	for _, p := range catalogPrefixes {
		kvs, _, err := st.List(ctx, p)
		if err != nil {
			return nil, err
		}
		c.snapshot(p, kvs)
	}
	return c, nil
}

// Loaded reports whether every followed prefix has been read once.
func (c *Catalog) Loaded() bool {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.loaded) == len(catalogPrefixes)
}

// Changed is signalled (coalesced) after every update.
func (c *Catalog) Changed() <-chan struct{} { return c.changed }

type catalogFollower struct {
	c      *Catalog
	prefix string
}

func (f catalogFollower) Snapshot(kvs []store.KV) { f.c.snapshot(f.prefix, kvs) }

func (f catalogFollower) Changes(evs []store.Event) {
	c := f.c
	c.mu.Lock()
	for _, ev := range evs {
		kv := store.KV{Key: ev.Key, Value: ev.Value, ModRev: ev.ModRev}
		c.applyLocked(f.prefix, kv, ev.Type == store.EventDelete)
	}
	c.mu.Unlock()
	c.signal()
}

func (c *Catalog) signal() {
	c.gen.Add(1)
	select {
	case c.changed <- struct{}{}:
	default:
	}
}

// snapshot replaces everything under prefix.
func (c *Catalog) snapshot(prefix string, kvs []store.KV) {
	c.mu.Lock()
	present := map[string]bool{}
	for _, kv := range kvs {
		present[kv.Key] = true
		c.applyLocked(prefix, kv, false)
	}
	for _, k := range c.keysLocked(prefix) {
		if !present[k] {
			c.applyLocked(prefix, store.KV{Key: k}, true)
		}
	}
	c.loaded[prefix] = true
	c.all = true
	c.mu.Unlock()
	c.signal()
}

// keysLocked lists the keys the catalog holds under prefix.
func (c *Catalog) keysLocked(prefix string) []string {
	var out []string
	switch prefix {
	case store.ServicesPrefix:
		for n := range c.services {
			out = append(out, store.ServiceKey(n))
		}
	case store.EndpointMetaPrefix(""):
		out = slices.Collect(maps.Keys(c.epmeta))
	case store.ContainerMetaPrefix(""):
		out = slices.Collect(maps.Keys(c.ctrmeta))
	case store.AlivePrefix:
		for h := range c.alive {
			out = append(out, store.AliveKey(h))
		}
	case store.HostsPrefix:
		for h := range c.underlay {
			out = append(out, store.HostKey(h))
		}
	}
	return out
}

func (c *Catalog) applyLocked(prefix string, kv store.KV, deleted bool) {
	switch prefix {
	case store.ServicesPrefix:
		c.applyService(kv, deleted)
	case store.EndpointMetaPrefix(""):
		c.applyEndpointMeta(kv, deleted)
	case store.ContainerMetaPrefix(""):
		c.applyContainerMeta(kv, deleted)
	case store.AlivePrefix:
		h, ok := aliveHost(kv.Key)
		if ok && c.alive[h] == deleted {
			if deleted {
				delete(c.alive, h)
			} else {
				c.alive[h] = true
			}
			c.touchHost(h)
		}
	case store.HostsPrefix:
		h := strings.TrimPrefix(kv.Key, store.HostsPrefix)
		var rec store.Host
		var u netip.Addr
		if !deleted && kv.Decode(&rec) == nil {
			u = rec.Underlay
		}
		c.hostRecordLocked(h, rec, deleted)
		old, had := c.underlay[h]
		if deleted || !u.IsValid() {
			delete(c.underlay, h)
		} else {
			c.underlay[h] = u.Unmap()
		}
		if had != (u.IsValid() && !deleted) || old != u.Unmap() {
			c.touchHost(h)
		}
	}
}

func (c *Catalog) applyService(kv store.KV, deleted bool) {
	name := strings.TrimPrefix(kv.Key, store.ServicesPrefix)
	var s *store.Service
	if !deleted {
		s = &store.Service{}
		if err := kv.Decode(s); err != nil || s.Name != name {
			c.log.Warn("service record ignored", "key", kv.Key, "err", err)
			s = nil
		}
	}
	if old := c.services[name]; old != nil {
		for k, v := range old.Selector {
			removeKey(c.byTerm, term(k, v), name)
		}
		if c.byVIP[old.ClusterIP] == name {
			delete(c.byVIP, old.ClusterIP)
		}
		delete(c.services, name)
	}
	var at time.Time
	if s != nil {
		c.services[name] = s
		for k, v := range s.Selector {
			addKey(c.byTerm, term(k, v), name)
		}
		if s.ClusterIP.IsValid() {
			c.byVIP[s.ClusterIP] = name
		}
		at = s.Updated
	}
	c.markDirty(name, at)
}

func (c *Catalog) applyEndpointMeta(kv store.KV, deleted bool) {
	host, _, ok := splitHostKey(kv.Key, store.EndpointMetaPrefix(""))
	if !ok {
		return
	}
	var at time.Time
	if old, had := c.epmeta[kv.Key]; had {
		delete(c.epmeta, kv.Key)
		k := ctrKey{host, old.Container}
		removeKey(c.epByCtr, k, kv.Key)
		c.memberChanged(k, time.Time{})
	}
	if !deleted {
		var m store.EndpointMeta
		if err := kv.Decode(&m); err != nil || m.Container == "" {
			return
		}
		c.epmeta[kv.Key] = m
		at = m.Updated
		k := ctrKey{host, m.Container}
		addKey(c.epByCtr, k, kv.Key)
		c.memberChanged(k, at)
	}
}

func (c *Catalog) applyContainerMeta(kv store.KV, deleted bool) {
	host, id, ok := splitHostKey(kv.Key, store.ContainerMetaPrefix(""))
	if !ok {
		return
	}
	delete(c.ctrmeta, kv.Key)
	var at time.Time
	if !deleted {
		var m store.ContainerMeta
		if err := kv.Decode(&m); err == nil && m.Container == id {
			c.ctrmeta[kv.Key] = m
			at = m.Updated
		}
	}
	c.memberChanged(ctrKey{host, id}, at)
}

// memberChanged rebuilds a container's member from its records and marks
// the services it was or is selected by, and those of the containers
// sharing its stack, dirty.
func (c *Catalog) memberChanged(k ctrKey, at time.Time) {
	old := c.members[k]
	m := c.buildMember(k)
	if old != nil {
		c.touchLabels(old.labels, at)
		for l, v := range old.labels {
			removeKey(c.byLabel, term(l, v), k)
		}
		if old.mode == modeContainer {
			removeKey(c.children, ctrKey{k.host, old.parent}, k)
		}
		removeKey(c.byHost, k.host, k)
	}
	if m != nil {
		c.members[k] = m
		for l, v := range m.labels {
			addKey(c.byLabel, term(l, v), k)
		}
		if m.mode == modeContainer {
			addKey(c.children, ctrKey{k.host, m.parent}, k)
		}
		addKey(c.byHost, k.host, k)
		c.touchLabels(m.labels, at)
	} else {
		delete(c.members, k)
	}
	// Container-mode members reached through this one.
	for ck := range c.children[k] {
		if o := c.members[ck]; o != nil {
			c.touchLabels(o.labels, at)
		}
	}
}

// buildMember derives a member from the records of container k, or nil.
func (c *Catalog) buildMember(k ctrKey) *member {
	var m *member
	var newest time.Time
	for key := range c.epByCtr[k] {
		rec := c.epmeta[key]
		if m == nil {
			m = &member{key: k, mode: modeNetwork, eps: map[string][2]netip.Addr{}}
		}
		var a [2]netip.Addr
		if rec.IPv4.IsValid() {
			a[0] = rec.IPv4.Unmap()
		}
		if rec.IPv6.IsValid() {
			a[1] = rec.IPv6
		}
		m.eps[key] = a
		if rec.Updated.After(newest) || m.labels == nil {
			newest = rec.Updated
			m.name, m.labels, m.ready = rec.Name, rec.Labels, rec.Ready
		}
	}
	if m != nil {
		return m
	}
	rec, ok := c.ctrmeta[store.ContainerMetaKey(k.host, k.id)]
	if !ok {
		return nil
	}
	return &member{key: k, name: rec.Name, labels: rec.Labels, ready: rec.Ready, mode: rec.Mode,
		parent: rec.Parent, ctr: true}
}

// touchLabels marks dirty every service with a selector term among labels.
func (c *Catalog) touchLabels(labels map[string]string, at time.Time) {
	if c.all && at.IsZero() {
		return
	}
	for k, v := range labels {
		for name := range c.byTerm[term(k, v)] {
			c.markDirty(name, at)
		}
	}
}

// touchHost marks dirty the services of every container on host.
func (c *Catalog) touchHost(host string) {
	if c.all {
		return // everything is recomputed anyway
	}
	for k := range c.byHost[host] {
		c.touchLabels(c.members[k].labels, time.Time{})
	}
}

func (c *Catalog) markDirty(name string, at time.Time) {
	if old, ok := c.dirty[name]; !ok || (!at.IsZero() && (old.IsZero() || at.Before(old))) {
		c.dirty[name] = at
	}
}

// takeDirty returns the services to recompute (with the time of their
// oldest pending change) and forgets them; all means every service.
func (c *Catalog) takeDirty() (map[string]time.Time, bool) {
	d, all := c.dirty, c.all
	c.dirty, c.all = map[string]time.Time{}, false
	return d, all
}

func term(k, v string) string { return k + "=" + v }

// selects reports whether labels match every term of sel.
func selects(sel, labels map[string]string) bool {
	if len(sel) == 0 {
		return false
	}
	for k, v := range sel {
		if got, ok := labels[k]; !ok || got != v {
			return false
		}
	}
	return true
}

// selectedLocked returns the containers s selects, by host then name.
func (c *Catalog) selectedLocked(s *store.Service) []*member {
	var smallest map[ctrKey]struct{}
	first := true
	for k, v := range s.Selector {
		set := c.byLabel[term(k, v)]
		if first || len(set) < len(smallest) {
			smallest, first = set, false
		}
	}
	var out []*member
	for k := range smallest {
		if m := c.members[k]; m != nil && selects(s.Selector, m.labels) {
			out = append(out, m)
		}
	}
	slices.SortFunc(out, func(a, b *member) int {
		return strings.Compare(a.key.host+"/"+a.name+"/"+a.key.id, b.key.host+"/"+b.name+"/"+b.key.id)
	})
	return out
}
