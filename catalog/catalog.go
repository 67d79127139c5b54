package catalog

import (
	"context"
	"log/slog"
	"maps"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/podnet/podnet/feed"
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
	// eps holds the addresses of each of its podnet endpoints: a slice,
	// not a map, because a container has one or two (a map per member
	// was a fifth of the catalog's memory at 10 000 selected containers).
	eps []memberEP
	// ctr is set for host- and container-mode containers.
	ctr bool
}

// memberEP is one podnet endpoint of a member: its epmeta key and its
// addresses (v4, v6; either may be invalid).
type memberEP struct {
	key   string
	addrs [2]netip.Addr
}

// Catalog is the in-memory view of everything services depend on: the
// services, the containers they may select (epmeta/ and ctrmeta/), the
// hosts' underlay addresses and their liveness. podnetd runs one: the
// proxy agent (package proxy) computes each host's rules from it and the
// cluster DNS (package clusterdns) answers service names from it.
// One-shot copies (Load) answer `podnetctl service get`.
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
	// nets holds what reachability needs of every host's Docker networks
	// (reach.go), by netKey.
	nets map[string]netInfo
	// reserved holds, per registered host, its addresses that no
	// service may take as an external IP (store.Host.ReservedAddrs).
	reserved map[string]map[netip.Addr]string
	byLabel  map[string]map[ctrKey]struct{} // "k=v" → containers
	byTerm   map[string]map[string]struct{} // "k=v" → services selecting it
	byVIP    map[netip.Addr]string
	// Small sets (index.AddSmall): a handful of entries each.
	epByCtr  map[ctrKey][]string // container → its epmeta keys
	children map[ctrKey][]ctrKey // container → container-mode members sharing its stack
	byHost   map[string][]ctrKey // host → its members
	// loaded counts the prefixes whose first snapshot arrived.
	loaded map[string]bool
	// metaSrc holds, per container record key, the copy of each source
	// that gave it (sources.go); layout is each live host's
	// HostAlive.MetaLayout; legacy follows the hosts without the
	// selection index.
	metaSrc map[string][]metaCopy
	layout  map[string]int
	legacy  legacyFeeds
	// legacyWant are the live hosts without the selection index.
	legacyWant map[string]bool
	// selSignal: the selectors changed (SelectorsChanged).
	selSignal chan struct{}
	// dirty holds services whose computed result may have changed since
	// the agent last looked, with the write time of the oldest change (zero
	// when unknown); all says every service is.
	dirty   map[string]time.Time
	all     bool
	changed chan struct{}
	// subs are the other readers' channels (Subscribe).
	subs []chan struct{}
	// gen counts updates, for readers that poll for "anything new" (the
	// DNS records saved on disk) without taking Changed from the agent.
	gen atomic.Uint64

	// Network policies and their selections (selections.go).
	policies  map[string]*store.NetworkPolicy
	sels      map[string]*selection          // policy.Key → selection
	selByTerm map[string]map[string]struct{} // anchor term → selections
	selByKey  map[string]map[string]struct{} // anchor label key → selections
	selAll    map[string]struct{}            // selections without an anchor
	selDirty  map[string]struct{}
	// polChanged says a policy record changed, polAll that everything is
	// to be taken again (a listing), polSince the oldest write not taken.
	polChanged, polAll bool
	polSince           time.Time
	polSignal          chan struct{}
}

// Reserved says why no service may take a as an external IP ("" when it
// may, as far as the registered hosts go): it is an address of a host or
// of its underlay network (store.Host.ReservedAddrs).
func (c *Catalog) Reserved(a netip.Addr) string {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.reservedOf(a)
}

func (c *Catalog) reservedOf(a netip.Addr) string {
	for _, addrs := range c.reserved {
		if why, ok := addrs[a]; ok {
			return why
		}
	}
	return ""
}

// prefixes are what a Catalog always follows (sources.go: and the
// records of hosts without the selection index).
func (c *Catalog) prefixes() []string {
	return []string{store.ServicesPrefix, store.SelectedEndpoints, store.SelectedContainers,
		store.EndpointMetaPrefix(c.self), store.ContainerMetaPrefix(c.self),
		store.AlivePrefix, store.HostsPrefix, store.NetworksPrefix(""), store.PoliciesPrefix}
}

