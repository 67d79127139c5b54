package driver

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/podnet/podnet/portmap"
	"github.com/podnet/podnet/store"
)

// Restore rebuilds this host's state from etcd after a start: the cache,
// the bridges (idempotently: running containers keep their veths) and the
// whole NAT/filter table in one atomic sync. CreateNetwork is never
// replayed by Docker, so this is the only way a restarted podnetd learns
// its networks.
func (d *Driver) Restore(ctx context.Context) error {
	d.netMu.Lock()
	defer d.netMu.Unlock()
	netKVs, _, err := d.cfg.Store.List(ctx, store.NetworksPrefix(d.cfg.Host))
	if err != nil {
		return fmt.Errorf("restore networks: %w", err)
	}
	epKVs, _, err := d.cfg.Store.List(ctx, store.EndpointsPrefix(d.cfg.Host))
	if err != nil {
		return fmt.Errorf("restore endpoints: %w", err)
	}
	nets := map[string]*store.Network{}
	var pnets []portmap.Network
	var errs []error
	for _, kv := range netKVs {
		n := &store.Network{}
		if err := kv.Decode(n); err != nil {
			errs = append(errs, err)
			continue
		}
		m, ok := d.modes[n.Mode]
		if !ok {
			errs = append(errs, fmt.Errorf("network %s has mode %q this podnetd does not implement", short(n.ID), n.Mode))
			continue
		}
		create := m.createNetwork
		if r, ok := m.(networkRestorer); ok {
			create = r.restoreNetwork
		}
		if err := create(n); err != nil {
			errs = append(errs, fmt.Errorf("restore network %s: %w", short(n.ID), err))
		}
		nets[n.ID] = n
		if hasNAT(n) {
			pnets = append(pnets, d.portmapNetwork(n))
		}
	}
	eps := map[string]*store.Endpoint{}
	var pports []portmap.EndpointPorts
	missing := 0
	for _, kv := range epKVs {
		ep := &store.Endpoint{}
		if err := kv.Decode(ep); err != nil {
			errs = append(errs, err)
			continue
		}
		eps[ep.ID] = ep
		n, ok := nets[ep.Network]
		if !ok {
			continue // GC removes endpoints of vanished networks
		}
		exists, err := d.modes[n.Mode].restoreEndpoint(n, ep)
		if err != nil {
			errs = append(errs, fmt.Errorf("restore endpoint %s: %w", short(ep.ID), err))
		}
		if !exists {
			missing++
		}
		if len(ep.Ports) > 0 {
			pports = append(pports, portmap.EndpointPorts{EndpointID: ep.ID, NetworkID: ep.Network, Mappings: fromStorePorts(ep.Ports)})
		}
	}
	d.cfg.Ports.Restore(pnets, pports)
	if err := d.cfg.Ports.Sync(ctx); err != nil {
		errs = append(errs, fmt.Errorf("restore NAT/filter rules: %w", err))
	}
	d.mu.Lock()
	d.nets, d.eps = nets, eps
	d.mu.Unlock()
	// A kill -9 between creating a VLAN parent and recording its network.
	if _, err := d.vlans.gc(d.parentsInUse()); err != nil {
		errs = append(errs, err)
	}
	d.log.Info("state restored", "networks", len(nets), "endpoints", len(eps), "endpointsWithoutInterface", missing)
	return errors.Join(errs...)
}

// Live is Docker's view of this host, gathered by the reconciler.
type Live struct {
	// Networks are the IDs of every Docker network on this host.
	Networks map[string]bool
	// Endpoints are the endpoint IDs Docker reports on podnet networks.
	Endpoints map[string]bool
}

// GCResult says what GC removed.
type GCResult struct {
	Networks, Endpoints, Links []string
}

// GC removes what Docker no longer knows: endpoints (older than grace)
// whose Docker endpoint is gone, networks whose Docker network is gone,
// and podnet links in the kernel that no record explains. Docker never
// tells a plugin about endpoints it dropped while the plugin was down, so
// this is how their addresses, veths and rules come back.
func (d *Driver) GC(ctx context.Context, live Live, grace time.Duration) (GCResult, error) {
	d.netMu.Lock()
	defer d.netMu.Unlock()
	var res GCResult
	var errs []error
	cutoff := time.Now().Add(-grace)
	d.mu.Lock()
	var deadNets []string
	for id, n := range d.nets {
		if !live.Networks[id] && n.Created.Before(cutoff) {
			deadNets = append(deadNets, id)
		}
	}
	var deadEps []*store.Endpoint
	for id, ep := range d.eps {
		_, netOK := d.nets[ep.Network]
		if !live.Endpoints[id] && (ep.Created.Before(cutoff) || !netOK) {
			deadEps = append(deadEps, ep)
		}
	}
	d.mu.Unlock()
	for _, ep := range deadEps {
		n, err := d.network(ep.Network)
		if err != nil {
			n = &store.Network{ID: ep.Network, Mode: ModeBridge}
		}
		if err := d.removeEndpoint(ctx, n, ep); err != nil {
			errs = append(errs, err)
			continue
		}
		res.Endpoints = append(res.Endpoints, ep.ID)
	}
	for _, id := range deadNets {
		if err := d.deleteNetworkLocked(ctx, id); err != nil {
			errs = append(errs, err)
			continue
		}
		res.Networks = append(res.Networks, id)
	}
	links, err := d.gcLinks()
	res.Links = links
	if err != nil {
		errs = append(errs, err)
	}
	vlans, err := d.vlans.gc(d.parentsInUse())
	res.Links = append(res.Links, vlans...)
	if err != nil {
		errs = append(errs, err)
	}
	return res, errors.Join(errs...)
}
