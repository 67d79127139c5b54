package ipam

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"net/netip"
	"time"

	"github.com/podnet/podnet/store"
)

// blockEntry is a block key as listed from etcd.
type blockEntry struct {
	cidr netip.Prefix
	host string
	rev  int64
}

// blockRange is the key range [from, to) holding block b's address keys:
// address keys are fixed-width hex, so a block is one contiguous range
// (though not a key prefix unless its length is a multiple of 4).
func blockRange(p, b netip.Prefix) (string, string) {
	return store.AddrKey(p, b.Addr()), store.AddrKey(p, lastAddr(b)) + "\x00"
}

// addrFromKey reverses store.AddrKey.
func addrFromKey(p netip.Prefix, key string) (netip.Addr, bool) {
	k, err := store.ParseIPAMKey(p, key)
	return k.Addr, err == nil && k.Kind == store.KindAddr
}

func (m *IPAM) listBlocks(ctx context.Context, p netip.Prefix) ([]blockEntry, error) {
	kvs, _, err := m.st.List(ctx, store.BlocksPrefix(p))
	if err != nil {
		return nil, fmt.Errorf("list blocks of pool %s: %w", p, err)
	}
	out := make([]blockEntry, 0, len(kvs))
	for _, kv := range kvs {
		k, err := store.ParseIPAMKey(p, kv.Key)
		if err != nil {
			m.log.Warn("ignoring malformed block key", "key", kv.Key, "err", err)
			continue
		}
		var b store.Block
		if err := kv.Decode(&b); err != nil {
			m.log.Warn("undecodable block record", "key", kv.Key, "err", err)
		}
		out = append(out, blockEntry{cidr: k.Block, host: b.Host, rev: kv.ModRev})
	}
	return out, nil
}

// listing is what a range of address keys says, folded for one host.
type listing struct {
	used      []netip.Addr
	mine      []netip.Addr // this host's container addresses
	latest    netip.Addr   // this host's most recent container address
	latestAt  time.Time
	maxModRev int64
}

func (m *IPAM) fold(p netip.Prefix, kvs []store.KV) listing {
	var l listing
	for _, kv := range kvs {
		a, ok := addrFromKey(p, kv.Key)
		if !ok {
			continue
		}
		l.used = append(l.used, a)
		l.maxModRev = max(l.maxModRev, kv.ModRev)
		var rec store.Address
		if err := kv.Decode(&rec); err != nil || rec.Kind == store.AddrGateway || rec.Host != m.host {
			continue
		}
		l.mine = append(l.mine, a)
		if !rec.Since.Before(l.latestAt) {
			l.latest, l.latestAt = a, rec.Since
		}
	}
	return l
}

// ensureLoaded loads the pool's record and this host's blocks from etcd
// the first time the pool is used by this process.
func (m *IPAM) ensureLoaded(ctx context.Context, ps *poolState) error {
	ps.mu.Lock()
	loaded := ps.loaded
	ps.mu.Unlock()
	if loaded {
		return nil
	}
	ps.slow.Lock()
	defer ps.slow.Unlock()
	ps.mu.Lock()
	loaded = ps.loaded
	ps.mu.Unlock()
	if loaded {
		return nil
	}
	return m.load(ctx, ps)
}

