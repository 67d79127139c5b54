package driver

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strings"

	"github.com/podnet/podnet/netdef"

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
		if strings.Contains(err.Error(), "not available") && d.cfg.OverlayUnavailable != "" {
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
			Pool: pool, Subnets: subnetList(n), Mode: n.Mode, MTU: o.MTU, VNI: o.VNI,
			NeedVNI: n.Mode == ModeVXLAN, Options: podnetOptions(o.Raw), DefaultMTU: d.defaultMTU(n.Mode),
			Defaults: lanDefaults(n.Mode)})
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
		return fmt.Errorf("record network %s: %w", short(n.ID), err)
	}
	defer func() {
		if !success {
			_ = d.cfg.Store.Delete(context.WithoutCancel(ctx), store.NetworkKey(d.cfg.Host, n.ID))
		}
	}()
	if hasNAT(n) {
		if err := d.cfg.Ports.AddNetwork(ctx, d.portmapNetwork(n)); err != nil {
			return fmt.Errorf("program rules for network %s: %w", short(n.ID), err)
		}
	}
	d.mu.Lock()
	d.nets[n.ID] = n
	d.mu.Unlock()
	success = true
	d.log.Info("network created", "network", short(n.ID), "mode", n.Mode, "bridge", n.Bridge,
		"subnets", subnetList(n), "mtu", n.MTU, "vni", n.VNI, "internal", n.Internal, "masquerade", n.Masquerade)
	return nil
}

func (d *Driver) newRecord(id string, o *netOptions) *store.Network {
	// Containers of macvlan/ipvlan networks are on the LAN with their own
	// addresses: nothing to masquerade.
	n := &store.Network{ID: id, Host: d.cfg.Host, Mode: o.Mode, MTU: o.MTU, Internal: o.Internal,
		Masquerade: o.Masquerade && !o.Internal && !isLANMode(o.Mode), Options: o.Raw, Created: now()}
	if n.Mode == ModeBridge || n.Mode == ModeVXLAN {
		n.Bridge = bridgeName(id)
	}
	for _, s := range o.V4 {
		n.IPv4 = append(n.IPv4, toStoreSubnet(s))
	}
	for _, s := range o.V6 {
		n.IPv6 = append(n.IPv6, toStoreSubnet(s))
	}
	return n
}

// applyDefinition takes MTU, VNI and the podnet.* options this host's
// request left out from the cluster-wide definition.
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
	// A per-host parent of a named definition, unless this host's own
	// request named one.
	if p, ok := def.Parents[d.cfg.Host]; ok && o.Raw[optParent] == "" {
		merged[optParent] = p
	}
	n.Options = merged
	inherited := *o
	inherited.Raw = merged
	if err := inherited.parseFlags(); err != nil {
		return err
	}
	n.Masquerade = inherited.Masquerade && !n.Internal && !isLANMode(n.Mode)
	if err := checkLANOptions(n.Mode, merged, n.Internal); err != nil {
		return fmt.Errorf("with the options inherited from the cluster-wide definition (%s): %w", netdef.Describe(def), err)
	}
	if n.Mode == ModeVXLAN && d.cfg.Overlay != nil {
		if max := d.cfg.Overlay.DefaultMTU(); n.MTU > max {
			return fmt.Errorf("mtu %d is too large for vxlan over this host's underlay (at most %d: the underlay MTU minus 50)", n.MTU, max)
		}
	}
	return nil
}

// defaultMTU is the MTU of a new network whose request gave none.
func (d *Driver) defaultMTU(mode string) int {
	if isLANMode(mode) {
		return 0 // the parent's, on each host
	}
	if mode == ModeVXLAN && d.cfg.Overlay != nil {
		return d.cfg.Overlay.DefaultMTU()
	}
	return d.cfg.DefaultMTU
}

func toStoreSubnet(s subnet) store.Subnet {
	out := store.Subnet{Pool: s.Pool.String()}
	if s.Gateway.IsValid() {
		out.Gateway = s.Gateway.String()
	}
	return out
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
		for _, s := range append(append([]store.Subnet{}, n.IPv4...), n.IPv6...) {
			for _, mine := range append(append([]subnet{}, o.V4...), o.V6...) {
				if p, err := parsePrefix(s.Pool); err == nil && p.Overlaps(mine.Pool) {
					return fmt.Errorf("subnet %s overlaps subnet %s of podnet network %s on this host", mine.Pool, p, short(n.ID))
				}
			}
		}
	}
	return nil
}

// podnetOptions keeps the options that must agree across hosts: podnet's
// own, and the macvlan/ipvlan modes (the parent may differ per host).
func podnetOptions(raw map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range raw {
		if strings.HasPrefix(k, "podnet.") || k == optMacvlanMode || k == optIpvlanMode || k == optIpvlanFlag {
			out[k] = v
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
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
	d.log.Info("network deleted", "network", short(id), "bridge", n.Bridge)
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
