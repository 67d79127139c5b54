package ipam

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"github.com/docker/go-plugins-helpers/ipam"
	"github.com/podnet/podnet/internal/dockerid"
	"github.com/podnet/podnet/netspec"
	"github.com/podnet/podnet/store"
)

// errExhausted marks a pool (or its ip-range) with no free address left.
var errExhausted = errors.New("no free address")

// maxAllocAttempts bounds one dynamic allocation. Every attempt either
// succeeds or learns something (a conflicting address, a block claimed),
// so the bound is a safety net, never reached in practice.
const maxAllocAttempts = 1024

// maxBorrowScan bounds the walk over a pool's dynamic range when looking
// for an address to borrow.
const maxBorrowScan = 1 << 20

// RequestAddress answers IpamDriver.RequestAddress: the gateway (option
// RequestAddressType), an explicit address (--ip, --aux-address) or the
// next free address of one of this host's blocks.
func (m *IPAM) RequestAddress(ctx context.Context, r *ipam.RequestAddressRequest) (_ *ipam.RequestAddressResponse, err error) {
	defer func() { observeRequest(r, err) }()
	p, err := parsePoolID(r.PoolID)
	if err != nil {
		return nil, err
	}
	gateway, err := isGatewayRequest(r.Options)
	if err != nil {
		return nil, err
	}
	var want netip.Addr
	if r.Address != "" {
		if want, err = parseAddress(p, r.Address); err != nil {
			return nil, err
		}
	}
	ps := m.state(p)
	if err := m.ensureLoaded(ctx, ps); err != nil {
		return nil, err
	}
	var a netip.Addr
	switch {
	case gateway:
		a, err = m.requestGateway(ctx, ps, want)
	case want.IsValid():
		var aux bool
		if aux, err = m.isAuxRequest(ctx, p); err == nil && aux {
			a, err = m.requestAux(ctx, ps, want)
		} else if err == nil {
			a, err = m.requestExplicit(ctx, ps, want)
		}
	default:
		a, err = m.allocate(ctx, ps, store.AddrContainer)
	}
	if err != nil {
		return nil, err
	}
	// The pool's mask: the container sees the whole subnet as on-link.
	return &ipam.RequestAddressResponse{Address: netip.PrefixFrom(a, p.Bits()).String(), Data: map[string]string{}}, nil
}

// allocate hands out the next free address of this host's blocks, as a
// record of kind: one etcd transaction in the common case. When the
// blocks are full it claims a block, then borrows from other hosts'
// blocks.
func (m *IPAM) allocate(ctx context.Context, ps *poolState, kind string) (netip.Addr, error) {
	for range maxAllocAttempts {
		a, gen, ok := ps.reserveNext()
		if !ok {
			var err error
			if a, gen, err = m.grow(ctx, ps); err != nil {
				return netip.Addr{}, err
			}
			if !a.IsValid() {
				continue // a block was claimed or freed: pick again
			}
		}
		created, err := m.createAddr(ctx, ps, a, gen, kind)
		if err != nil {
			return netip.Addr{}, err
		}
		if created {
			return a, nil
		}
		// Someone holds it (an --ip from another host, a borrow): learn
		// the whole block at once rather than one conflict at a time.
		if err := m.refreshBlockOf(ctx, ps, a); err != nil {
			return netip.Addr{}, err
		}
	}
	return netip.Addr{}, fmt.Errorf("allocate in pool %s: gave up after %d attempts; retry", ps.prefix, maxAllocAttempts)
}

// reserveNext picks the next free address of this host's blocks after the
// last one handed out and marks it in flight.
func (ps *poolState) reserveNext() (netip.Addr, uint64, bool) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if !ps.loaded {
		return netip.Addr{}, 0, false
	}
	a, b, ok := ps.blocks.next(ps.last)
	if !ok {
		return netip.Addr{}, 0, false
	}
	b.markUsed(a)
	ps.pending[a] = true
	ps.last = a
	return a, ps.gen, true
}

// reserve marks an explicitly requested address in flight.
func (ps *poolState) reserve(a netip.Addr) (uint64, error) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if ps.pending[a] {
		return 0, fmt.Errorf("address %s is being allocated by another request right now", a)
	}
	ps.pending[a] = true
	ps.markUsedLocked(a)
	return ps.gen, nil
}

func (ps *poolState) hasFree() bool {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	_, _, ok := ps.blocks.next(ps.last)
	return ok
}

