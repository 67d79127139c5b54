package driver

import (
	"context"
	"fmt"
	"strings"

	"github.com/docker/go-plugins-helpers/network"
	"github.com/podnet/podnet/internal/dockerid"
	"github.com/podnet/podnet/netspec"
	"github.com/podnet/podnet/store"
)

// The driver's hooks for macvlan/ipvlan networks: what CreateEndpoint,
// Join and ProgramExternalConnectivity do differently for them.

// othersOnParent reports whether a network of this host other than
// exceptID uses parent.
func (d *Driver) othersOnParent(parent, exceptID string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	for id, n := range d.nets {
		if id != exceptID && netspec.IsLAN(n.Mode) && strings.TrimSpace(n.Options[netspec.OptParent]) == parent {
			return true
		}
	}
	return false
}

// parentsInUse are the parents of this host's macvlan/ipvlan networks.
func (d *Driver) parentsInUse() map[string]bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := map[string]bool{}
	for _, n := range d.nets {
		if p := strings.TrimSpace(n.Options[netspec.OptParent]); netspec.IsLAN(n.Mode) && p != "" {
			out[p] = true
		}
	}
	return out
}

// checkLANEndpoint refuses, before any kernel change, an endpoint a
// macvlan/ipvlan network cannot take: a second container of a passthru
// network, a MAC on ipvlan (its interfaces share the parent's), published
// ports without host access (the host cannot reach the container).
func (d *Driver) checkLANEndpoint(n *store.Network, r *network.CreateEndpointRequest) error {
	if !netspec.IsLAN(n.Mode) {
		return nil
	}
	if n.Mode == netspec.ModeIpvlan && r.Interface != nil && r.Interface.MacAddress != "" {
		return fmt.Errorf("ipvlan network %s: interfaces share their parent's MAC address; drop --mac-address", dockerid.Short(n.ID))
	}
	if o, err := d.lanOptions(n); err != nil {
		return err
	} else if o.MacvlanMode == netspec.MacvlanPassthru {
		d.mu.Lock()
		var holder string
		for _, ep := range d.eps {
			if ep.Network == n.ID && ep.ID != r.EndpointID {
				holder = ep.ID
			}
		}
		d.mu.Unlock()
		if holder != "" {
			return fmt.Errorf("macvlan passthru network %s already has a container on this host (endpoint %s): passthru gives the whole parent to one container", dockerid.Short(n.ID), dockerid.Short(holder))
		}
	}
	bindings, err := parsePortmap(r.Options[labelPortmap])
	if err != nil {
		return err
	}
	if len(bindings) > 0 && n.Bridge == "" {
		return errNoHostAccess(n)
	}
	return nil
}

func errNoHostAccess(n *store.Network) error {
	return fmt.Errorf("cannot publish ports on %s network %s: the host cannot reach its %s containers; create the network with -o %s=true",
		n.Mode, dockerid.Short(n.ID), n.Mode, netspec.OptHostAccess)
}

// publishesAtCreate reports whether Docker will never call
// ProgramExternalConnectivity for the network's endpoints (it does only
// for an endpoint whose Join returned a gateway): ipvlan l3/l3s. Their
// ports are published when the endpoint is created.
func (d *Driver) publishesAtCreate(n *store.Network) (bool, error) {
	if n.Mode != netspec.ModeIpvlan || n.Bridge == "" {
		return false, nil
	}
	o, err := d.lanOptions(n)
	return o.L3Routed(), err
}

// networkRestorer lets a mode restore a network differently from creating
// it (Restore calls createNetwork otherwise).
type networkRestorer interface {
	restoreNetwork(n *store.Network) error
}

// shapeJoin lets a mode adjust Join's gateways and routes.
type joinShaper interface {
	shapeJoin(n *store.Network, ep *store.Endpoint, res *network.JoinResponse)
}

// publishAtCreate publishes an l3 ipvlan endpoint's ports at CreateEndpoint.
func (d *Driver) publishAtCreate(ctx context.Context, n *store.Network, ep *store.Endpoint, opts map[string]any) error {
	if at, err := d.publishesAtCreate(n); err != nil || !at {
		return err
	}
	return d.publish(ctx, ep, opts)
}
