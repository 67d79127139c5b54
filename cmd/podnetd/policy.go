package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"

	"github.com/podnet/podnet/admin"
	"github.com/podnet/podnet/catalog"
	"github.com/podnet/podnet/dataplane"
	"github.com/podnet/podnet/driver"
	"github.com/podnet/podnet/internal/fault"
	"github.com/podnet/podnet/internal/metrics"
	"github.com/podnet/podnet/netpol"
	"github.com/podnet/podnet/registry"
)

// newPolicy builds this host's network policy agent; run starts it.
func newPolicy(cfg *config, cat *catalog.Catalog, ports *dataplane.Engine, log *slog.Logger) *netpol.Agent {
	a := netpol.New(netpol.Config{Host: cfg.HostName, Catalog: cat, Programmer: ports, Log: cfg.PolicyLog,
		Logger: log.With("component", "policy")})
	metrics.SetPolicyDenials(func() []metrics.PolicyDenial {
		ds, err := ports.PolicyDenials()
		if err != nil {
			log.Debug("policy counters not read", "err", err)
			return nil
		}
		out := make([]metrics.PolicyDenial, 0, len(ds))
		for _, d := range ds {
			dir := "ingress"
			if d.Egress {
				dir = "egress"
			}
			out = append(out, metrics.PolicyDenial{Policy: d.Policy, Direction: dir, Packets: d.Packets})
		}
		return out
	})
	return a
}

// runPolicy follows the catalog and, with --policy-log, logs denied
// packets.
func runPolicy(ctx context.Context, cfg *config, a *netpol.Agent, log *slog.Logger) {
	go a.Run(ctx)
	if cfg.PolicyLog {
		go func() {
			if err := a.RunLog(ctx); err != nil {
				log.Error("policy log stopped: denied packets are counted but not logged", "err", err)
			}
		}()
	}
}

// policyHook is the agent as the driver sees it.
type policyHook struct{ a *netpol.Agent }

func local(ep driver.PolicyEndpoint) netpol.LocalEndpoint {
	return netpol.LocalEndpoint{ID: ep.ID, Network: ep.Network, Addrs: ep.Addrs, Enforced: ep.Enforced}
}

func (h policyHook) EndpointCreated(ctx context.Context, ep driver.PolicyEndpoint) error {
	return h.a.EndpointCreated(ctx, local(ep))
}

func (h policyHook) EndpointDeleted(ctx context.Context, id string) { h.a.EndpointDeleted(ctx, id) }

func (h policyHook) Restore(eps []driver.PolicyEndpoint) {
	out := make([]netpol.LocalEndpoint, 0, len(eps))
	for _, ep := range eps {
		out = append(out, local(ep))
	}
	h.a.Restore(out)
}

// policyRoutes are the admin API of network policies (apply and delete
// of files go through the services' routes, which take every kind).
func (a *adminServer) policyRoutes() admin.Routes {
	with := func(h func(ctx context.Context, r *registry.Registry, req *http.Request) (any, error)) admin.Handler {
		return func(ctx context.Context, req *http.Request) (any, error) {
			d, err := a.ready(ctx)
			if err != nil {
				return nil, err
			}
			return h(ctx, d.services.registry, req)
		}
	}
	return admin.Routes{
		"GET /v1/policies": with(func(ctx context.Context, r *registry.Registry, _ *http.Request) (any, error) {
			return r.Policies(ctx)
		}),
		"GET /v1/policies/{name}": with(func(ctx context.Context, r *registry.Registry, req *http.Request) (any, error) {
			return r.Policy(ctx, req.PathValue("name"))
		}),
		"DELETE /v1/policies/{name}": with(func(ctx context.Context, r *registry.Registry, req *http.Request) (any, error) {
			name := req.PathValue("name")
			found, err := r.RemovePolicy(ctx, name)
			if err != nil {
				return nil, err
			}
			res := admin.ApplyResult{Kind: admin.KindNetworkPolicy, Name: name, Action: admin.ActionNotFound}
			if found {
				res.Action = admin.ActionDeleted
			}
			return res, nil
		}),
		"GET /v1/policy-agent": func(ctx context.Context, _ *http.Request) (any, error) {
			d, err := a.ready(ctx)
			if err != nil {
				return nil, err
			}
			return d.policy.Status(), nil
		},
		"POST /v1/policies/check": with(func(ctx context.Context, r *registry.Registry, req *http.Request) (any, error) {
			var q admin.PolicyCheck
			if err := json.NewDecoder(io.LimitReader(req.Body, 1<<16)).Decode(&q); err != nil {
				return nil, fault.Invalid(fmt.Errorf("malformed request: %w", err))
			}
			return r.CheckPolicy(ctx, q)
		}),
	}
}
