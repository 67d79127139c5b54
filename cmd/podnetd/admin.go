package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"sort"
	"time"

	"github.com/podnet/podnet/admin"
	"github.com/podnet/podnet/driver"
	"github.com/podnet/podnet/ipam"
	"github.com/podnet/podnet/reconcile"
	"github.com/podnet/podnet/store"
)

type adminDeps struct {
	store    *store.Store
	driver   *driver.Driver
	ipam     *ipam.IPAM
	rec      *reconcile.Reconciler
	started  time.Time
	embedded bool
}

func serveAdmin(ctx context.Context, cfg *config, d adminDeps, log *slog.Logger) error {
	routes := admin.Routes{
		"GET /v1/status": func(ctx context.Context, _ *http.Request) (any, error) {
			s := admin.Status{Host: cfg.HostName, Version: version, Started: d.started, Ready: true,
				EtcdEndpoints: d.store.Endpoints(), EtcdEmbedded: d.embedded, PluginSocket: cfg.PluginSocket,
				Modes: d.driver.Modes(), Networks: len(d.driver.Networks()), Endpoints: len(d.driver.Endpoints())}
			if err := d.store.Ping(ctx); err != nil {
				s.EtcdError = err.Error()
			} else {
				s.EtcdHealthy = true
			}
			return s, nil
		},
		"GET /v1/networks": func(context.Context, *http.Request) (any, error) {
			ns := d.driver.Networks()
			sort.Slice(ns, func(i, j int) bool { return ns[i].Created.Before(ns[j].Created) })
			return ns, nil
		},
		"GET /v1/endpoints": func(context.Context, *http.Request) (any, error) {
			es := d.driver.Endpoints()
			sort.Slice(es, func(i, j int) bool { return es[i].Created.Before(es[j].Created) })
			return es, nil
		},
		"GET /v1/pools": func(ctx context.Context, _ *http.Request) (any, error) {
			return d.ipam.Pools(ctx)
		},
		"POST /v1/gc": func(ctx context.Context, r *http.Request) (any, error) {
			if d.rec == nil {
				return nil, admin.UserError{Err: errNoDocker}
			}
			grace := cfg.GCGrace
			if g := r.URL.Query().Get("grace"); g != "" {
				var err error
				if grace, err = time.ParseDuration(g); err != nil {
					return nil, admin.UserError{Err: fmt.Errorf("grace %q: %w", g, err)}
				}
			}
			rep, err := d.rec.OnceWithGrace(ctx, grace)
			out := admin.GCReport{Endpoints: rep.Endpoints, Networks: rep.Networks, Links: rep.Links}
			for _, a := range rep.Addresses {
				out.Addresses = append(out.Addresses, a.String())
			}
			for _, p := range rep.Pools {
				out.Pools = append(out.Pools, p.String())
			}
			return out, err
		},
	}
	return admin.Serve(ctx, cfg.AdminSocket, routes, log)
}

type constErr string

func (e constErr) Error() string { return string(e) }

const errNoDocker = constErr("garbage collection needs the Docker API, which podnetd could not reach (see --docker-host)")
