package ipam

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"

	"github.com/podnet/podnet/netspec"
	"github.com/podnet/podnet/store"
)

// requestGateway gives this host the pool's gateway: want, or the first
// usable address of the subnet when Docker sends none (--gateway not
// given). The gateway is one anycast address on every host's bridge, so
// every host must ask for the same one; each host's request is idempotent
// and adds the host to the address's users.
func (m *IPAM) requestGateway(ctx context.Context, ps *poolState, want netip.Addr) (netip.Addr, error) {
	p := ps.prefix
	gw := want
	if !gw.IsValid() {
		gw = firstUsable(p)
	}
	if why := netspec.ReservedReason(p, gw); why != "" {
		return netip.Addr{}, fmt.Errorf("gateway %s is %s of pool %s: pick another --gateway", gw, why, p)
	}
	ps.slow.Lock()
	defer ps.slow.Unlock()
	poolKey, key := store.PoolKey(p), store.AddrKey(p, gw)
	for range maxTxnRetries {
		var rec store.Pool
		poolRev, err := m.st.Get(ctx, poolKey, &rec)
		if errors.Is(err, store.ErrNotFound) {
			return netip.Addr{}, fmt.Errorf("gateway of pool %s: %w: it was deleted; recreate the Docker network", p, errUnknownPool)
		} else if err != nil {
			return netip.Addr{}, fmt.Errorf("gateway of pool %s: %w", p, err)
		}
		if rec.Gateway.IsValid() && rec.Gateway != gw {
			how := "asked for"
			if !want.IsValid() {
				how = "would default to"
			}
			return netip.Addr{}, fmt.Errorf("pool %s already has gateway %s (this host %s %s): create the network with --gateway %s on every host",
				p, rec.Gateway, how, gw, rec.Gateway)
		}
		var a store.Address
		addrRev, err := m.st.Get(ctx, key, &a)
		// Both records are compared at commit: two hosts setting
		// different gateways at once cannot both win.
		cmps := []store.Cmp{store.ModRevIs(poolKey, poolRev)}
		switch {
		case errors.Is(err, store.ErrNotFound):
			a = store.Address{IP: gw, Kind: store.AddrGateway, Hosts: []string{m.host}, Since: m.now()}
			cmps = append(cmps, store.Absent(key))
		case err != nil:
			return netip.Addr{}, fmt.Errorf("gateway %s of pool %s: %w", gw, p, err)
		case a.Kind != store.AddrGateway:
			return netip.Addr{}, fmt.Errorf("gateway %s of pool %s is already in use (%s): pick another --gateway", gw, p, describe(a))
		case slices.Contains(a.Hosts, m.host) && rec.Gateway == gw:
			ps.markUsed(gw)
			return gw, nil
		default:
			if !slices.Contains(a.Hosts, m.host) {
				a.Hosts = append(a.Hosts, m.host)
			}
			cmps = append(cmps, store.ModRevIs(key, addrRev))
		}
		ops := []store.Op{store.Put(key, a)}
		if rec.Gateway != gw {
			rec.Gateway = gw
			ops = append(ops, store.Put(poolKey, rec))
		}
		ok, _, err := m.st.Txn(ctx, cmps, ops)
		if err != nil {
			return netip.Addr{}, fmt.Errorf("gateway %s of pool %s: %w", gw, p, err)
		}
		if ok {
			ps.markUsed(gw)
			m.log.Info("gateway requested", "pool", p, "gateway", gw, "hosts", a.Hosts)
			return gw, nil
		}
	}
	return netip.Addr{}, fmt.Errorf("gateway %s of pool %s: gave up after %d attempts: other hosts keep changing it; retry", gw, p, maxTxnRetries)
}

// removeSharedHost removes host from the users of gw, an address of kind
// (a gateway or an aux address) that several hosts share. The last user
// deletes the address; for a gateway it also clears the pool's gateway,
// so the next network on this subnet may choose another. It reports
// whether the address was deleted. Callers hold the pool's slow lock.
func (m *IPAM) removeSharedHost(ctx context.Context, p netip.Prefix, gw netip.Addr, host, kind string) (bool, error) {
	poolKey, key := store.PoolKey(p), store.AddrKey(p, gw)
	for range maxTxnRetries {
		var a store.Address
		addrRev, err := m.st.Get(ctx, key, &a)
		if errors.Is(err, store.ErrNotFound) {
			return false, nil
		} else if err != nil {
			return false, fmt.Errorf("release %s address %s of pool %s: %w", kind, gw, p, err)
		}
		if a.Kind != kind || !slices.Contains(a.Hosts, host) {
			return false, nil
		}
		a.Hosts = slices.DeleteFunc(a.Hosts, func(h string) bool { return h == host })
		cmps := []store.Cmp{store.ModRevIs(key, addrRev)}
		ops := []store.Op{store.Put(key, a)}
		if len(a.Hosts) == 0 {
			ops = []store.Op{store.Delete(key)}
		}
		if len(a.Hosts) == 0 && kind == store.AddrGateway {
			var rec store.Pool
			poolRev, err := m.st.Get(ctx, poolKey, &rec)
			switch {
			case err == nil && rec.Gateway == gw:
				rec.Gateway = netip.Addr{}
				cmps = append(cmps, store.ModRevIs(poolKey, poolRev))
				ops = append(ops, store.Put(poolKey, rec))
			case err != nil && !errors.Is(err, store.ErrNotFound):
				return false, fmt.Errorf("release gateway %s of pool %s: %w", gw, p, err)
			}
		}
		ok, _, err := m.st.Txn(ctx, cmps, ops)
		if err != nil {
			return false, fmt.Errorf("release %s address %s of pool %s: %w", kind, gw, p, err)
		}
		if ok {
			m.log.Info("shared address released", "kind", kind, "pool", p, "address", gw, "host", host, "remaining", a.Hosts)
			return len(a.Hosts) == 0, nil
		}
	}
	return false, fmt.Errorf("release %s address %s of pool %s: gave up after %d attempts; retry", kind, gw, p, maxTxnRetries)
}
