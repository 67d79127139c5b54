package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/podnet/podnet/admin"
	"github.com/podnet/podnet/internal/fault"
	"github.com/podnet/podnet/registry"
)

// serviceRoutes are the admin API of services.
func (a *adminServer) serviceRoutes() admin.Routes {
	with := a.withServices
	return admin.Routes{
		"GET /v1/services": with(func(ctx context.Context, s *services, _ *http.Request) (any, error) {
			return s.registry.List(ctx)
		}),
		"GET /v1/services/{name}": with(func(ctx context.Context, s *services, r *http.Request) (any, error) {
			return s.registry.Get(ctx, r.PathValue("name"))
		}),
		"POST /v1/services": with(func(ctx context.Context, s *services, r *http.Request) (any, error) {
			var spec admin.ServiceSpec
			dec := json.NewDecoder(r.Body)
			dec.DisallowUnknownFields()
			if err := dec.Decode(&spec); err != nil {
				return nil, fault.Invalid(fmt.Errorf("malformed service spec: %w", err))
			}
			created, err := s.registry.Create(ctx, spec)
			if err != nil {
				return nil, err
			}
			return admin.ServiceView{ServiceSpec: registry.SpecOf(created),
				Status: &admin.ServiceStatus{Created: created.Created, Updated: created.Updated}}, nil
		}),
		"DELETE /v1/services/{name}": with(func(ctx context.Context, s *services, r *http.Request) (any, error) {
			name := r.PathValue("name")
			found, err := s.registry.Remove(ctx, name)
			if err != nil {
				return nil, err
			}
			res := admin.ApplyResult{Name: name, Action: admin.ActionNotFound}
			if found {
				res.Action = admin.ActionDeleted
			}
			return res, nil
		}),
		"POST /v1/services/apply": with(func(ctx context.Context, s *services, r *http.Request) (any, error) {
			f, err := decodeServiceFile(r)
			if err != nil {
				return nil, err
			}
			return s.registry.ApplyFile(ctx, f.Source, f.Content)
		}),
		"POST /v1/services/delete": with(func(ctx context.Context, s *services, r *http.Request) (any, error) {
			f, err := decodeServiceFile(r)
			if err != nil {
				return nil, err
			}
			return s.registry.DeleteFile(ctx, f.Source, f.Content)
		}),
		"GET /v1/service-agent": with(func(_ context.Context, s *services, _ *http.Request) (any, error) {
			return s.proxy.Status(), nil
		}),
	}
}

// withServices adapts a handler of the service layer: it waits for
// podnetd to be ready and answers the registry's refusals as the
// caller's fault.
func (a *adminServer) withServices(h func(ctx context.Context, s *services, r *http.Request) (any, error)) admin.Handler {
	return func(ctx context.Context, r *http.Request) (any, error) {
		d, err := a.ready(ctx)
		if err != nil {
			return nil, err
		}
		return h(ctx, d.services, r)
	}
}

// decodeServiceFile reads the body of apply and delete (the admin server
// has bounded its size already) and refuses a file over the limit
// podnetctl keeps to, for clients that do not.
func decodeServiceFile(r *http.Request) (admin.ServiceFile, error) {
	var f admin.ServiceFile
	if err := json.NewDecoder(r.Body).Decode(&f); err != nil {
		return f, fault.Invalid(fmt.Errorf("malformed request: %w", err))
	}
	if len(f.Content) > admin.MaxServiceFile {
		return f, fault.Invalid(admin.FileTooLarge(f.Source))
	}
	return f, nil
}