// New returns an empty catalog for host self; v6 says the service
// CIDR is IPv6 (endpoints are then picked by their IPv6 address).
func New(self string, v6 bool, log *slog.Logger) *Catalog {
	if log == nil {
		log = slog.Default()
	}
	return &Catalog{self: self, v6: v6, log: log,
		services: map[string]*store.Service{}, members: map[ctrKey]*member{},
		epmeta: map[string]store.EndpointMeta{}, ctrmeta: map[string]store.ContainerMeta{},
		alive: map[string]bool{}, underlay: map[string]netip.Addr{}, reserved: map[string]map[netip.Addr]string{},
		nets: map[string]netInfo{}, byLabel: map[string]map[ctrKey]struct{}{}, byTerm: map[string]map[string]struct{}{},
		byVIP: map[netip.Addr]string{}, epByCtr: map[ctrKey][]string{},
		children: map[ctrKey][]ctrKey{}, byHost: map[string][]ctrKey{}, loaded: map[string]bool{}, dirty: map[string]time.Time{},
		changed:  make(chan struct{}, 1),
		policies: map[string]*store.NetworkPolicy{}, sels: map[string]*selection{}, selByTerm: map[string]map[string]struct{}{},
		selByKey: map[string]map[string]struct{}{}, selAll: map[string]struct{}{}, selDirty: map[string]struct{}{},
		polSignal: make(chan struct{}, 1), metaSrc: map[string][]metaCopy{}, layout: map[string]int{}, legacyWant: map[string]bool{},
		selSignal: make(chan struct{}, 1)}
}

// Run reads its prefixes from feeds (shared with the overlay and the
// cluster DNS) until ctx ends.
func (c *Catalog) Run(ctx context.Context, feeds *feed.Hub) {
	for _, p := range c.prefixes() {
		defer feeds.Subscribe(p, catalogFollower{c: c, prefix: p})()
	}
	c.runLegacy(ctx, feeds)
}

// Load builds a one-shot catalog from a listing of etcd.
func Load(ctx context.Context, st *store.Store, self string, v6 bool) (*Catalog, error) {
	c := New(self, v6, slog.New(slog.DiscardHandler))
	for _, p := range c.prefixes() {
		kvs, _, err := st.List(ctx, p)
		if err != nil {
			return nil, err
		}
		c.snapshot(p, kvs)
	}
	// Hosts without the selection index: their records, whole.
	for h := range c.legacyWant {
		for _, p := range []string{store.EndpointMetaPrefix(h), store.ContainerMetaPrefix(h)} {
			kvs, _, err := st.List(ctx, p)
			if err != nil {
				return nil, err
			}
			c.snapshot(p, kvs)
		}
	}
	return c, nil
}

// Loaded reports whether every followed prefix has been read once.
func (c *Catalog) Loaded() bool {
	c.mu.RLock()
	defer c.mu.RUnlock()
	for _, p := range c.prefixes() {
		if !c.loaded[p] {
			return false
		}
	}
	return c.legacyLoadedLocked()
}

// Changed is signalled (coalesced) after every update.
func (c *Catalog) Changed() <-chan struct{} { return c.changed }

// Generation counts updates, for readers that poll for "anything new"
// (the DNS records saved on disk) without taking Changed from the agent.
func (c *Catalog) Generation() uint64 { return c.gen.Load() }

// ServiceNames lists the services, sorted.
func (c *Catalog) ServiceNames() []string {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return slices.Sorted(maps.Keys(c.services))
}

// Alive reports whether host holds its liveness lease.
func (c *Catalog) Alive(host string) bool {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.alive[host]
}

// HostCounts counts the registered hosts (a hosts/ record with an
// underlay address) that hold their liveness lease and those that do not;
// loaded is false until both prefixes have been read once (an empty view
// would count nobody). podnetd exports it as podnet_hosts: from the
// metrics of any host, a host that stopped renewing its lease shows as
// down, even when it is the one Prometheus cannot reach.
func (c *Catalog) HostCounts() (alive, down int, loaded bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	for h := range c.underlay {
		if c.alive[h] {
			alive++
		} else {
			down++
		}
	}
	return alive, down, c.loaded[store.HostsPrefix] && c.loaded[store.AlivePrefix]
}

// ServiceByVIP returns the service holding VIP a.
func (c *Catalog) ServiceByVIP(a netip.Addr) (string, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	n, ok := c.byVIP[a.Unmap()]
	return n, ok
}

type catalogFollower struct {
	c      *Catalog
	prefix string
}

func (f catalogFollower) Snapshot(kvs []store.KV) {
	f.c.snapshot(f.prefix, kvs)
	if f.prefix == store.AlivePrefix {
		f.c.syncLegacy()
	}
}

func (f catalogFollower) Changes(evs []store.Event) {
	c := f.c
	c.mu.Lock()
	for _, ev := range evs {
		kv := store.KV{Key: ev.Key, Value: ev.Value, ModRev: ev.ModRev}
		c.applyLocked(f.prefix, kv, ev.Type == store.EventDelete)
	}
	c.mu.Unlock()
	c.signal()
	if f.prefix == store.AlivePrefix {
		c.syncLegacy()
	}
}

func (c *Catalog) signal() {
	c.gen.Add(1)
	c.notifySubs()
	c.notify()
}

func (c *Catalog) notify() {
	select {
	case c.changed <- struct{}{}:
	default:
	}
}

func (c *Catalog) markDirty(name string, at time.Time) {
	if old, ok := c.dirty[name]; !ok || (!at.IsZero() && (old.IsZero() || at.Before(old))) {
		c.dirty[name] = at
	}
}