// load reads the pool record, lists the pool's blocks and reads each of
// this host's blocks (one range read each). Called with ps.slow held.
func (m *IPAM) load(ctx context.Context, ps *poolState) error {
	p := ps.prefix
	var rec store.Pool
	if _, err := m.st.Get(ctx, store.PoolKey(p), &rec); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("pool %s: %w: no host requested it, or it was deleted; recreate the Docker network", p, errUnknownPool)
		}
		return fmt.Errorf("load pool %s: %w", p, err)
	}
	rng := p
	if r := rec.IPRange; r.IsValid() && p.Contains(r.Addr()) && r.Bits() >= p.Bits() {
		rng = r.Masked()
	}
	if rec.BlockBits < p.Bits() || rec.BlockBits > p.Addr().BitLen() || hostBits(netip.PrefixFrom(p.Addr(), rec.BlockBits)) > 16 {
		rec.BlockBits = m.blockBitsFor(p)
	}
	entries, err := m.listBlocks(ctx, p)
	if err != nil {
		return err
	}
	var blocks blockSet
	var mine []netip.Addr
	var latest netip.Addr
	var latestAt time.Time
	for _, e := range entries {
		if e.host != m.host || e.cidr.Bits() != rec.BlockBits || !p.Contains(e.cidr.Addr()) {
			continue
		}
		from, to := blockRange(p, e.cidr)
		kvs, err := m.st.ListRange(ctx, from, to)
		if err != nil {
			return fmt.Errorf("load block %s of pool %s: %w", e.cidr, p, err)
		}
		b := newBlock(e.cidr, p, rng)
		l := m.fold(p, kvs)
		for _, a := range l.used {
			b.markUsed(a)
		}
		mine = append(mine, l.mine...)
		if l.latest.IsValid() && !l.latestAt.Before(latestAt) {
			latest, latestAt = l.latest, l.latestAt
		}
		blocks = blocks.insert(b)
	}
	ps.mu.Lock()
	defer ps.mu.Unlock()
	ps.rec, ps.rng, ps.blocks = rec, rng, blocks
	for _, a := range mine {
		ps.mine[a] = true
	}
	for a := range ps.pending {
		ps.markUsedLocked(a)
	}
	if !ps.last.IsValid() {
		// Continue after the address handed out most recently before a
		// restart, not from the start of the block.
		ps.last = latest
	}
	ps.loaded = true
	m.log.Debug("pool loaded", "pool", p, "blocks", len(blocks), "addresses", len(mine))
	return nil
}

// claimBlock claims an unclaimed block of the pool's dynamic range for
// this host (compare-and-swap on the block key) and loads its addresses.
// The search starts at an offset derived from the host name so that hosts
// starting together do not all race for the same block. It reports false
// when every block is claimed. Called with ps.slow held.
func (m *IPAM) claimBlock(ctx context.Context, ps *poolState) (bool, error) {
	p := ps.prefix
	ps.mu.Lock()
	rng, bits := ps.rng, ps.rec.BlockBits
	ps.mu.Unlock()
	entries, err := m.listBlocks(ctx, p)
	if err != nil {
		return false, err
	}
	claimed := make(map[netip.Prefix]bool, len(entries))
	for _, e := range entries {
		claimed[e.cidr] = true
	}
	// The blocks overlapping the dynamic range: one if the range is
	// smaller than a block, else the range cut in blocks (at most 2^62 of
	// them are searched, which is never a limit in practice).
	space, n := rng, uint64(1)
	if rng.Bits() < bits {
		n = uint64(1) << min(bits-rng.Bits(), 62)
	} else {
		space = netip.PrefixFrom(rng.Addr(), bits).Masked()
	}
	h := fnv.New64a()
	_, _ = h.Write([]byte(m.host))
	start := h.Sum64() % n
	for i := uint64(0); i < n; i++ {
		c := nthSubnet(space, bits, (start+i)%n)
		if claimed[c] {
			continue
		}
		b := newBlock(c, p, rng)
		if b.free() == 0 {
			continue
		}
		key := store.BlockKey(p, c)
		ok, _, err := m.st.Txn(ctx, []store.Cmp{store.Absent(key)}, []store.Op{store.Put(key, store.Block{Host: m.host, Claimed: m.now()})})
		if err != nil {
			return false, fmt.Errorf("claim block %s of pool %s: %w", c, p, err)
		}
		if !ok { // another host was faster
			claimed[c] = true
			continue
		}
		// The block may already hold addresses: the gateway, --ip
		// addresses, addresses other hosts borrowed.
		from, to := blockRange(p, c)
		kvs, err := m.st.ListRange(ctx, from, to)
		if err != nil {
			return false, fmt.Errorf("load claimed block %s of pool %s: %w", c, p, err)
		}
		l := m.fold(p, kvs)
		ps.mu.Lock()
		for _, a := range l.used {
			b.markUsed(a)
		}
		for _, a := range l.mine {
			ps.mine[a] = true
		}
		for a := range ps.pending {
			if c.Contains(a) {
				b.markUsed(a)
			}
		}
		ps.blocks = ps.blocks.insert(b)
		ps.mu.Unlock()
		m.log.Info("block claimed", "pool", p, "block", c, "free", b.free())
		return true, nil
	}
	return false, nil
}

