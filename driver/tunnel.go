package driver

import (
	"context"
	"errors"
	"github.com/podnet/podnet/internal/dockerid"
	"github.com/podnet/podnet/netspec"
	"net/netip"
	"slices"

	"github.com/podnet/podnet/store"
)

// Tunnels reserves this host's tunnel address in a pool (package ipam).
type Tunnels interface {
	TunnelAddress(ctx context.Context, pool netip.Prefix) (netip.Addr, error)
	ReleaseTunnelAddress(ctx context.Context, pool netip.Prefix) error
}

// ensureTunnels reserves this host's tunnel address in each pool of a
// vxlan network (idempotent: a restored network gets the same ones) and
// remembers them for the overlay and the NAT rules. This host's own
// traffic to pods on other hosts leaves from it (the overlay's routes
// carry it as source, see package overlay), and so does service traffic
// this host sends to an endpoint on another host when the client's own
// address would not bring the reply back (see package dataplane). Without
// one (no Tunnels configured, a full pool, etcd unreachable at restore)
// services still work, masquerading such traffic instead, but this
// host's own processes reach pods on other hosts only over direct
// routing: that is logged, not an error of the network.
func (d *Driver) ensureTunnels(ctx context.Context, n *store.Network) {
	if n.Mode != netspec.ModeVXLAN || d.cfg.Tunnels == nil {
		return
	}
	var addrs []netip.Addr
	for _, p := range n.Pools() {
		a, err := d.cfg.Tunnels.TunnelAddress(ctx, p)
		if err != nil {
			d.log.Warn("no tunnel address: service traffic from this host to endpoints on other hosts is masqueraded, "+
				"and this host's own processes reach pods on other hosts only over direct routing",
				"network", dockerid.Short(n.ID), "pool", p, "err", err)
			continue
		}
		addrs = append(addrs, a)
	}
	d.mu.Lock()
	d.tunnels[n.ID] = addrs
	d.mu.Unlock()
}

// releaseTunnels frees the network's tunnel addresses.
func (d *Driver) releaseTunnels(ctx context.Context, n *store.Network) error {
	d.mu.Lock()
	delete(d.tunnels, n.ID)
	d.mu.Unlock()
	if n.Mode != netspec.ModeVXLAN || d.cfg.Tunnels == nil {
		return nil
	}
	var errs []error
	for _, p := range n.Pools() {
		errs = append(errs, d.cfg.Tunnels.ReleaseTunnelAddress(ctx, p))
	}
	return errors.Join(errs...)
}

func (d *Driver) tunnelAddrs(id string) []netip.Addr {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.tunnels[id])
}
