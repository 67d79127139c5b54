package ipam

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sort"
	"time"

	"github.com/podnet/podnet/admin"
	"github.com/podnet/podnet/store"
)

// GCAddresses releases this host's container addresses that are older
// than grace and whose IP is not in live. live must hold every address
// Docker holds on this host: its containers' addresses and also its
// networks' aux addresses (inspect's IPAM.Config[].AuxiliaryAddresses):
// podnet records them as aux addresses, which are never collected, but an
// older podnetd recorded them as container addresses. Gateways, aux and
// tunnel addresses are never collected here (they go with their pool or
// network). An address whose record changed since it was
// listed (the driver just recorded its endpoint) is kept. It returns what
// it released; errors of single pools do not stop the others.
func (m *IPAM) GCAddresses(ctx context.Context, live map[netip.Addr]bool, grace time.Duration) ([]netip.Addr, error) {
	pools, _, err := m.listPools(ctx)
	if err != nil {
		return nil, err
	}
	cutoff := m.now().Add(-grace)
	var released []netip.Addr
	var errs []error
	for _, e := range pools {
		kvs, _, err := m.st.List(ctx, store.AddrsPrefix(e.prefix))
		if err != nil {
			errs = append(errs, fmt.Errorf("list addresses of pool %s: %w", e.prefix, err))
			continue
		}
		for _, kv := range kvs {
			var a store.Address
			ip, ok := addrFromKey(e.prefix, kv.Key)
			if !ok {
				m.log.Warn("malformed address key left alone by GC", "key", kv.Key)
				continue
			}
			if err := kv.Decode(&a); err != nil {
				m.log.Warn("undecodable address record left alone by GC", "key", kv.Key, "err", err)
				continue
			}
			if a.Kind == store.AddrGateway || a.Kind == store.AddrAux || a.Kind == store.AddrTunnel || a.Host != m.host || live[ip] || a.Since.After(cutoff) {
				continue
			}
			ok, _, err := m.st.Txn(ctx, []store.Cmp{store.ModRevIs(kv.Key, kv.ModRev)}, addrDeleteOps(e.prefix, ip))
			if err != nil {
				errs = append(errs, fmt.Errorf("release leaked address %s of pool %s: %w", ip, e.prefix, err))
				continue
			}
			if !ok {
				continue
			}
			if ps := m.loadedState(e.prefix); ps != nil {
				ps.forget(ip)
			}
			released = append(released, ip)
			m.log.Info("leaked address released", "pool", e.prefix, "address", ip, "since", a.Since, "endpoint", a.Endpoint)
		}
	}
	return released, errors.Join(errs...)
}

// GCPools drops this host's references to pools that are not in live
// (the pools of this host's podnet Docker networks) and older than grace
// — a ReleasePool Docker sent while podnetd was down — with this host's
// idle blocks and gateway share. It also deletes pools nobody references
// any more once their last container address is gone. It returns the
// pools it dropped a reference to or deleted.
func (m *IPAM) GCPools(ctx context.Context, live map[netip.Prefix]bool, grace time.Duration) ([]netip.Prefix, error) {
	pools, _, err := m.listPools(ctx)
	if err != nil {
		return nil, err
	}
	cutoff := m.now().Add(-grace)
	var out []netip.Prefix
	var errs []error
	for _, e := range pools {
		p := e.prefix
		if live[p] {
			continue
		}
		var ref store.PoolRef
		_, err := m.st.Get(ctx, store.PoolRefKey(p, m.host), &ref)
		switch {
		case err == nil:
			if ref.Since.After(cutoff) {
				continue // a network being created right now
			}
			ps := m.state(p)
			ps.slow.Lock()
			res, err := m.dropHost(ctx, p, m.host, dropIdle)
			ps.drop()
			ps.slow.Unlock()
			if err != nil {
				errs = append(errs, fmt.Errorf("drop stale reference to pool %s: %w", p, err))
				continue
			}
			out = append(out, p)
			m.log.Info("stale pool reference dropped", "pool", p, "since", ref.Since, "blocks", res.blocks, "deleted", res.poolDeleted)
		case errors.Is(err, store.ErrNotFound):
			if e.rec.Created.After(cutoff) {
				continue
			}
			deleted, err := m.deletePoolIfUnused(ctx, p)
			if err != nil {
				errs = append(errs, err)
			} else if deleted {
				out = append(out, p)
			}
		default:
			errs = append(errs, fmt.Errorf("read reference to pool %s: %w", p, err))
		}
	}
	return out, errors.Join(errs...)
}

