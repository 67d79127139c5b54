package driver

import (
	"context"
	"errors"
	"fmt"
	"maps"

	"github.com/podnet/podnet/internal/dockerid"
	"github.com/podnet/podnet/netdef"
	"github.com/podnet/podnet/netspec"

	"github.com/docker/go-plugins-helpers/network"
	"github.com/podnet/podnet/store"
)

// CreateNetwork validates the request, claims or checks the cluster-wide
// definition of its subnet (inheriting what the request leaves out),
// creates the kernel objects, records the network and programs its
// NAT/filter rules. On any failure everything done so far is undone.
func (d *Driver) CreateNetwork(ctx context.Context, r *network.CreateNetworkRequest) (err error) {
	o, err := parseOptions(r, d.Modes())
	if err != nil {
		if errors.Is(err, netspec.ErrModeUnavailable) && d.cfg.OverlayUnavailable != "" {
			err = fmt.Errorf("%w; vxlan needs podnetd's multi-host setup: %s", err, d.cfg.OverlayUnavailable)
		}
		return err
	}
	d.netMu.Lock()
	defer d.netMu.Unlock()
	if err := d.checkLocalOverlap(r.NetworkID, o); err != nil {
		return err
	}
	n := d.newRecord(r.NetworkID, o)
	m := d.modes[n.Mode]

	success := false
	if pool := netdef.FirstPool(n); pool.IsValid() {
		def, created, err := netdef.Claim(ctx, d.cfg.Store, netdef.Request{
			Pool: pool, Subnets: n.Pools(), Mode: n.Mode, MTU: o.MTU, VNI: o.VNI,
			NeedVNI: n.Mode == netspec.ModeVXLAN, Options: o.Shared(), DefaultMTU: d.defaultMTU(n.Mode)})
		if err != nil {
			return err
		}
		if created {
			defer func() {
				if !success {
					_ = netdef.Release(context.WithoutCancel(ctx), d.cfg.Store, pool)
				}
			}()
		}
		if err := d.applyDefinition(n, o, def); err != nil {
			return err
		}
	} else if n.MTU == 0 {
		n.MTU = d.defaultMTU(n.Mode)
	}

	if err := m.createNetwork(n); err != nil {
		_ = m.deleteNetwork(n)
		return err
	}
	defer func() {
		if !success {
			_ = m.deleteNetwork(n)
		}
	}()
	if err := d.cfg.Store.Put(ctx, store.NetworkKey(d.cfg.Host, n.ID), n); err != nil {
		return fmt.Errorf("record network %s: %w", dockerid.Short(n.ID), err)
	}
	defer func() {
		if !success {
			_ = d.cfg.Store.Delete(context.WithoutCancel(ctx), store.NetworkKey(d.cfg.Host, n.ID))
		}
	}()
	d.ensureTunnels(ctx, n)
	defer func() {
		if !success {
			_ = d.releaseTunnels(context.WithoutCancel(ctx), n)
		}
	}()
	if n.Mode != netspec.ModeNone {
		if err := d.cfg.Ports.AddNetwork(ctx, d.portmapNetwork(n)); err != nil {
			return fmt.Errorf("program rules for network %s: %w", dockerid.Short(n.ID), err)
		}
	}
	d.mu.Lock()
	d.nets[n.ID] = n
	d.mu.Unlock()
	success = true
	d.log.Info("network created", "network", dockerid.Short(n.ID), "mode", n.Mode, "bridge", n.Bridge,
		"subnets", n.Pools(), "mtu", n.MTU, "vni", n.VNI, "internal", n.Internal, "masquerade", n.Masquerade)
	return nil
}

func (d *Driver) newRecord(id string, o *netOptions) *store.Network {
	n := &store.Network{ID: id, Host: d.cfg.Host, Mode: o.Mode, MTU: o.MTU, Internal: o.Internal,
		Masquerade: o.Masquerade && !o.Internal, Options: o.Raw, Created: now()}
	if n.Mode == netspec.ModeBridge || n.Mode == netspec.ModeVXLAN {
		n.Bridge = bridgeName(id)
	}
	n.IPv4, n.IPv6 = o.V4, o.V6
	return n
}

