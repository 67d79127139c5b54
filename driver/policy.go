package driver

import (
	"context"
	"fmt"
	"net/netip"

	"github.com/podnet/podnet/internal/dockerid"
	"github.com/podnet/podnet/netspec"
	"github.com/podnet/podnet/store"
)

// PolicyEndpoint is one endpoint of this host as network policy sees it.
type PolicyEndpoint struct {
	ID      string
	Network string
	Addrs   []netip.Addr
	// Enforced is false where podnet cannot filter the endpoint's
	// traffic: macvlan and ipvlan networks (it does not cross the host).
	Enforced bool
}

// Policy is the network policy agent as the driver sees it (package
// netpol): told of every endpoint before its container can run.
type Policy interface {
	// EndpointCreated isolates the new endpoint until its container's
	// labels are known; an error fails the container start.
	EndpointCreated(ctx context.Context, ep PolicyEndpoint) error
	EndpointDeleted(ctx context.Context, id string)
	// Restore registers the endpoints found at start.
	Restore(eps []PolicyEndpoint)
}

func policyEndpoint(n *store.Network, ep *store.Endpoint) PolicyEndpoint {
	out := PolicyEndpoint{ID: ep.ID, Network: n.ID,
		Enforced: n.Mode == netspec.ModeBridge || n.Mode == netspec.ModeVXLAN}
	for _, p := range []netip.Prefix{ep.IPv4, ep.IPv6} {
		if p.IsValid() {
			out.Addrs = append(out.Addrs, p.Addr().Unmap())
		}
	}
	return out
}

// isolate hands a new endpoint to the policy agent (none configured:
// nothing to do).
func (d *Driver) isolate(ctx context.Context, n *store.Network, ep *store.Endpoint) error {
	if d.cfg.Policy == nil {
		return nil
	}
	if err := d.cfg.Policy.EndpointCreated(ctx, policyEndpoint(n, ep)); err != nil {
		return fmt.Errorf("endpoint %s: cannot isolate it for network policy, so it must not run: %w", dockerid.Short(ep.ID), err)
	}
	return nil
}
