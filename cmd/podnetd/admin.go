package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"sort"
	"sync/atomic"
	"time"

	"github.com/podnet/podnet/admin"
	"github.com/podnet/podnet/cluster"
	"github.com/podnet/podnet/cniattach"
	"github.com/podnet/podnet/driver"
	"github.com/podnet/podnet/internal/fault"
	"github.com/podnet/podnet/ipam"
	"github.com/podnet/podnet/netpol"
	"github.com/podnet/podnet/overlay"
	"github.com/podnet/podnet/reconcile"
	"github.com/podnet/podnet/store"
)

// adminDeps is filled in once podnetd is ready; the admin socket opens
// before that (podnetctl status must answer while etcd is still coming up).
type adminDeps struct {
	store    *store.Store
	cluster  *cluster.Manager
	driver   *driver.Driver
	ipam     *ipam.IPAM
	rec      *reconcile.Reconciler
	embedded bool
	services *services
	policy   *netpol.Agent
	overlay  *overlay.Overlay // nil when multi-host networking is unavailable
	cni      *cniattach.Service
	cniNames cniattach.Names
}

type adminServer struct {
	cfg     *config
	started time.Time
	deps    atomic.Pointer[adminDeps]
	readyCh chan struct{}
}

func newAdminServer(cfg *config) *adminServer {
	return &adminServer{cfg: cfg, started: time.Now(), readyCh: make(chan struct{})}
}

// setReady publishes the dependencies and releases waiting calls.
func (a *adminServer) setReady(d *adminDeps) {
	a.deps.Store(d)
	close(a.readyCh)
}

var errNoOverlay = errors.New("multi-host (vxlan) networking is unavailable on this host: see podnetd's log")

var errStarting = errors.New("podnetd is still starting (connecting to etcd, restoring state); retry shortly")

// ready waits (up to 30 s) for podnetd to be ready and returns the
// dependencies, or errStarting.
func (a *adminServer) ready(ctx context.Context) (*adminDeps, error) {
	t := time.NewTimer(30 * time.Second)
	defer t.Stop()
	select {
	case <-a.readyCh:
		return a.deps.Load(), nil
	case <-t.C:
		return nil, errStarting
	case <-ctx.Done():
		return nil, errStarting
	}
}

