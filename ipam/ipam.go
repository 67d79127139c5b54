package ipam

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"time"

	"github.com/docker/go-plugins-helpers/ipam"
	"github.com/podnet/podnet/netspec"
	"github.com/podnet/podnet/store"
)

// Docker's RequestAddress option keys (libnetwork ipamapi / netlabel).
const (
	optRequestAddressType = "RequestAddressType"
	requestTypeGateway    = "com.docker.network.gateway"
)

// Config wires an IPAM.
type Config struct {
	// Host is this podnetd's host name: the owner of its blocks and
	// addresses in etcd.
	Host   string
	Store  *store.Store
	Logger *slog.Logger
	// BlockBits4 and BlockBits6 are the prefix lengths of the blocks hosts
	// claim (default 26 and 122; a pool smaller than a block is one block).
	BlockBits4, BlockBits6 int
	// AutoPools are where subnets come from when Docker sends no --subnet
	// (default 10.208.0.0/12 cut in /24 and fd70:6f64:6e65::/48 cut in
	// /64; a family missing from the list gets its default).
	AutoPools []AutoPool
	// HostRoutes returns this host's routes; auto pools never overlap them.
	// Injected so that ipam stays free of netlink. Nil means no routes.
	HostRoutes func() ([]netip.Prefix, error)
	// ServiceCIDR is the cluster's service VIP range: no pool may overlap
	// it (invalid: no check).
	ServiceCIDR netip.Prefix
	// HostNetworks returns the networks of this host's interfaces
	// (podnet's own links left out); a --subnet overlapping one is
	// refused (netspec.CheckSafe). Nil means none.
	HostNetworks func() ([]netspec.HostNetwork, error)
}

// AutoPool is a range podnet cuts subnets of Bits from.
type AutoPool struct {
	Base netip.Prefix
	Bits int
}

// kv is the part of *store.Store the IPAM uses; tests wrap it to count
// round trips.
type kv interface {
	Get(ctx context.Context, key string, v any) (int64, error)
	Txn(ctx context.Context, cmps []store.Cmp, ops []store.Op) (bool, int64, error)
	List(ctx context.Context, prefix string) ([]store.KV, int64, error)
	ListRange(ctx context.Context, from, to string) ([]store.KV, error)
	Count(ctx context.Context, prefix string) (int64, error)
}

var _ kv = (*store.Store)(nil)

// IPAM is podnet's Docker IPAM driver. It is safe for concurrent use.
type IPAM struct {
	host       string
	st         kv
	log        *slog.Logger
	blockBits4 int
	blockBits6 int
	auto       []AutoPool
	routes     func() ([]netip.Prefix, error)
	svcCIDR    netip.Prefix
	hostNets   func() ([]netspec.HostNetwork, error)

	mu    sync.Mutex
	pools map[netip.Prefix]*poolState
	// tunnelMu makes finding and reserving a tunnel address one step.
	tunnelMu sync.Mutex
}

