package ipam

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"github.com/docker/go-plugins-helpers/ipam"
	"github.com/podnet/podnet/internal/dockerid"
	"github.com/podnet/podnet/store"
)

// maxTxnRetries bounds every optimistic (read, then compare-and-swap)
// loop. Each retry means another host changed the same keys in between,
// so running out means heavy contention, not a bug.
const maxTxnRetries = 20

// poolEntry is a pool record as listed from etcd.
type poolEntry struct {
	prefix netip.Prefix
	rec    store.Pool
	rev    int64
}

// RequestPool answers IpamDriver.RequestPool. The PoolID is the canonical
// subnet. A subnet already defined in etcd is joined (the same logical
// network on another host); a new one is created race-free; no subnet
// means podnet picks a free one from the auto pools.
func (m *IPAM) RequestPool(ctx context.Context, r *ipam.RequestPoolRequest) (*ipam.RequestPoolResponse, error) {
	req, err := parsePoolRequest(r)
	if err != nil {
		return nil, err
	}
	if err := m.checkHostNetworks(req); err != nil {
		return nil, err
	}
	var p netip.Prefix
	if req.subnet.IsValid() {
		p, err = m.joinPool(ctx, req)
	} else {
		p, err = m.createAutoPool(ctx, req.fam)
	}
	if err != nil {
		return nil, err
	}
	return &ipam.RequestPoolResponse{PoolID: p.String(), Pool: p.String(), Data: map[string]string{}}, nil
}

// joinPool references the pool req.subnet, creating it if no host has.
func (m *IPAM) joinPool(ctx context.Context, req poolRequest) (netip.Prefix, error) {
	p := req.subnet
	if m.svcCIDR.IsValid() && m.svcCIDR.Overlaps(p) {
		return p, fmt.Errorf("subnet %s overlaps the service CIDR %s (podnetd --service-cidr): service VIPs come from it; pick a subnet outside it", p, m.svcCIDR)
	}
	if id, err := m.networkUsing(ctx, p); err != nil {
		return p, err
	} else if id != "" {
		return p, fmt.Errorf("subnet %s is already used by podnet network %s on this host (if `docker network ls` no longer shows it, run `podnetctl gc`)", p, dockerid.Short(id))
	}
	for range maxTxnRetries {
		pools, rev, err := m.listPools(ctx)
		if err != nil {
			return p, err
		}
		ref := store.Put(store.PoolRefKey(p, m.host), store.PoolRef{Host: m.host, Since: m.now()})
		if e, ok := findPool(pools, p); ok {
			if err := sameRange(e, req.ipRange); err != nil {
				return p, err
			}
			// Conditioned on the record as read, so that a host deleting
			// the pool (its last reference gone) cannot slip in between.
			ok, _, err := m.st.Txn(ctx, []store.Cmp{store.ModRevIs(store.PoolKey(p), e.rev)}, []store.Op{ref})
			if err != nil {
				return p, fmt.Errorf("reference pool %s: %w", p, err)
			}
			if ok {
				m.state(p).setReleased(false)
				m.log.Info("pool joined", "pool", p)
				return p, nil
			}
			continue
		}
		for _, e := range pools {
			if e.prefix.Overlaps(p) {
				return p, fmt.Errorf("subnet %s overlaps podnet pool %s: pick a subnet that does not overlap it (or exactly %s to join that network)",
					p, e.prefix, e.prefix)
			}
		}
		lbs, lbRev, err := m.lbPools(ctx)
		if err != nil {
			return p, err
		}
		for c, name := range lbs {
			if c.Overlaps(p) {
				return p, fmt.Errorf("subnet %s overlaps %s of load-balancer pool %s: LoadBalancer services' addresses come from it; pick a subnet outside it",
					p, c, name)
			}
		}
		rec := store.Pool{Subnet: p, IPRange: req.ipRange, V6: req.fam == ipv6, BlockBits: m.blockBitsFor(p), Created: m.now()}
		ok, err := m.createPool(ctx, p, rec, rev, lbRev, ref)
		if err != nil {
			return p, err
		}
		if ok {
			m.state(p).setReleased(false)
			m.log.Info("pool created", "pool", p, "ipRange", rec.IPRange)
			return p, nil
		}
	}
	return p, fmt.Errorf("pool %s: gave up after %d attempts: etcd keys of podnet pools keep changing; retry", p, maxTxnRetries)
}