// ReleaseHostBlocks forgets a host that is gone for good (podnetctl host
// rm): in every pool its blocks, its container addresses, its reference
// and its share of the gateway go, and pools nobody uses any more are
// deleted. It refuses this host and a host whose liveness key still
// exists. It returns how many blocks were released.
func (m *IPAM) ReleaseHostBlocks(ctx context.Context, host string) (int, error) {
	switch {
	case host == "":
		return 0, errors.New("release host blocks: no host name given")
	case host == m.host:
		return 0, fmt.Errorf("refusing to release the blocks of %s from %s itself: run it on another host once %s is gone", host, host, host)
	}
	if _, err := m.st.Get(ctx, store.AliveKey(host), nil); err == nil {
		return 0, fmt.Errorf("host %s is alive (its podnetd is running): stop it before releasing its blocks", host)
	} else if !errors.Is(err, store.ErrNotFound) {
		return 0, fmt.Errorf("check whether host %s is alive: %w", host, err)
	}
	pools, _, err := m.listPools(ctx)
	if err != nil {
		return 0, err
	}
	total := 0
	var errs []error
	for _, e := range pools {
		ps := m.state(e.prefix)
		ps.slow.Lock()
		res, err := m.dropHost(ctx, e.prefix, host, dropAll)
		ps.slow.Unlock()
		total += res.blocks
		if err != nil {
			errs = append(errs, fmt.Errorf("pool %s: %w", e.prefix, err))
			continue
		}
		if res.blocks+res.addrs > 0 {
			m.log.Info("released blocks of a removed host", "pool", e.prefix, "host", host,
				"blocks", res.blocks, "addresses", res.addrs, "poolDeleted", res.poolDeleted)
		}
	}
	return total, errors.Join(errs...)
}

// Pools lists every pool with its users, blocks and allocation counts,
// as podnetctl pool ls shows them.
func (m *IPAM) Pools(ctx context.Context) ([]admin.Pool, error) {
	pools, _, err := m.listPools(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]admin.Pool, 0, len(pools))
	for _, e := range pools {
		p := e.prefix
		kvs, _, err := m.st.List(ctx, store.IPAMPrefix(p))
		if err != nil {
			return nil, fmt.Errorf("list pool %s: %w", p, err)
		}
		info := admin.Pool{Pool: p, IPRange: e.rec.IPRange, Gateway: e.rec.Gateway, V6: p.Addr().Is6(), Auto: e.rec.Auto,
			Created: e.rec.Created, Hosts: []string{}, Blocks: []admin.Block{}}
		var addrs []netip.Addr
		for _, kv := range kvs {
			k, err := store.ParseIPAMKey(p, kv.Key)
			if err != nil {
				m.log.Warn("malformed IPAM key not shown", "key", kv.Key, "err", err)
				continue
			}
			switch k.Kind {
			case store.KindRef:
				info.Hosts = append(info.Hosts, k.Host)
			case store.KindBlock:
				var b store.Block
				if err := kv.Decode(&b); err != nil {
					return nil, err
				}
				info.Blocks = append(info.Blocks, admin.Block{CIDR: k.Block, Host: b.Host})
			case store.KindAddr:
				addrs = append(addrs, k.Addr)
			}
		}
		info.Allocated = len(addrs)
		sort.Slice(info.Blocks, func(i, j int) bool { return info.Blocks[i].CIDR.Addr().Less(info.Blocks[j].CIDR.Addr()) })
		for _, a := range addrs {
			i := sort.Search(len(info.Blocks), func(i int) bool { return lastAddr(info.Blocks[i].CIDR).Compare(a) >= 0 })
			if i < len(info.Blocks) && info.Blocks[i].CIDR.Contains(a) {
				info.Blocks[i].Used++
			}
		}
		out = append(out, info)
	}
	return out, nil
}
