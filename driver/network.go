package driver

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strings"

	"github.com/docker/go-plugins-helpers/network"
	"github.com/podnet/podnet/store"
)

// CreateNetwork validates the request, checks it against the cluster-wide
// definition of the subnet, creates the kernel objects, records the network
// and programs its NAT/filter rules. On any failure everything done so far
// is undone.
func (d *Driver) CreateNetwork(ctx context.Context, r *network.CreateNetworkRequest) (err error) {
	o, err := parseOptions(r, d.Modes())
	if err != nil {
		return err
	}
	d.netMu.Lock()
	defer d.netMu.Unlock()
	if err := d.checkLocalOverlap(r.NetworkID, o); err != nil {
		return err
	}
	n := d.newRecord(r.NetworkID, o)
	m := d.modes[n.Mode]

	lnetCreated, err := d.claimLogicalNetwork(ctx, n)
	if err != nil {
		return err
	}
	success := false
	defer func() {
		if success {
			return
		}
		if lnetCreated {
			_ = d.cfg.Store.Delete(context.WithoutCancel(ctx), store.LNetKey(firstPool(n)))
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
		return fmt.Errorf("record network %s: %w", short(n.ID), err)
	}
	defer func() {
		if !success {
			_ = d.cfg.Store.Delete(context.WithoutCancel(ctx), store.NetworkKey(d.cfg.Host, n.ID))
		}
	}()
	if n.Mode != ModeNone {
		if err := d.cfg.Ports.AddNetwork(ctx, d.portmapNetwork(n)); err != nil {
			return fmt.Errorf("program rules for network %s: %w", short(n.ID), err)
		}
	}
	d.mu.Lock()
	d.nets[n.ID] = n
	d.mu.Unlock()
	success = true
	d.log.Info("network created", "network", short(n.ID), "mode", n.Mode, "bridge", n.Bridge,
		"subnets", subnetList(n), "mtu", n.MTU, "internal", n.Internal, "masquerade", n.Masquerade)
	return nil
}

func (d *Driver) newRecord(id string, o *netOptions) *store.Network {
	n := &store.Network{ID: id, Host: d.cfg.Host, Mode: o.Mode, MTU: o.MTU, Internal: o.Internal,
		Masquerade: o.Masquerade && !o.Internal, Options: o.Raw, Created: now()}
	if n.MTU == 0 {
		n.MTU = d.cfg.DefaultMTU
	}
	if n.Mode == ModeBridge {
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

// claimLogicalNetwork records (or checks against) the cluster-wide
// definition of the network keyed by its first pool: every host creating a
// Docker network on that subnet must agree on mode and MTU. It reports
// whether this call created the definition.
func (d *Driver) claimLogicalNetwork(ctx context.Context, n *store.Network) (bool, error) {
	if len(n.IPv4) == 0 && len(n.IPv6) == 0 {
		return false, nil
	}
	want := store.LogicalNetwork{Subnets: subnetList(n), Mode: n.Mode, MTU: n.MTU, VNI: n.VNI,
		Options: podnetOptions(n.Options), Created: now()}
	key := store.LNetKey(firstPool(n))
	_, err := d.cfg.Store.Create(ctx, key, want)
	if err == nil {
		return true, nil
	}
	if !errors.Is(err, store.ErrExists) {
		return false, fmt.Errorf("record network definition for %s: %w", firstPool(n), err)
	}
	var have store.LogicalNetwork
	if _, err := d.cfg.Store.Get(ctx, key, &have); err != nil {
		return false, fmt.Errorf("read network definition for %s: %w", firstPool(n), err)
	}
	if diff := lnetDiff(have, want); diff != "" {
		return false, fmt.Errorf("subnet %s is already defined in the cluster as %s; this request has %s: create the network with the same options on every host",
			firstPool(n), describeLNet(have), diff)
	}
	return false, nil
}

func lnetDiff(have, want store.LogicalNetwork) string {
	var d []string
	if have.Mode != want.Mode {
		d = append(d, "mode "+want.Mode)
	}
	if have.MTU != want.MTU {
		d = append(d, fmt.Sprintf("mtu %d", want.MTU))
	}
	if have.VNI != 0 && want.VNI != 0 && have.VNI != want.VNI {
		d = append(d, fmt.Sprintf("vni %d", want.VNI))
	}
	if strings.Join(have.Subnets, ",") != strings.Join(want.Subnets, ",") {
		d = append(d, "subnets "+strings.Join(want.Subnets, ","))
	}
	if !maps.Equal(have.Options, want.Options) {
		d = append(d, fmt.Sprintf("options %v", want.Options))
	}
	return strings.Join(d, ", ")
}

func describeLNet(l store.LogicalNetwork) string {
	s := fmt.Sprintf("mode %s, mtu %d, subnets %s", l.Mode, l.MTU, strings.Join(l.Subnets, ","))
	if l.VNI != 0 {
		s += fmt.Sprintf(", vni %d", l.VNI)
	}
	if len(l.Options) > 0 {
		s += fmt.Sprintf(", options %v", l.Options)
	}
	return s
}

// podnetOptions keeps the options that must agree across hosts.
func podnetOptions(raw map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range raw {
		if strings.HasPrefix(k, "podnet.") {
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
	if len(n.IPv4) == 0 && len(n.IPv6) == 0 {
		return nil
	}
	pool := firstPool(n)
	kvs, _, err := d.cfg.Store.List(ctx, store.NetworksPrefix(""))
	if err != nil {
		return err
	}
	for _, kv := range kvs {
		var other store.Network
		if kv.Decode(&other) == nil && other.ID != n.ID && len(subnetList(&other)) > 0 && firstPool(&other) == pool {
			return nil
		}
	}
	var l store.LogicalNetwork
	rev, err := d.cfg.Store.Get(ctx, store.LNetKey(pool), &l)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if l.Name != "" {
		return nil // defined by an operator (podnetctl network create): keep
	}
	if err := d.cfg.Store.DeleteIf(ctx, store.LNetKey(pool), rev); err != nil && !errors.Is(err, store.ErrConflict) {
		return err
	}
	return nil
}