// createAddr writes a's key if it is absent — the one round trip of an
// allocation — and settles the in-memory state: mine if created, taken if
// someone else has it, free again on error. gen guards against the state
// having been dropped meanwhile.
func (m *IPAM) createAddr(ctx context.Context, ps *poolState, a netip.Addr, gen uint64, kind string) (bool, error) {
	key := store.AddrKey(ps.prefix, a)
	rec := store.Address{IP: a, Kind: kind, Host: m.host, Since: m.now()}
	ps.mu.Lock()
	own := ps.blocks.find(a) != nil
	ps.mu.Unlock()
	ok, _, err := m.st.Txn(ctx, []store.Cmp{store.Absent(key)}, []store.Op{store.Put(key, rec), m.exceptionOp(ps.prefix, a, own)})
	ps.mu.Lock()
	defer ps.mu.Unlock()
	delete(ps.pending, a)
	if err != nil {
		if b := ps.blocks.find(a); b != nil && ps.gen == gen && !ps.mine[a] {
			b.markFree(a)
		}
		return false, fmt.Errorf("allocate %s in pool %s: %w", a, ps.prefix, err)
	}
	if ok && ps.gen == gen {
		ps.mine[a] = true
	}
	return ok, nil
}

// refreshBlockOf re-reads the own block holding a, if any.
func (m *IPAM) refreshBlockOf(ctx context.Context, ps *poolState, a netip.Addr) error {
	ps.mu.Lock()
	b := ps.blocks.find(a)
	ps.mu.Unlock()
	if b == nil {
		return nil
	}
	from, to := blockRange(ps.prefix, b.cidr)
	kvs, err := m.st.ListRange(ctx, from, to)
	if err != nil {
		return fmt.Errorf("read block %s of pool %s: %w", b.cidr, ps.prefix, err)
	}
	l := m.fold(ps.prefix, kvs)
	ps.mu.Lock()
	defer ps.mu.Unlock()
	for _, u := range l.used {
		ps.markUsedLocked(u)
	}
	for _, u := range l.mine {
		ps.mine[u] = true
	}
	return nil
}

// grow makes room when this host's blocks are full: claim a new block;
// if none is left, re-read the pool's addresses (others may have freed
// some in our blocks) and else borrow a free address from another host's
// block, Calico-style. It returns a borrowed address (in flight), or none
// when the caller should just pick again.
func (m *IPAM) grow(ctx context.Context, ps *poolState) (netip.Addr, uint64, error) {
	ps.slow.Lock()
	defer ps.slow.Unlock()
	ps.mu.Lock()
	loaded := ps.loaded
	ps.mu.Unlock()
	if !loaded { // dropped since ensureLoaded (a concurrent ReleasePool)
		return netip.Addr{}, 0, m.load(ctx, ps)
	}
	if ps.hasFree() { // another request grew the pool while we waited
		return netip.Addr{}, 0, nil
	}
	claimed, err := m.claimBlock(ctx, ps)
	if err != nil || claimed {
		return netip.Addr{}, 0, err
	}
	kvs, _, err := m.st.List(ctx, store.AddrsPrefix(ps.prefix))
	if err != nil {
		return netip.Addr{}, 0, fmt.Errorf("list addresses of pool %s: %w", ps.prefix, err)
	}
	l := m.fold(ps.prefix, kvs)
	ps.resync(l.used, l.mine)
	if ps.hasFree() {
		return netip.Addr{}, 0, nil
	}
	if a, gen, ok := ps.reserveBorrow(l.used); ok {
		m.log.Info("every block of the pool is claimed: borrowing an address from another host's block",
			"pool", ps.prefix, "address", a)
		return a, gen, nil
	}
	return netip.Addr{}, 0, ps.exhausted()
}

// reserveBorrow marks in flight the first free address of the dynamic
// range according to used (a listing of the whole pool).
func (ps *poolState) reserveBorrow(used []netip.Addr) (netip.Addr, uint64, bool) {
	taken := make(map[netip.Addr]bool, len(used))
	for _, a := range used {
		taken[a] = true
	}
	ps.mu.Lock()
	defer ps.mu.Unlock()
	a := ps.rng.Masked().Addr()
	for i := 0; i < maxBorrowScan && a.IsValid() && ps.rng.Contains(a); i, a = i+1, a.Next() {
		if taken[a] || ps.pending[a] || ps.mine[a] || netspec.ReservedReason(ps.prefix, a) != "" {
			continue
		}
		ps.pending[a] = true
		ps.markUsedLocked(a)
		return a, ps.gen, true
	}
	return netip.Addr{}, 0, false
}

func (ps *poolState) exhausted() error {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	where := ps.prefix.String()
	if ps.rng != ps.prefix {
		where += " (ip-range " + ps.rng.String() + ")"
	}
	return fmt.Errorf("%w in pool %s: all %s usable addresses are allocated", errExhausted, where, usableCount(ps.prefix, ps.rng))
}

// requestExplicit allocates exactly a for a container (--ip; Docker sends
// --aux-address alike, but only before the network exists: requestAux).
// It may lie outside the ip-range and in any block.
func (m *IPAM) requestExplicit(ctx context.Context, ps *poolState, a netip.Addr) (netip.Addr, error) {
	if why := netspec.ReservedReason(ps.prefix, a); why != "" {
		return netip.Addr{}, fmt.Errorf("address %s is %s of pool %s and cannot be given to a container", a, why, ps.prefix)
	}
	for range 3 {
		gen, err := ps.reserve(a)
		if err != nil {
			return netip.Addr{}, err
		}
		created, err := m.createAddr(ctx, ps, a, gen, store.AddrContainer)
		if err != nil {
			return netip.Addr{}, err
		}
		if created {
			return a, nil
		}
		var holder store.Address
		if _, err := m.st.Get(ctx, store.AddrKey(ps.prefix, a), &holder); err == nil {
			return netip.Addr{}, fmt.Errorf("address %s is already in use (%s)", a, describe(holder))
		} else if !errors.Is(err, store.ErrNotFound) {
			return netip.Addr{}, fmt.Errorf("address %s is already in use (holder unknown: %w)", a, err)
		}
		// Released between our write and our read: try again.
	}
	return netip.Addr{}, fmt.Errorf("address %s keeps being taken and released; retry", a)
}