// createAutoPool claims the first subnet of the auto pools that overlaps
// neither a podnet pool nor a route of this host. Never returning an
// overlapping pool matters: Docker would ask again forever.
func (m *IPAM) createAutoPool(ctx context.Context, fam family) (netip.Prefix, error) {
	var routes []netip.Prefix
	if m.routes != nil {
		rs, err := m.routes()
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("read this host's routes to pick a free subnet: %w (or pass --subnet)", err)
		}
		for _, r := range rs {
			if r.Addr().Is4In6() && r.Bits() >= 96 {
				r = netip.PrefixFrom(r.Addr().Unmap(), r.Bits()-96)
			}
			if r.IsValid() && r.Bits() > 0 { // a default route overlaps everything
				routes = append(routes, r.Masked())
			}
		}
	}
	for range maxTxnRetries {
		pools, rev, err := m.listPools(ctx)
		if err != nil {
			return netip.Prefix{}, err
		}
		lbs, lbRev, err := m.lbPools(ctx)
		if err != nil {
			return netip.Prefix{}, err
		}
		taken := append([]netip.Prefix{}, routes...)
		if m.svcCIDR.IsValid() {
			taken = append(taken, m.svcCIDR)
		}
		for c := range lbs {
			taken = append(taken, c)
		}
		for _, e := range pools {
			taken = append(taken, e.prefix)
		}
		var p netip.Prefix
		var bases []string
		for _, ap := range m.auto {
			if familyOf(ap.Base.Addr().Is6()) != fam {
				continue
			}
			bases = append(bases, fmt.Sprintf("%s in /%d", ap.Base, ap.Bits))
			if c, ok := firstFree(ap, taken); ok {
				p = c
				break
			}
		}
		if !p.IsValid() {
			return p, fmt.Errorf("no free %s subnet in the default address pools (%s): each overlaps a podnet pool or a route of this host; pass --subnet",
				fam, strings.Join(bases, ", "))
		}
		rec := store.Pool{Subnet: p, V6: fam == ipv6, BlockBits: m.blockBitsFor(p), Auto: true, Created: m.now()}
		ref := store.Put(store.PoolRefKey(p, m.host), store.PoolRef{Host: m.host, Since: m.now()})
		ok, err := m.createPool(ctx, p, rec, rev, lbRev, ref)
		if err != nil {
			return p, err
		}
		if ok {
			m.log.Info("pool created", "pool", p, "auto", true)
			return p, nil
		}
	}
	return netip.Prefix{}, fmt.Errorf("pick a %s subnet: gave up after %d attempts: podnet pools keep changing; retry", fam, maxTxnRetries)
}

// createPool writes the pool record and this host's reference in one
// transaction, only if no pool record (rev) and no load-balancer pool
// (lbRev) changed since the listings the overlap check used and the pool
// does not exist: two hosts picking overlapping subnets at once cannot
// both win, nor a pool and a load-balancer pool.
func (m *IPAM) createPool(ctx context.Context, p netip.Prefix, rec store.Pool, rev, lbRev int64, ref store.Op) (bool, error) {
	ok, _, err := m.st.Txn(ctx,
		[]store.Cmp{store.PrefixUnchangedSince(store.PoolsPrefix, rev), store.PrefixUnchangedSince(store.LBPoolsPrefix, lbRev),
			store.Absent(store.PoolKey(p))},
		[]store.Op{store.Put(store.PoolKey(p), rec), ref})
	if err != nil {
		return false, fmt.Errorf("create pool %s: %w", p, err)
	}
	return ok, nil
}

// firstFree is the first subnet of ap overlapping nothing in taken.
func firstFree(ap AutoPool, taken []netip.Prefix) (netip.Prefix, bool) {
	n := uint64(1) << (ap.Bits - ap.Base.Bits())
	for i := uint64(0); i < n; {
		c := nthSubnet(ap.Base, ap.Bits, i)
		var hit netip.Prefix
		for _, t := range taken {
			if t.Overlaps(c) {
				hit = t
				break
			}
		}
		if !hit.IsValid() {
			return c, true
		}
		// Skip every candidate the obstacle covers, not just this one.
		end := lastAddr(hit)
		if !ap.Base.Contains(end) {
			return netip.Prefix{}, false
		}
		i = subnetIndex(ap.Base, ap.Bits, end) + 1
	}
	return netip.Prefix{}, false
}

