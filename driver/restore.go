package driver

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/podnet/podnet/dataplane"
	"github.com/podnet/podnet/internal/dockerid"
	"github.com/podnet/podnet/netspec"
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
	var pnets []dataplane.Network
	var errs []error
	for _, kv := range netKVs {
		n := &store.Network{}
		if err := kv.Decode(n); err != nil {
			errs = append(errs, err)
			continue
		}
		m, ok := d.modes[n.Mode]
		if !ok {
			errs = append(errs, fmt.Errorf("network %s has mode %q this podnetd does not implement", dockerid.Short(n.ID), n.Mode))
			continue
		}
		create := m.createNetwork
		if r, ok := m.(networkRestorer); ok {
			create = r.restoreNetwork
		}
		d.ensureTunnels(ctx, n) // before the overlay registers the network: it uses them
		if err := create(n); err != nil {
			errs = append(errs, fmt.Errorf("restore network %s: %w", dockerid.Short(n.ID), err))
		}
		nets[n.ID] = n
		if hasNAT(n) {
			pnets = append(pnets, d.planeNetwork(n))
		}
	}
	eps := map[string]*store.Endpoint{}
	var pports []dataplane.EndpointPorts
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
			errs = append(errs, fmt.Errorf("restore endpoint %s: %w", dockerid.Short(ep.ID), err))
		}
		if !exists {
			missing++
		}
		if len(ep.Ports) > 0 {
			pports = append(pports, dataplane.EndpointPorts{EndpointID: ep.ID, NetworkID: ep.Network, Mappings: fromStorePorts(ep.Ports)})
		}
	}
	d.cfg.Ports.Restore(pnets, pports)
	if err := d.cfg.Ports.Sync(ctx); err != nil {
		errs = append(errs, fmt.Errorf("restore NAT/filter rules: %w", err))
	}
	d.mu.Lock()
	d.nets, d.eps = nets, eps
	d.mu.Unlock()
	if d.cfg.Policy != nil {
		var peps []PolicyEndpoint
		for _, ep := range eps {
			if n, ok := nets[ep.Network]; ok {
				peps = append(peps, policyEndpoint(n, ep))
			}
		}
		d.cfg.Policy.Restore(peps)
	}
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
// whose Docker endpoint is gone (not CNI attachments, which Docker never
// knew), networks whose Docker network is gone,
// and podnet links in the kernel that no record explains. Docker never
// tells a plugin about endpoints it dropped while the plugin was down, so
// this is how their addresses, veths and rules come back.
//
// It decides under the driver's exclusive lock (no endpoint is
// half-created, nothing created meanwhile can be mistaken for garbage) and
// tears endpoints down outside it: each Unpublish dumps the conntrack
// table, and a container start must not wait for hundreds of those. Dead
// endpoints leave the driver's map before the lock is released, so nothing
// else acts on them; dead networks go last, under the lock again, once
// their endpoints are gone.
func (d *Driver) GC(ctx context.Context, live Live, grace time.Duration) (GCResult, error) {
	d.gcMu.Lock()
	defer d.gcMu.Unlock()
	plan, linkErr := d.planGC(live, grace)
	res := GCResult{Links: plan.links}
	errs := []error{linkErr}
	for _, g := range plan.eps {
		if err := d.removeEndpoint(ctx, g.net, g.ep); err != nil {
			errs = append(errs, err)
			continue
		}
		res.Endpoints = append(res.Endpoints, g.ep.ID)
	}
	if len(plan.nets) > 0 {
		d.netMu.Lock()
		for _, id := range plan.nets {
			if err := d.deleteNetworkLocked(ctx, id); err != nil {
				errs = append(errs, err)
				continue
			}
			res.Networks = append(res.Networks, id)
		}
		d.netMu.Unlock()
	}
	return res, errors.Join(errs...)
}

// gcPlan is what one GC round removes.
type gcPlan struct {
	eps   []gcEndpoint
	nets  []string
	links []string // already deleted (orphans go under the lock: cheap)
}

type gcEndpoint struct {
	ep  *store.Endpoint
	net *store.Network
}

// planGC picks, under the exclusive lock, the dead endpoints (taking them
// out of the driver's map) and networks, and deletes orphan links: those
// no record explains, and the VLAN parents podnet created that no network
// uses any more (under the lock: a network being created may have made its
// VLAN parent but not be in the map yet).
func (d *Driver) planGC(live Live, grace time.Duration) (gcPlan, error) {
	d.netMu.Lock()
	defer d.netMu.Unlock()
	var plan gcPlan
	links, err := d.gcLinks()
	vlans, verr := d.vlans.gc(d.parentsInUse())
	plan.links = append(links, vlans...)
	err = errors.Join(err, verr)
	cutoff := time.Now().Add(-grace)
	d.mu.Lock()
	defer d.mu.Unlock()
	deadNet := map[string]bool{}
	for id, n := range d.nets {
		if !live.Networks[id] && n.Created.Before(cutoff) {
			deadNet[id] = true
			plan.nets = append(plan.nets, id)
		}
	}
	for id, ep := range d.eps {
		n, netOK := d.nets[ep.Network]
		if !deadNet[ep.Network] && (live.Endpoints[id] || (!ep.Created.Before(cutoff) && netOK)) {
			continue
		}
		// Docker knows nothing of CNI attachments: they go with their
		// network, or by DEL, CNI GC and DeadAttachments.
		if ep.CNI != nil && netOK && !deadNet[ep.Network] {
			continue
		}
		if !netOK {
			n = &store.Network{ID: ep.Network, Mode: netspec.ModeBridge}
		}
		plan.eps = append(plan.eps, gcEndpoint{ep: ep, net: n})
		delete(d.eps, id)
	}
	return plan, err
}