// resync rebuilds this host's blocks from a listing of all the pool's
// addresses: addresses other hosts released in them become free again.
// What is mine or in flight stays taken (it may be newer than the listing).
func (ps *poolState) resync(used, mine []netip.Addr) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	for _, b := range ps.blocks {
		copy(b.used, b.fixed)
	}
	for _, a := range mine {
		ps.mine[a] = true
	}
	for _, a := range used {
		ps.markUsedLocked(a)
	}
	for a := range ps.mine {
		ps.markUsedLocked(a)
	}
	for a := range ps.pending {
		ps.markUsedLocked(a)
	}
}

func (ps *poolState) markUsedLocked(a netip.Addr) {
	if b := ps.blocks.find(a); b != nil {
		b.markUsed(a)
	}
}

// dropIdleBlocks releases host's blocks of p that hold no container
// address, each only if nothing in it changed since it was read.
func (m *IPAM) dropIdleBlocks(ctx context.Context, p netip.Prefix, host string) (int, error) {
	entries, err := m.listBlocks(ctx, p)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, e := range entries {
		if e.host != host {
			continue
		}
		from, to := blockRange(p, e.cidr)
		kvs, err := m.st.ListRange(ctx, from, to)
		if err != nil {
			return n, fmt.Errorf("read block %s of pool %s: %w", e.cidr, p, err)
		}
		busy := false
		var maxRev int64
		for _, kv := range kvs {
			maxRev = max(maxRev, kv.ModRev)
			var a store.Address
			// Gateway and aux addresses belong to the pool, not the block.
			if err := kv.Decode(&a); err != nil || a.Kind != store.AddrGateway && a.Kind != store.AddrAux {
				busy = true
			}
		}
		if busy {
			continue
		}
		key := store.BlockKey(p, e.cidr)
		ok, _, err := m.st.Txn(ctx,
			[]store.Cmp{store.ModRevIs(key, e.rev), store.RangeUnchangedSince(from, to, maxRev)},
			[]store.Op{store.Delete(key)})
		if err != nil {
			return n, fmt.Errorf("release block %s of pool %s: %w", e.cidr, p, err)
		}
		if ok {
			n++
		}
	}
	return n, nil
}

// dropAllBlocks deletes every block of host in p and every container
// address host owns in p (a host gone for good).
func (m *IPAM) dropAllBlocks(ctx context.Context, p netip.Prefix, host string) (int, int, error) {
	entries, err := m.listBlocks(ctx, p)
	if err != nil {
		return 0, 0, err
	}
	var keys []string
	for _, e := range entries {
		if e.host == host {
			keys = append(keys, store.BlockKey(p, e.cidr))
		}
	}
	blocks := len(keys)
	kvs, _, err := m.st.List(ctx, store.AddrsPrefix(p))
	if err != nil {
		return 0, 0, fmt.Errorf("list addresses of pool %s: %w", p, err)
	}
	addrs := 0
	for _, kv := range kvs {
		var a store.Address
		if err := kv.Decode(&a); err == nil && a.Kind != store.AddrGateway && a.Host == host {
			keys = append(keys, kv.Key)
			addrs++
		}
	}
	// The host's exception records go too (those of its addresses, and any
	// left stale by a podnetd older than layout 2).
	excs, _, err := m.st.List(ctx, store.ExcPrefix(p))
	if err != nil {
		return 0, 0, fmt.Errorf("list exception records of pool %s: %w", p, err)
	}
	for _, kv := range excs {
		var e store.Exception
		if err := kv.Decode(&e); err == nil && e.Host == host {
			keys = append(keys, kv.Key)
		}
	}
	if err := m.deleteKeys(ctx, keys); err != nil {
		return 0, 0, fmt.Errorf("release blocks of host %s in pool %s: %w", host, p, err)
	}
	return blocks, addrs, nil
}

// deleteKeys deletes keys in transactions of a size etcd accepts (its
// default limit is 128 operations per transaction).
func (m *IPAM) deleteKeys(ctx context.Context, keys []string) error {
	const batch = 100
	for len(keys) > 0 {
		n := min(batch, len(keys))
		ops := make([]store.Op, 0, n)
		for _, k := range keys[:n] {
			ops = append(ops, store.Delete(k))
		}
		if _, _, err := m.st.Txn(ctx, nil, ops); err != nil {
			return err
		}
		keys = keys[n:]
	}
	return nil
}