func (m *IPAM) blockBitsFor(p netip.Prefix) int {
	bits := m.blockBits4
	if p.Addr().Is6() {
		bits = m.blockBits6
	}
	return max(bits, p.Bits())
}

func (m *IPAM) listPools(ctx context.Context) ([]poolEntry, int64, error) {
	kvs, rev, err := m.st.List(ctx, store.PoolsPrefix)
	if err != nil {
		return nil, 0, fmt.Errorf("list pools: %w", err)
	}
	out := make([]poolEntry, 0, len(kvs))
	for _, kv := range kvs {
		p, err := store.PoolOfKey(kv.Key)
		if err != nil {
			m.log.Warn("ignoring malformed pool key", "key", kv.Key, "err", err)
			continue
		}
		e := poolEntry{prefix: p, rev: kv.ModRev}
		if err := kv.Decode(&e.rec); err != nil {
			// Still an obstacle for overlap checks.
			m.log.Warn("undecodable pool record", "pool", p, "err", err)
		}
		out = append(out, e)
	}
	return out, rev, nil
}

func findPool(pools []poolEntry, p netip.Prefix) (poolEntry, bool) {
	for _, e := range pools {
		if e.prefix == p {
			return e, true
		}
	}
	return poolEntry{}, false
}

// sameRange refuses to join a pool defined with another ip-range: hosts
// would disagree on where dynamic addresses come from.
func sameRange(e poolEntry, rng netip.Prefix) error {
	switch {
	case e.rec.IPRange == rng:
		return nil
	case !e.rec.IPRange.IsValid():
		return fmt.Errorf("subnet %s is already defined without an ip-range: create the network without --ip-range on every host", e.prefix)
	default:
		return fmt.Errorf("subnet %s is already defined with ip-range %s: use --ip-range %s on every host", e.prefix, e.rec.IPRange, e.rec.IPRange)
	}
}

// networkUsing returns the ID of a podnet Docker network on this host that
// uses subnet p, or "". Docker asks for the pool before it creates the
// network, so a record found here belongs to another Docker network.
func (m *IPAM) networkUsing(ctx context.Context, p netip.Prefix) (string, error) {
	kvs, _, err := m.st.List(ctx, store.NetworksPrefix(m.host))
	if err != nil {
		return "", fmt.Errorf("list this host's networks: %w", err)
	}
	for _, kv := range kvs {
		var n store.Network
		if err := kv.Decode(&n); err != nil {
			m.log.Warn("undecodable network record ignored in the overlap check", "key", kv.Key, "err", err)
			continue
		}
		for _, q := range n.Pools() {
			if q.Masked() == p {
				if n.ID == "" {
					n.ID = strings.TrimPrefix(kv.Key, store.NetworksPrefix(m.host))
				}
				return n.ID, nil
			}
		}
	}
	return "", nil
}

// ReleasePool answers IpamDriver.ReleasePool: this host stops using the
// pool. Its reference goes, and so do its blocks that hold no container
// address (other hosts may claim them). The last host out deletes the pool
// and everything under it. Absent pools and references are no error.
func (m *IPAM) ReleasePool(ctx context.Context, r *ipam.ReleasePoolRequest) error {
	p, err := parsePoolID(r.PoolID)
	if err != nil {
		return err
	}
	ps := m.state(p)
	ps.slow.Lock()
	defer ps.slow.Unlock()
	defer ps.drop()
	res, err := m.dropHost(ctx, p, m.host, dropIdle)
	if err != nil {
		return fmt.Errorf("release pool %s: %w", p, err)
	}
	ps.setReleased(!res.poolDeleted)
	m.log.Info("pool released", "pool", p, "blocks", res.blocks, "deleted", res.poolDeleted)
	return nil
}

func (ps *poolState) setReleased(v bool) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	ps.released = v
}

func (ps *poolState) isReleased() bool {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	return ps.released
}