// applyDefinition takes MTU, VNI and the shared options (netspec's
// Options.Shared) this host's request left out from the cluster-wide
// definition.
func (d *Driver) applyDefinition(n *store.Network, o *netOptions, def store.LogicalNetwork) error {
	n.MTU, n.VNI = def.MTU, def.VNI
	if n.MTU == 0 {
		n.MTU = d.defaultMTU(n.Mode) // a named definition left it to each host
	}
	merged := maps.Clone(o.Raw)
	for k, v := range def.Options {
		if _, ok := merged[k]; !ok {
			merged[k] = v
		}
	}
	n.Options = merged
	masquerade, err := netspec.Bool(merged, netspec.OptMasquerade, true)
	if err != nil {
		return fmt.Errorf("the cluster's definition of subnet %s: %w", netdef.FirstPool(n), err)
	}
	n.Masquerade = masquerade && !n.Internal
	if n.Mode == netspec.ModeVXLAN && d.cfg.Overlay != nil {
		if max := d.cfg.Overlay.DefaultMTU(); n.MTU > max {
			return fmt.Errorf("mtu %d is too large for vxlan over this host's underlay (at most %d: the underlay MTU minus 50)", n.MTU, max)
		}
	}
	return nil
}

// defaultMTU is the MTU of a new network whose request gave none.
func (d *Driver) defaultMTU(mode string) int {
	if mode == netspec.ModeVXLAN && d.cfg.Overlay != nil {
		return d.cfg.Overlay.DefaultMTU()
	}
	return d.cfg.DefaultMTU
}

// checkLocalOverlap refuses a second Docker network on this host whose
// subnet overlaps one podnet already serves here. IPAM refuses most such
// cases at RequestPool; this is the cheap in-memory second line.
func (d *Driver) checkLocalOverlap(id string, o *netOptions) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, n := range d.nets {
		if n.ID == id {
			continue
		}
		for _, p := range n.Pools() {
			for _, mine := range o.Subnets {
				if p.Overlaps(mine.Pool) {
					return fmt.Errorf("subnet %s overlaps subnet %s of podnet network %s on this host", mine.Pool, p, dockerid.Short(n.ID))
				}
			}
		}
	}
	return nil
}

// DeleteNetwork removes everything the network owns on this host. Docker
// ignores errors here and forgets the network anyway, so it keeps going
// past failures and reports them together.
func (d *Driver) DeleteNetwork(ctx context.Context, r *network.DeleteNetworkRequest) error {
	d.netMu.Lock()
	defer d.netMu.Unlock()
	return d.deleteNetworkLocked(ctx, r.NetworkID)
}

func (d *Driver) deleteNetworkLocked(ctx context.Context, id string) error {
	d.mu.Lock()
	n, ok := d.nets[id]
	var eps []*store.Endpoint
	for _, ep := range d.eps {
		if ep.Network == id {
			eps = append(eps, ep)
		}
	}
	d.mu.Unlock()
	if !ok {
		// Unknown here: maybe deleted already. Drop a stale record anyway.
		return d.cfg.Store.Delete(ctx, store.NetworkKey(d.cfg.Host, id))
	}
	var errs []error
	for _, ep := range eps {
		if err := d.removeEndpoint(ctx, n, ep); err != nil {
			errs = append(errs, err)
		}
	}
	if err := d.cfg.Ports.RemoveNetwork(ctx, id); err != nil {
		errs = append(errs, err)
	}
	if err := d.releaseTunnels(ctx, n); err != nil {
		errs = append(errs, err)
	}
	if m, ok := d.modes[n.Mode]; ok {
		if err := m.deleteNetwork(n); err != nil {
			errs = append(errs, err)
		}
	}
	if err := d.cfg.Store.Delete(ctx, store.NetworkKey(d.cfg.Host, id)); err != nil {
		errs = append(errs, err)
	}
	d.mu.Lock()
	delete(d.nets, id)
	d.mu.Unlock()
	if err := d.releaseLogicalNetwork(ctx, n); err != nil {
		errs = append(errs, err)
	}
	d.log.Info("network deleted", "network", dockerid.Short(id), "bridge", n.Bridge)
	return errors.Join(errs...)
}

// releaseLogicalNetwork deletes the cluster-wide definition when no host
// has a Docker network on its subnet any more.
func (d *Driver) releaseLogicalNetwork(ctx context.Context, n *store.Network) error {
	pool := netdef.FirstPool(n)
	if !pool.IsValid() {
		return nil
	}
	return netdef.Release(ctx, d.cfg.Store, pool)
}