func (a *adminServer) serve(ctx context.Context, log *slog.Logger) error {
	cfg := a.cfg
	routes := admin.Routes{
		"GET /v1/status": func(ctx context.Context, _ *http.Request) (any, error) {
			s := admin.Status{Host: cfg.HostName, Version: version, Started: a.started, PluginSocket: cfg.PluginSocket}
			d := a.deps.Load()
			if d == nil {
				s.EtcdError = errStarting.Error()
				return s, nil
			}
			s.Ready, s.EtcdEndpoints, s.EtcdEmbedded = true, d.store.Endpoints(), d.embedded
			s.Modes, s.Networks, s.Endpoints = d.driver.Modes(), len(d.driver.Networks()), len(d.driver.Endpoints())
			if err := d.store.Ping(ctx); err != nil {
				s.EtcdError = err.Error()
			} else {
				s.EtcdHealthy = true
			}
			return s, nil
		},
		"GET /v1/networks": func(ctx context.Context, _ *http.Request) (any, error) {
			d, err := a.ready(ctx)
			if err != nil {
				return nil, err
			}
			ns := d.driver.Networks()
			sort.Slice(ns, func(i, j int) bool { return ns[i].Created.Before(ns[j].Created) })
			out := make([]admin.Network, len(ns))
			for i, n := range ns {
				out[i] = networkView(n)
			}
			return out, nil
		},
		"GET /v1/endpoints": func(ctx context.Context, _ *http.Request) (any, error) {
			d, err := a.ready(ctx)
			if err != nil {
				return nil, err
			}
			es := d.driver.Endpoints()
			sort.Slice(es, func(i, j int) bool { return es[i].Created.Before(es[j].Created) })
			out := make([]admin.Endpoint, len(es))
			for i, e := range es {
				out[i] = endpointView(e)
			}
			return out, nil
		},
		"GET /v1/overlay": func(ctx context.Context, _ *http.Request) (any, error) {
			d, err := a.ready(ctx)
			if err != nil {
				return nil, err
			}
			if d.overlay == nil {
				return nil, errNoOverlay
			}
			return d.overlay.Stats(), nil
		},
		"GET /v1/pools": func(ctx context.Context, _ *http.Request) (any, error) {
			d, err := a.ready(ctx)
			if err != nil {
				return nil, err
			}
			return d.ipam.Pools(ctx)
		},
		"GET /v1/cluster/networks": func(ctx context.Context, _ *http.Request) (any, error) {
			d, err := a.ready(ctx)
			if err != nil {
				return nil, err
			}
			return d.cluster.Networks(ctx)
		},
		"POST /v1/cluster/networks": func(ctx context.Context, r *http.Request) (any, error) {
			d, err := a.ready(ctx)
			if err != nil {
				return nil, err
			}
			var spec admin.NetworkSpec
			if err := json.NewDecoder(r.Body).Decode(&spec); err != nil {
				return nil, fault.Invalid(fmt.Errorf("malformed network spec: %w", err))
			}
			return userErr(d.cluster.CreateNetwork(ctx, spec))
		},
		"DELETE /v1/cluster/networks/{name}": func(ctx context.Context, r *http.Request) (any, error) {
			d, err := a.ready(ctx)
			if err != nil {
				return nil, err
			}
			return userErr(struct{}{}, d.cluster.RemoveNetwork(ctx, r.PathValue("name")))
		},
		"GET /v1/cluster/hosts": func(ctx context.Context, _ *http.Request) (any, error) {
			d, err := a.ready(ctx)
			if err != nil {
				return nil, err
			}
			return d.cluster.Hosts(ctx)
		},
		"DELETE /v1/cluster/hosts/{name}": func(ctx context.Context, r *http.Request) (any, error) {
			d, err := a.ready(ctx)
			if err != nil {
				return nil, err
			}
			return userErr(struct{}{}, d.cluster.RemoveHost(ctx, r.PathValue("name")))
		},
		"GET /v1/cluster/encryption": func(ctx context.Context, _ *http.Request) (any, error) {
			d, err := a.ready(ctx)
			if err != nil {
				return nil, err
			}
			return d.cluster.Encryption(ctx)
		},
		"POST /v1/cluster/encryption": func(ctx context.Context, r *http.Request) (any, error) {
			d, err := a.ready(ctx)
			if err != nil {
				return nil, err
			}
			var e admin.Encryption
			if err := json.NewDecoder(r.Body).Decode(&e); err != nil {
				return nil, fault.Invalid(fmt.Errorf("malformed encryption request: %w", err))
			}
			return userErr(d.cluster.SetEncryption(ctx, e.Mode, "podnetctl on "+cfg.HostName))
		},
		"POST /v1/gc": func(ctx context.Context, r *http.Request) (any, error) {
			d, err := a.ready(ctx)
			if err != nil {
				return nil, err
			}
			grace := cfg.GCGrace
			if g := r.URL.Query().Get("grace"); g != "" {
				if grace, err = time.ParseDuration(g); err != nil {
					return nil, fault.Invalid(fmt.Errorf("grace %q: %w", g, err))
				}
			}
			// CNI attachments first: their addresses are then free for
			// the reconciler's address round.
			dead, cniErr := d.cni.Sweep(ctx, grace)
			if d.rec == nil {
				return nil, fault.Invalid(errors.Join(errNoDocker, cniErr))
			}
			rep, err := d.rec.OnceWithGrace(ctx, grace)
			return admin.GCReport{Endpoints: append(dead, rep.Endpoints...), Networks: rep.Networks, Links: rep.Links,
				Addresses: rep.Addresses, Pools: rep.Pools}, errors.Join(cniErr, err)
		},
	}
	maps.Copy(routes, a.serviceRoutes())
	maps.Copy(routes, a.policyRoutes())
	maps.Copy(routes, a.lbRoutes())
	maps.Copy(routes, a.cniRoutes())
	return admin.Serve(ctx, cfg.AdminSocket, routes, log)
}

// userErr returns v, or err (the caller's fault when the cluster package
// says so: fault.ErrInvalid).
func userErr[T any](v T, err error) (any, error) {
	if err != nil {
		return nil, err
	}
	return v, nil
}

var errNoDocker = errors.New("garbage collection needs the Docker API, which podnetd could not reach (see --docker-host)")
