package main

import (
	"context"
	"net/http"

	"github.com/podnet/podnet/admin"
)

// lbRoutes are the admin API of LoadBalancer pools, BGP peers and the
// hosts' announcers (created and changed through apply -f).
func (a *adminServer) lbRoutes() admin.Routes {
	with := a.withServices
	removed := func(kind, name string, found bool, err error) (any, error) {
		if err != nil {
			return nil, err
		}
		res := admin.ApplyResult{Kind: kind, Name: name, Action: admin.ActionNotFound}
		if found {
			res.Action = admin.ActionDeleted
		}
		return res, nil
	}
	return admin.Routes{
		"GET /v1/lbpools": with(func(ctx context.Context, s *services, _ *http.Request) (any, error) {
			return s.registry.Pools(ctx, "")
		}),
		"GET /v1/lbpools/{name}": with(func(ctx context.Context, s *services, r *http.Request) (any, error) {
			ps, err := s.registry.Pools(ctx, r.PathValue("name"))
			if err != nil {
				return nil, err
			}
			return ps[0], nil
		}),
		"DELETE /v1/lbpools/{name}": with(func(ctx context.Context, s *services, r *http.Request) (any, error) {
			found, err := s.registry.RemovePool(ctx, r.PathValue("name"))
			return removed(admin.KindLoadBalancerPool, r.PathValue("name"), found, err)
		}),
		"GET /v1/bgppeers": with(func(ctx context.Context, s *services, _ *http.Request) (any, error) {
			return s.registry.Peers(ctx, "")
		}),
		"GET /v1/bgppeers/{name}": with(func(ctx context.Context, s *services, r *http.Request) (any, error) {
			ps, err := s.registry.Peers(ctx, r.PathValue("name"))
			if err != nil {
				return nil, err
			}
			return ps[0], nil
		}),
		"DELETE /v1/bgppeers/{name}": with(func(ctx context.Context, s *services, r *http.Request) (any, error) {
			found, err := s.registry.RemovePeer(ctx, r.PathValue("name"))
			return removed(admin.KindBGPPeer, r.PathValue("name"), found, err)
		}),
		"GET /v1/bgp": with(func(ctx context.Context, s *services, _ *http.Request) (any, error) {
			return s.registry.Speakers(ctx)
		}),
	}
}
