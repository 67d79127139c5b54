package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/podnet/podnet/admin"
	"github.com/podnet/podnet/cniattach"
	"github.com/podnet/podnet/internal/fault"
)

// cniRoutes are the admin API of podnet's CNI plugin (admin/cni.go).
func (a *adminServer) cniRoutes() admin.Routes {
	with := func(h func(ctx context.Context, d *adminDeps, r *http.Request) (any, error)) admin.Handler {
		return func(ctx context.Context, r *http.Request) (any, error) {
			d, err := a.ready(ctx)
			if err != nil {
				return nil, err
			}
			v, err := h(ctx, d, r)
			if err != nil && errors.Is(err, fault.ErrInvalid) {
				return nil, fault.Invalid(err)
			}
			return v, err
		}
	}
	attachment := func(h func(ctx context.Context, s *cniattach.Service, req *admin.CNIRequest) (any, error)) admin.Handler {
		return with(func(ctx context.Context, d *adminDeps, r *http.Request) (any, error) {
			var req admin.CNIRequest
			if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
				return nil, fault.Invalid(fmt.Errorf("malformed CNI request: %w", err))
			}
			return h(ctx, d.cni, &req)
		})
	}
	return admin.Routes{
		"POST /v1/cni/add": attachment(func(ctx context.Context, s *cniattach.Service, req *admin.CNIRequest) (any, error) {
			return s.Add(ctx, req)
		}),
		"POST /v1/cni/check": attachment(func(ctx context.Context, s *cniattach.Service, req *admin.CNIRequest) (any, error) {
			return s.Check(ctx, req)
		}),
		"POST /v1/cni/del": attachment(func(ctx context.Context, s *cniattach.Service, req *admin.CNIRequest) (any, error) {
			return struct{}{}, s.Del(ctx, req)
		}),
		"POST /v1/cni/gc": with(func(ctx context.Context, d *adminDeps, r *http.Request) (any, error) {
			var req admin.CNIGCRequest
			if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
				return nil, fault.Invalid(fmt.Errorf("malformed CNI GC request: %w", err))
			}
			return d.cni.GC(ctx, &req)
		}),
		// STATUS never waits for podnetd to get ready: it says so at once.
		"POST /v1/cni/status": func(ctx context.Context, r *http.Request) (any, error) {
			var req admin.CNIRequest
			if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
				return nil, fault.Invalid(fmt.Errorf("malformed CNI status request: %w", err))
			}
			d := a.deps.Load()
			if d == nil {
				return admin.CNIStatus{Reason: errStarting.Error()}, nil
			}
			return d.cni.Status(ctx, &req, d.store.Ping), nil
		},
		"GET /v1/cni/config/{network}": with(func(ctx context.Context, d *adminDeps, r *http.Request) (any, error) {
			return d.cniNames.ConfList(ctx, r.PathValue("network"), r.URL.Query().Get("cniVersion"))
		}),
	}
}
