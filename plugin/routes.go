package plugin

import (
	"context"
	"errors"
	"net/http"

	"github.com/docker/go-plugins-helpers/ipam"
	"github.com/docker/go-plugins-helpers/network"
	"github.com/podnet/podnet/netspec"
)

type empty struct{}

// routes registers all 21 paths.
func (s *Server) routes() {
	s.mux.HandleFunc("/Plugin.Activate", func(w http.ResponseWriter, r *http.Request) {
		if _, err := readBody(w, r, s.bodyTO); err != nil && !errors.Is(err, errNoBody) {
			status, msg := s.bodyError("Plugin.Activate", err)
			writeJSON(w, status, map[string]string{string(netErr): msg})
			return
		}
		w.Header().Set("Content-Type", contentType)
		_, _ = w.Write([]byte(manifest + "\n"))
	})

	// Answered without waiting for state: dockerd asks these at registration.
	handle(s, "/NetworkDriver.GetCapabilities", netErr, false, func(context.Context, *empty) (any, error) {
		return &network.CapabilitiesResponse{Scope: network.LocalScope, ConnectivityScope: network.GlobalScope}, nil
	})
	handle(s, "/IpamDriver.GetCapabilities", ipamErr, false, func(context.Context, *empty) (any, error) {
		return map[string]bool{"RequiresMACAddress": false, "RequiresRequestReplay": false}, nil
	})
	handle(s, "/IpamDriver.GetDefaultAddressSpaces", ipamErr, false, func(context.Context, *empty) (any, error) {
		return &ipam.AddressSpacesResponse{LocalDefaultAddressSpace: netspec.LocalAddressSpace, GlobalDefaultAddressSpace: netspec.GlobalAddressSpace}, nil
	})

	// Swarm and discovery: nothing to do outside swarm, but answer sensibly.
	handle(s, "/NetworkDriver.AllocateNetwork", netErr, true, func(_ context.Context, r *network.AllocateNetworkRequest) (any, error) {
		return &network.AllocateNetworkResponse{Options: r.Options}, nil
	})
	handle(s, "/NetworkDriver.FreeNetwork", netErr, true, func(context.Context, *network.FreeNetworkRequest) (any, error) { return nil, nil })
	handle(s, "/NetworkDriver.DiscoverNew", netErr, true, func(context.Context, *network.DiscoveryNotification) (any, error) { return nil, nil })
	handle(s, "/NetworkDriver.DiscoverDelete", netErr, true, func(context.Context, *network.DiscoveryNotification) (any, error) { return nil, nil })

	nd := func(ctx context.Context) (NetworkDriver, error) {
		n, _, err := s.drivers(ctx)
		return n, err
	}
	id := func(ctx context.Context) (IPAMDriver, error) {
		_, i, err := s.drivers(ctx)
		return i, err
	}

	handle(s, "/NetworkDriver.CreateNetwork", netErr, true, func(ctx context.Context, r *network.CreateNetworkRequest) (any, error) {
		d, err := nd(ctx)
		if err != nil {
			return nil, err
		}
		return nil, d.CreateNetwork(ctx, r)
	})
	handle(s, "/NetworkDriver.DeleteNetwork", netErr, true, func(ctx context.Context, r *network.DeleteNetworkRequest) (any, error) {
		d, err := nd(ctx)
		if err != nil {
			return nil, err
		}
		return nil, d.DeleteNetwork(ctx, r)
	})
	handle(s, "/NetworkDriver.CreateEndpoint", netErr, true, func(ctx context.Context, r *network.CreateEndpointRequest) (any, error) {
		d, err := nd(ctx)
		if err != nil {
			return nil, err
		}
		return nonNil(d.CreateEndpoint(ctx, r))
	})
	handle(s, "/NetworkDriver.DeleteEndpoint", netErr, true, func(ctx context.Context, r *network.DeleteEndpointRequest) (any, error) {
		d, err := nd(ctx)
		if err != nil {
			return nil, err
		}
		return nil, d.DeleteEndpoint(ctx, r)
	})
	handle(s, "/NetworkDriver.EndpointOperInfo", netErr, true, func(ctx context.Context, r *network.InfoRequest) (any, error) {
		d, err := nd(ctx)
		if err != nil {
			return nil, err
		}
		res, err := d.EndpointInfo(ctx, r)
		if err != nil {
			return nil, err
		}
		// Docker requires an object here; a null Value would be fine too,
		// but be explicit.
		if res == nil || res.Value == nil {
			res = &network.InfoResponse{Value: map[string]string{}}
		}
		return res, nil
	})
	handle(s, "/NetworkDriver.Join", netErr, true, func(ctx context.Context, r *network.JoinRequest) (any, error) {
		d, err := nd(ctx)
		if err != nil {
			return nil, err
		}
		return nonNil(d.Join(ctx, r))
	})
	handle(s, "/NetworkDriver.Leave", netErr, true, func(ctx context.Context, r *network.LeaveRequest) (any, error) {
		d, err := nd(ctx)
		if err != nil {
			return nil, err
		}
		return nil, d.Leave(ctx, r)
	})
	handle(s, "/NetworkDriver.ProgramExternalConnectivity", netErr, true, func(ctx context.Context, r *network.ProgramExternalConnectivityRequest) (any, error) {
		d, err := nd(ctx)
		if err != nil {
			return nil, err
		}
		return nil, d.ProgramExternalConnectivity(ctx, r)
	})
	handle(s, "/NetworkDriver.RevokeExternalConnectivity", netErr, true, func(ctx context.Context, r *network.RevokeExternalConnectivityRequest) (any, error) {
		d, err := nd(ctx)
		if err != nil {
			return nil, err
		}
		return nil, d.RevokeExternalConnectivity(ctx, r)
	})

	handle(s, "/IpamDriver.RequestPool", ipamErr, true, func(ctx context.Context, r *ipam.RequestPoolRequest) (any, error) {
		d, err := id(ctx)
		if err != nil {
			return nil, err
		}
		return nonNil(d.RequestPool(ctx, r))
	})
	handle(s, "/IpamDriver.ReleasePool", ipamErr, true, func(ctx context.Context, r *ipam.ReleasePoolRequest) (any, error) {
		d, err := id(ctx)
		if err != nil {
			return nil, err
		}
		return nil, d.ReleasePool(ctx, r)
	})
	handle(s, "/IpamDriver.RequestAddress", ipamErr, true, func(ctx context.Context, r *ipam.RequestAddressRequest) (any, error) {
		d, err := id(ctx)
		if err != nil {
			return nil, err
		}
		return nonNil(d.RequestAddress(ctx, r))
	})
	handle(s, "/IpamDriver.ReleaseAddress", ipamErr, true, func(ctx context.Context, r *ipam.ReleaseAddressRequest) (any, error) {
		d, err := id(ctx)
		if err != nil {
			return nil, err
		}
		return nil, d.ReleaseAddress(ctx, r)
	})
}

// nonNil turns a typed nil pointer result into an untyped nil so that the
// encoder writes {} rather than null.
func nonNil[T any](v *T, err error) (any, error) {
	if err != nil || v == nil {
		return nil, err
	}
	return v, nil
}
