package plugin

import (
	"context"

	"github.com/docker/go-plugins-helpers/ipam"
	"github.com/docker/go-plugins-helpers/network"
)

// NetworkDriver is what the mux needs from podnet's network driver.
type NetworkDriver interface {
	CreateNetwork(ctx context.Context, r *network.CreateNetworkRequest) error
	DeleteNetwork(ctx context.Context, r *network.DeleteNetworkRequest) error
	CreateEndpoint(ctx context.Context, r *network.CreateEndpointRequest) (*network.CreateEndpointResponse, error)
	DeleteEndpoint(ctx context.Context, r *network.DeleteEndpointRequest) error
	EndpointInfo(ctx context.Context, r *network.InfoRequest) (*network.InfoResponse, error)
	Join(ctx context.Context, r *network.JoinRequest) (*network.JoinResponse, error)
	Leave(ctx context.Context, r *network.LeaveRequest) error
	ProgramExternalConnectivity(ctx context.Context, r *network.ProgramExternalConnectivityRequest) error
	RevokeExternalConnectivity(ctx context.Context, r *network.RevokeExternalConnectivityRequest) error
}

// IPAMDriver is what the mux needs from podnet's IPAM.
type IPAMDriver interface {
	RequestPool(ctx context.Context, r *ipam.RequestPoolRequest) (*ipam.RequestPoolResponse, error)
	ReleasePool(ctx context.Context, r *ipam.ReleasePoolRequest) error
	RequestAddress(ctx context.Context, r *ipam.RequestAddressRequest) (*ipam.RequestAddressResponse, error)
	ReleaseAddress(ctx context.Context, r *ipam.ReleaseAddressRequest) error
}
