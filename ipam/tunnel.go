package ipam

import (
	"context"
	"fmt"
	"net/netip"

	"github.com/podnet/podnet/store"
)

// TunnelAddress returns this host's tunnel address in pool p, reserving
// one the first time: the next free address of this host's blocks,
// recorded with kind "tunnel" and this host as owner, so other hosts
// route it here (with the block, or as an exception when borrowed) and no
// container ever gets it. It is idempotent: a restarted podnetd finds the
// address it reserved before. The service data plane uses it as the
// source of service traffic this host sends to endpoints on other hosts
// (see package dataplane, "Services across hosts").
func (m *IPAM) TunnelAddress(ctx context.Context, p netip.Prefix) (netip.Addr, error) {
	p = p.Masked()
	m.tunnelMu.Lock()
	defer m.tunnelMu.Unlock()
	if a, ok, err := m.findTunnel(ctx, p, m.host); err != nil || ok {
		return a, err
	}
	ps := m.state(p)
	if err := m.ensureLoaded(ctx, ps); err != nil {
		return netip.Addr{}, err
	}
	a, err := m.allocate(ctx, ps, store.AddrTunnel)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("reserve the tunnel address of host %s in pool %s: %w", m.host, p, err)
	}
	m.log.Info("tunnel address reserved", "pool", p, "address", a)
	return a, nil
}

// ReleaseTunnelAddress frees this host's tunnel address in p; absence is
// not an error.
func (m *IPAM) ReleaseTunnelAddress(ctx context.Context, p netip.Prefix) error {
	m.tunnelMu.Lock()
	defer m.tunnelMu.Unlock()
	return m.releaseTunnel(ctx, p.Masked(), m.host)
}

// findTunnel returns host's tunnel address in p, if it has one.
func (m *IPAM) findTunnel(ctx context.Context, p netip.Prefix, host string) (netip.Addr, bool, error) {
	kvs, _, err := m.st.List(ctx, store.AddrsPrefix(p))
	if err != nil {
		return netip.Addr{}, false, fmt.Errorf("list addresses of pool %s: %w", p, err)
	}
	for _, kv := range kvs {
		var a store.Address
		if kv.Decode(&a) != nil || a.Kind != store.AddrTunnel || a.Host != host {
			continue
		}
		if ip, ok := addrFromKey(p, kv.Key); ok {
			return ip, true, nil
		}
	}
	return netip.Addr{}, false, nil
}

// releaseTunnel deletes host's tunnel address records in p.
func (m *IPAM) releaseTunnel(ctx context.Context, p netip.Prefix, host string) error {
	for {
		a, ok, err := m.findTunnel(ctx, p, host)
		if err != nil || !ok {
			return err
		}
		if _, _, err := m.st.Txn(ctx, nil, addrDeleteOps(p, a)); err != nil {
			return fmt.Errorf("release the tunnel address %s of host %s in pool %s: %w", a, host, p, err)
		}
		if ps := m.loadedState(p); ps != nil {
			ps.forget(a)
		}
		m.log.Info("tunnel address released", "pool", p, "address", a, "host", host)
	}
}