// finishRelease completes ReleasePool once an address that outlived it is
// released: Docker releases a network's pool before DeleteNetwork, in
// which the driver releases its own address (a macvlan host-access shim's),
// so the block holding it and the pool stayed behind. Now the host's idle
// blocks go, and the pool if nobody uses it.
func (m *IPAM) finishRelease(ctx context.Context, ps *poolState) error {
	ps.slow.Lock()
	defer ps.slow.Unlock()
	defer ps.drop()
	if _, err := m.dropIdleBlocks(ctx, ps.prefix, m.host); err != nil {
		return err
	}
	deleted, err := m.deletePoolIfUnused(ctx, ps.prefix)
	if err == nil && deleted {
		ps.setReleased(false)
	}
	return err
}

// dropMode says what dropHost removes besides the host's reference.
type dropMode int

const (
	// dropIdle releases the host's blocks that hold no container address.
	dropIdle dropMode = iota
	// dropAll releases all the host's blocks and container addresses (a
	// host gone for good).
	dropAll
)

type dropResult struct {
	blocks      int
	addrs       int
	poolDeleted bool
}

// dropHost removes host's reference to p, its blocks (per mode) and its
// share of the gateway, then deletes the pool if nobody uses it any more.
func (m *IPAM) dropHost(ctx context.Context, p netip.Prefix, host string, mode dropMode) (dropResult, error) {
	var res dropResult
	if _, _, err := m.st.Txn(ctx, nil, []store.Op{store.Delete(store.PoolRefKey(p, host))}); err != nil {
		return res, fmt.Errorf("drop reference of host %s: %w", host, err)
	}
	var err error
	if mode == dropAll {
		res.blocks, res.addrs, err = m.dropAllBlocks(ctx, p, host)
	} else if err = m.releaseTunnel(ctx, p, host); err == nil {
		res.blocks, err = m.dropIdleBlocks(ctx, p, host)
	}
	if err != nil {
		return res, err
	}
	rec, exists, err := m.readPool(ctx, p)
	if err != nil {
		return res, err
	}
	if gw := rec.Gateway; gw.IsValid() {
		if _, err := m.removeSharedHost(ctx, p, gw, host, store.AddrGateway); err != nil {
			return res, err
		}
	}
	if err := m.dropAuxHost(ctx, p, host); err != nil {
		return res, err
	}
	// Runs even without a pool record: it clears leftovers under ipam/<pool>/.
	deleted, err := m.deletePoolIfUnused(ctx, p)
	res.poolDeleted = deleted && exists
	return res, err
}

// deletePoolIfUnused deletes the pool record and everything under
// ipam/<pool>/ when no host references it and no container address is
// left — atomically, so a host joining or allocating meanwhile wins.
func (m *IPAM) deletePoolIfUnused(ctx context.Context, p netip.Prefix) (bool, error) {
	n, err := m.st.Count(ctx, store.PoolRefsPrefix(p))
	if err != nil {
		return false, fmt.Errorf("count references of pool %s: %w", p, err)
	}
	if n > 0 {
		return false, nil
	}
	addrs, rev, err := m.st.List(ctx, store.AddrsPrefix(p))
	if err != nil {
		return false, fmt.Errorf("list addresses of pool %s: %w", p, err)
	}
	for _, kv := range addrs {
		var a store.Address
		if err := kv.Decode(&a); err == nil && (a.Kind == store.AddrGateway || a.Kind == store.AddrAux) {
			continue // shared by the hosts of the pool: they go with it
		}
		m.log.Info("pool kept: no host uses it but container addresses remain (GC releases them)",
			"pool", p, "addresses", len(addrs))
		return false, nil
	}
	ok, _, err := m.st.Txn(ctx,
		[]store.Cmp{store.PrefixEmpty(store.PoolRefsPrefix(p)), store.PrefixUnchangedSince(store.AddrsPrefix(p), rev)},
		[]store.Op{store.DeletePrefix(store.IPAMPrefix(p)), store.Delete(store.PoolKey(p))})
	if err != nil {
		return false, fmt.Errorf("delete pool %s: %w", p, err)
	}
	if ok {
		m.log.Debug("pool deleted", "pool", p)
		if ps := m.loadedState(p); ps != nil {
			ps.drop()
		}
	}
	return ok, nil
}

// readPool reads the pool record; a missing one is not an error.
func (m *IPAM) readPool(ctx context.Context, p netip.Prefix) (store.Pool, bool, error) {
	var rec store.Pool
	if _, err := m.st.Get(ctx, store.PoolKey(p), &rec); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return rec, false, nil
		}
		return rec, false, fmt.Errorf("read pool %s: %w", p, err)
	}
	return rec, true, nil
}
