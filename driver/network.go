package driver

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strings"

	"github.com/docker/go-plugins-helpers/network"
	"github.com/podnet/podnet/internal/dockerid"
	"github.com/podnet/podnet/lnet"
	"github.com/podnet/podnet/netspec"
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
	defer func() {
		if !success { // the options parsed from this attempt's record go with it
			d.mu.Lock()
			delete(d.lan, n.ID)
			d.mu.Unlock()
		}
	}()
	if pool := lnet.FirstPool(n); pool.IsValid() {
		def, created, err := lnet.Claim(ctx, d.cfg.Store, lnet.Request{
			Pool: pool, Subnets: n.Pools(), Mode: n.Mode, MTU: o.MTU, VNI: o.VNI,
			NeedVNI: n.Mode == netspec.ModeVXLAN, Options: o.Shared(), DefaultMTU: d.defaultMTU(n.Mode),
			Defaults: netspec.SharedDefaults(n.Mode)})
		if err != nil {
			return err
		}
		if created {
			defer func() {
				if !success {
					_ = lnet.Release(context.WithoutCancel(ctx), d.cfg.Store, pool)
				}
			}()
		}
		if err := d.applyDefinition(n, o, def); err != nil {
			return err
		}
	} else if n.MTU == 0 {
		n.MTU = d.defaultMTU(n.Mode)
	}
	if err := d.checkSubnetsSafe(n); err != nil {
		return err
	}

	// Tunnel addresses first: the overlay puts them on its device and
	// makes them the source of this host's routes to other hosts.
	d.ensureTunnels(ctx, n)
	defer func() {
		if !success {
			_ = d.releaseTunnels(context.WithoutCancel(ctx), n)
		}
	}()
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
	if hasNAT(n) {
		if err := d.cfg.Ports.AddNetwork(ctx, d.planeNetwork(n)); err != nil {
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
	// Containers of macvlan/ipvlan networks are on the LAN with their own
	// addresses: nothing to masquerade.
	n := &store.Network{ID: id, Host: d.cfg.Host, Mode: o.Mode, MTU: o.MTU, Internal: o.Internal,
		Masquerade: o.Masquerade && !o.Internal && !netspec.IsLAN(o.Mode), Options: o.Raw, Created: now()}
	if n.Mode == netspec.ModeBridge || n.Mode == netspec.ModeVXLAN {
		n.Bridge = bridgeName(id)
	}
	n.IPv4, n.IPv6 = o.V4, o.V6
	return n
}

// applyDefinition takes MTU, VNI and the shared options (netspec's
// Options.Shared) this host's request left out from the cluster-wide
// definition, and a named definition's parent for this host (a
// macvlan/ipvlan network's -o parent given here wins). The merged options
// pass the same checks as the request's own.
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
	if p, ok := def.Parents[d.cfg.Host]; ok && o.Raw[netspec.OptParent] == "" {
		merged[netspec.OptParent] = p
	}
	n.Options = merged
	withMode := maps.Clone(merged)
	withMode[netspec.OptMode] = n.Mode
	inherited, err := netspec.CheckOptions(withMode, n.Internal, nil)
	if err != nil {
		return fmt.Errorf("with the options inherited from the cluster-wide definition (%s): %w", lnet.Describe(def), err)
	}
	n.Masquerade = inherited.Masquerade && !n.Internal && !netspec.IsLAN(n.Mode)
	if n.Mode == netspec.ModeVXLAN && d.cfg.Overlay != nil {
		if max := d.cfg.Overlay.MaxMTU(); n.MTU > max {
			return fmt.Errorf("mtu %d is too large for vxlan over this host's underlay (at most %d: the underlay MTU minus 50)", n.MTU, max)
		}
	}
	return nil
}

// defaultMTU is the MTU of a new network whose request gave none.
func (d *Driver) defaultMTU(mode string) int {
	if netspec.IsLAN(mode) {
		return 0 // the parent's, on each host
	}
	if mode == netspec.ModeVXLAN && d.cfg.Overlay != nil {
		return d.cfg.Overlay.DefaultMTU()
	}
	return d.cfg.DefaultMTU
}

// checkSubnetsSafe applies the subnet safety rule IPAM applied at
// RequestPool (netspec.CheckSafeBeside), now that the network's mode and
// parent are known: only a macvlan/ipvlan network's own parent lifts the
// refusal of a subnet overlapping one of the host's networks. Docker never
// shows the driver --ipam-opt, so this is what keeps --ipam-opt parent=eth0
// from putting a bridge network (or a macvlan network on another parent)
// on eth0's LAN.
func (d *Driver) checkSubnetsSafe(n *store.Network) error {
	if d.cfg.HostNetworks == nil || len(n.Pools()) == 0 {
		return nil
	}
	host, err := d.cfg.HostNetworks()
	if err != nil {
		return fmt.Errorf("network %s: read this host's interface addresses to check its subnets: %w", dockerid.Short(n.ID), err)
	}
	parent := ""
	if netspec.IsLAN(n.Mode) {
		parent = strings.TrimSpace(n.Options[netspec.OptParent])
	}
	for _, p := range n.Pools() {
		if err := netspec.CheckSafeBeside(p, host, parent); err != nil {
			return err
		}
	}
	return nil
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
	delete(d.lan, id)
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
	pool := lnet.FirstPool(n)
	if !pool.IsValid() {
		return nil
	}
	return lnet.Release(ctx, d.cfg.Store, pool)
}