// New validates cfg and returns an IPAM. It does not touch etcd: state is
// loaded per pool on first use, so podnetd can answer dockerd before etcd
// is reachable.
func New(cfg Config) (*IPAM, error) {
	if cfg.Host == "" {
		return nil, errors.New("ipam: no host name given")
	}
	if cfg.Store == nil {
		return nil, errors.New("ipam: no store given")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.BlockBits4 == 0 {
		cfg.BlockBits4 = 26
	}
	if cfg.BlockBits6 == 0 {
		cfg.BlockBits6 = 122
	}
	// Blocks of 4 to 65536 addresses: a block's bitmap stays small, and a
	// block always has a usable address besides the reserved ones.
	if cfg.BlockBits4 < 16 || cfg.BlockBits4 > 30 {
		return nil, fmt.Errorf("ipam: IPv4 block size /%d: want /16 to /30", cfg.BlockBits4)
	}
	if cfg.BlockBits6 < 112 || cfg.BlockBits6 > 126 {
		return nil, fmt.Errorf("ipam: IPv6 block size /%d: want /112 to /126", cfg.BlockBits6)
	}
	auto, err := autoPools(cfg.AutoPools)
	if err != nil {
		return nil, err
	}
	return &IPAM{
		host: cfg.Host, st: cfg.Store, log: cfg.Logger,
		blockBits4: cfg.BlockBits4, blockBits6: cfg.BlockBits6,
		auto: auto, routes: cfg.HostRoutes, svcCIDR: cfg.ServiceCIDR, hostNets: cfg.HostNetworks,
		pools: map[netip.Prefix]*poolState{},
	}, nil
}

func autoPools(given []AutoPool) ([]AutoPool, error) {
	var out []AutoPool
	have4, have6 := false, false
	for _, ap := range given {
		if !ap.Base.IsValid() {
			return nil, fmt.Errorf("ipam: default address pool: no base subnet given")
		}
		ap.Base = ap.Base.Masked()
		maxBits := 30
		if ap.Base.Addr().Is6() {
			maxBits = 126
		}
		if ap.Bits < ap.Base.Bits() || ap.Bits > maxBits || ap.Bits-ap.Base.Bits() > 62 {
			return nil, fmt.Errorf("ipam: default address pool %s cut in /%d: want a length from /%d to /%d",
				ap.Base, ap.Bits, ap.Base.Bits(), min(maxBits, ap.Base.Bits()+62))
		}
		have4 = have4 || ap.Base.Addr().Is4()
		have6 = have6 || ap.Base.Addr().Is6()
		out = append(out, ap)
	}
	if !have4 {
		out = append(out, AutoPool{Base: netip.MustParsePrefix("10.208.0.0/12"), Bits: 24})
	}
	if !have6 {
		out = append(out, AutoPool{Base: netip.MustParsePrefix("fd70:6f64:6e65::/48"), Bits: 64})
	}
	return out, nil
}

// GetDefaultAddressSpaces answers IpamDriver.GetDefaultAddressSpaces.
func (m *IPAM) GetDefaultAddressSpaces() *ipam.AddressSpacesResponse {
	return &ipam.AddressSpacesResponse{LocalDefaultAddressSpace: netspec.LocalAddressSpace, GlobalDefaultAddressSpace: netspec.GlobalAddressSpace}
}

func (m *IPAM) now() time.Time { return time.Now().UTC() }

// poolState is what this host keeps in memory about one pool: its own
// blocks and which of their addresses are taken, so that a dynamic
// allocation needs a single etcd write.
type poolState struct {
	prefix netip.Prefix

	// slow serialises the slow paths of this pool on this host (loading,
	// claiming a block, borrowing, gateway and pool changes). It is held
	// across etcd calls, which are all bounded by the store's deadline.
	slow sync.Mutex

	// mu guards the fields below and is never held across an etcd call.
	mu     sync.Mutex
	loaded bool
	gen    uint64 // bumped when the state is dropped (ReleasePool, pool deleted)
	rec    store.Pool
	rng    netip.Prefix // where dynamic allocation happens (ip-range or subnet)
	blocks blockSet
	// pending are addresses a request is writing right now.
	pending map[netip.Addr]bool
	// mine are container addresses this host allocated (in its own blocks
	// or borrowed), so their release is a single delete.
	mine map[netip.Addr]bool
	last netip.Addr // the last address handed out dynamically
	// released: this host's ReleasePool dropped its reference, and an
	// address released afterwards finishes the pool's cleanup (see
	// finishRelease). Kept across drop().
	released bool
}

// state returns the in-memory state of pool p, creating it (not loaded).
func (m *IPAM) state(p netip.Prefix) *poolState {
	m.mu.Lock()
	defer m.mu.Unlock()
	ps := m.pools[p]
	if ps == nil {
		ps = &poolState{prefix: p, pending: map[netip.Addr]bool{}, mine: map[netip.Addr]bool{}}
		m.pools[p] = ps
	}
	return ps
}

// loadedState returns p's state only if it exists (for GC bookkeeping).
func (m *IPAM) loadedState(p netip.Prefix) *poolState {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.pools[p]
}

// drop forgets everything cached about the pool; the next request reloads
// it from etcd. Requests in flight see the generation change and leave
// the fresh state alone.
func (ps *poolState) drop() {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	ps.loaded = false
	ps.gen++
	ps.blocks = nil
	ps.mine = map[netip.Addr]bool{}
}

// markUsed records that a is taken (in one of this host's blocks).
func (ps *poolState) markUsed(a netip.Addr) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if b := ps.blocks.find(a); b != nil {
		b.markUsed(a)
	}
}

// forget records that a is free again.
func (ps *poolState) forget(a netip.Addr) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	delete(ps.mine, a)
	if b := ps.blocks.find(a); b != nil && !ps.pending[a] {
		b.markFree(a)
	}
}