// describe names who holds an address, for error messages.
func describe(a store.Address) string {
	if a.Kind == store.AddrGateway {
		return "gateway of the network, hosts " + strings.Join(a.Hosts, ",")
	}
	if a.Kind == store.AddrAux {
		return "reserved with --aux-address by hosts " + strings.Join(a.Hosts, ",")
	}
	s := a.Kind + ", host " + a.Host
	if a.Endpoint != "" {
		return s + ", endpoint " + dockerid.Short(a.Endpoint)
	}
	return s + ", no endpoint yet: a container being started, or an --aux-address"
}

// ReleaseAddress answers IpamDriver.ReleaseAddress (a plain IP). A
// container address is deleted only by the host that owns it; a gateway
// loses this host from its users. Absent addresses and pools are fine.
func (m *IPAM) ReleaseAddress(ctx context.Context, r *ipam.ReleaseAddressRequest) error {
	p, err := parsePoolID(r.PoolID)
	if err != nil {
		return err
	}
	a, err := parseAddress(p, r.Address)
	if err != nil {
		return err
	}
	ps := m.state(p)
	if err := m.ensureLoaded(ctx, ps); err != nil {
		if errors.Is(err, errUnknownPool) {
			return nil // the pool went, and its addresses with it
		}
		return err
	}
	ps.mu.Lock()
	mine := ps.mine[a]
	ps.mu.Unlock()
	if mine { // the common case: one delete
		if _, _, err := m.st.Txn(ctx, nil, addrDeleteOps(p, a)); err != nil {
			return fmt.Errorf("release address %s of pool %s: %w", a, p, err)
		}
		ps.forget(a)
	} else if err := m.releaseChecked(ctx, ps, a); err != nil {
		return err
	}
	if ps.isReleased() {
		return m.finishRelease(ctx, ps)
	}
	return nil
}

// releaseChecked releases an address this host has no memory of owning:
// read its record first and act on its kind and owner.
func (m *IPAM) releaseChecked(ctx context.Context, ps *poolState, a netip.Addr) error {
	p, key := ps.prefix, store.AddrKey(ps.prefix, a)
	for range maxTxnRetries {
		var rec store.Address
		rev, err := m.st.Get(ctx, key, &rec)
		switch {
		case errors.Is(err, store.ErrNotFound):
			ps.forget(a)
			return nil
		case err != nil:
			return fmt.Errorf("release address %s of pool %s: %w", a, p, err)
		case rec.Kind == store.AddrGateway || rec.Kind == store.AddrAux:
			ps.slow.Lock()
			deleted, err := m.removeSharedHost(ctx, p, a, m.host, rec.Kind)
			ps.slow.Unlock()
			if deleted {
				ps.forget(a)
			}
			return err
		case rec.Host != m.host:
			m.log.Warn("not releasing an address owned by another host", "pool", p, "address", a,
				"owner", rec.Host, "endpoint", rec.Endpoint)
			return nil
		}
		ok, _, err := m.st.Txn(ctx, []store.Cmp{store.ModRevIs(key, rev)}, addrDeleteOps(p, a))
		if err != nil {
			return fmt.Errorf("release address %s of pool %s: %w", a, p, err)
		}
		if ok {
			ps.forget(a)
			return nil
		}
	}
	return fmt.Errorf("release address %s of pool %s: its record keeps changing; retry", a, p)
}

// exceptionOp is the exception record's share of the transaction that
// creates a container address of this host: written when the address lies
// outside this host's blocks (other hosts then route it as a /32 to this
// host, without following every address of the pool), deleted otherwise
// (a record left by a podnetd older than layout 2 would misroute it). The
// delete of an absent key costs nothing and notifies no watcher.
func (m *IPAM) exceptionOp(p netip.Prefix, a netip.Addr, own bool) store.Op {
	claimant := ""
	if own {
		claimant = m.host
	}
	if store.NeedsException(store.AddrContainer, m.host, claimant) {
		return store.Put(store.ExcKey(p, a), store.Exception{Host: m.host})
	}
	return store.Delete(store.ExcKey(p, a))
}

// addrDeleteOps releases an address: its record and its exception record
// (if any) go in one transaction.
func addrDeleteOps(p netip.Prefix, a netip.Addr) []store.Op {
	return []store.Op{store.Delete(store.AddrKey(p, a)), store.Delete(store.ExcKey(p, a))}
}
