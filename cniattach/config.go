package cniattach

import (
	"context"
	"fmt"
	"net/netip"
	"sort"

	"github.com/podnet/podnet/admin"
	"github.com/podnet/podnet/cniconf"
	"github.com/podnet/podnet/driver"
	"github.com/podnet/podnet/internal/dockerid"
	"github.com/podnet/podnet/internal/fault"
	"github.com/podnet/podnet/netspec"
	"github.com/podnet/podnet/store"
)

// Names resolves network names for cni-config: a Docker network of this
// host, or a podnetctl network create definition.
type Names struct {
	// DockerNetwork returns the ID of this host's Docker network named
	// name (nil: no Docker API).
	DockerNetwork func(ctx context.Context, name string) (string, error)
	// Definitions lists the cluster's network definitions.
	Definitions func(ctx context.Context) ([]admin.NetworkStatus, error)
	// Networks lists this host's podnet networks.
	Networks func() []store.Network
	// Socket is podnetd's admin socket, written into the conflist when it
	// is not the default.
	Socket string
}

// ConfList returns the network configuration list for network name: its
// subnet is that of the Docker network of that name on this host, or of
// the cluster definition of that name.
func (nm Names) ConfList(ctx context.Context, name, version string) (cniconf.ConfList, error) {
	subnet, err := nm.resolve(ctx, name)
	if err != nil {
		return cniconf.ConfList{}, err
	}
	socket := nm.Socket
	if socket == admin.DefaultSocket {
		socket = ""
	}
	cl, err := cniconf.NewConfList(name, subnet, version, socket)
	if err != nil {
		return cl, fault.Invalid(err)
	}
	return cl, nil
}

func (nm Names) resolve(ctx context.Context, name string) (netip.Prefix, error) {
	var dockerErr error
	if nm.DockerNetwork != nil {
		id, err := nm.DockerNetwork(ctx, name)
		if err == nil {
			for _, n := range nm.Networks() {
				if n.ID != id {
					continue
				}
				if err := driver.CanAttach(n); err != nil {
					return netip.Prefix{}, fault.Invalid(err)
				}
				if pools := n.Pools(); len(pools) > 0 {
					return pools[0], nil
				}
			}
			return netip.Prefix{}, fault.Invalid(fmt.Errorf("network %s (%s) of this host's Docker is not a podnet network", name, dockerid.Short(id)))
		}
		dockerErr = err
	}
	defs, err := nm.Definitions(ctx)
	if err != nil {
		return netip.Prefix{}, err
	}
	sort.Slice(defs, func(i, j int) bool { return defs[i].Created.Before(defs[j].Created) })
	for _, d := range defs {
		if d.Name == name && len(d.Subnets) > 0 {
			if d.Mode != netspec.ModeBridge && d.Mode != netspec.ModeVXLAN {
				return netip.Prefix{}, fault.Invalid(fmt.Errorf("network %s is in mode %s: %w", name, d.Mode, driver.ErrCNIMode))
			}
			return d.Subnets[0], nil
		}
	}
	err = fmt.Errorf("no podnet network named %s: no Docker network of that name on this host and no podnetctl network create definition", name)
	if dockerErr != nil {
		err = fmt.Errorf("%w (Docker: %w)", err, dockerErr)
	}
	return netip.Prefix{}, fault.Invalid(err)
}

// Status answers CNI STATUS for r's network: ready when etcd answers (an
// ADD writes to it) and this host has the network.
func (s *Service) Status(ctx context.Context, r *admin.CNIRequest, ping func(context.Context) error) admin.CNIStatus {
	if err := ping(ctx); err != nil {
		return admin.CNIStatus{Reason: fmt.Sprintf("podnetd cannot reach etcd: %v", err)}
	}
	if !r.Subnet.IsValid() {
		return admin.CNIStatus{Ready: true}
	}
	if _, err := s.network(r); err != nil {
		return admin.CNIStatus{Reason: err.Error()}
	}
	return admin.CNIStatus{Ready: true}
}
