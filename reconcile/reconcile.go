package reconcile

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"time"

	dnet "github.com/docker/docker/api/types/network"
	"github.com/podnet/podnet/driver"
	"github.com/podnet/podnet/internal/dockerid"
	"github.com/podnet/podnet/internal/dockerup"
	"github.com/podnet/podnet/store"
)

// Docker is the part of the Docker API client the reconciler uses.
type Docker interface {
	NetworkList(ctx context.Context, options dnet.ListOptions) ([]dnet.Summary, error)
	NetworkInspect(ctx context.Context, networkID string, options dnet.InspectOptions) (dnet.Inspect, error)
}

// Driver is the network driver's GC side.
type Driver interface {
	Networks() []store.Network
	Endpoints() []store.Endpoint
	GC(ctx context.Context, live driver.Live, grace time.Duration) (driver.GCResult, error)
}

// IPAM is the IPAM's GC side.
type IPAM interface {
	GCAddresses(ctx context.Context, live map[netip.Addr]bool, grace time.Duration) ([]netip.Addr, error)
	GCPools(ctx context.Context, live map[netip.Prefix]bool, grace time.Duration) ([]netip.Prefix, error)
}

// Config wires a Reconciler.
type Config struct {
	Docker Docker
	Driver Driver
	IPAM   IPAM
	Logger *slog.Logger
	// Interval between rounds (default 60 s); Delay before the first
	// (default 10 s, so dockerd can finish restoring containers).
	Interval, Delay time.Duration
	// Grace is the minimum age of anything removed (default 60 s).
	Grace time.Duration
	// Reach is podnetd's shared view of whether Docker answers; nil: the
	// reconciler's own.
	Reach *dockerup.Tracker
}

// Reconciler runs GC rounds.
type Reconciler struct {
	cfg Config
	log *slog.Logger
}

// New builds a Reconciler.
func New(cfg Config) *Reconciler {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Interval == 0 {
		cfg.Interval = 60 * time.Second
	}
	if cfg.Delay == 0 {
		cfg.Delay = 10 * time.Second
	}
	if cfg.Grace == 0 {
		cfg.Grace = 60 * time.Second
	}
	if cfg.Reach == nil {
		cfg.Reach = dockerup.New(cfg.Logger, "")
	}
	return &Reconciler{cfg: cfg, log: cfg.Logger}
}

// Run runs rounds until ctx ends.
func (r *Reconciler) Run(ctx context.Context) {
	t := time.NewTimer(r.cfg.Delay)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		// A round that failed only because Docker is unreachable is the
		// tracker's to report (once per outage).
		if _, err := r.Once(ctx); r.cfg.Reach.Observe(ctx, err) {
			r.log.Debug("reconcile round skipped", "err", err)
		} else if err != nil {
			r.log.Warn("reconcile round failed", "err", err)
		}
		t.Reset(r.cfg.Interval)
	}
}

// Report says what one round removed.
type Report struct {
	Endpoints, Networks, Links []string
	Addresses                  []netip.Addr
	Pools                      []netip.Prefix
}

// Once runs one round with the configured grace period.
func (r *Reconciler) Once(ctx context.Context) (Report, error) {
	return r.OnceWithGrace(ctx, r.cfg.Grace)
}

// OnceWithGrace runs one round removing anything older than grace (an
// operator who knows a container start is not in flight may pass 0).
func (r *Reconciler) OnceWithGrace(ctx context.Context, grace time.Duration) (Report, error) {
	var rep Report
	dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	nets, err := r.cfg.Docker.NetworkList(dctx, dnet.ListOptions{})
	if err != nil {
		return rep, fmt.Errorf("list Docker networks (GC skipped): %w", err)
	}
	live := driver.Live{Networks: map[string]bool{}, Endpoints: map[string]bool{}}
	for _, n := range nets {
		live.Networks[n.ID] = true
	}
	ips := map[netip.Addr]bool{}
	pools := map[netip.Prefix]bool{}
	for _, n := range r.cfg.Driver.Networks() {
		if !live.Networks[n.ID] {
			continue
		}
		info, err := r.cfg.Docker.NetworkInspect(dctx, n.ID, dnet.InspectOptions{})
		if err != nil {
			return rep, fmt.Errorf("inspect Docker network %s (GC skipped): %w", dockerid.Short(n.ID), err)
		}
		for _, c := range info.Containers {
			live.Endpoints[c.EndpointID] = true
			for _, a := range []string{c.IPv4Address, c.IPv6Address} {
				if a == "" {
					continue // no address of that family
				}
				p, err := netip.ParsePrefix(a)
				if err != nil {
					// Not knowing a live address could release it.
					return rep, fmt.Errorf("Docker network %s reports address %q for endpoint %s (GC skipped): %w", n.ID, a, c.EndpointID, err)
				}
				ips[p.Addr()] = true
			}
		}
		// Aux addresses are live as long as the network is (IPAM also
		// records them as aux, which GC never collects).
		for _, c := range info.IPAM.Config {
			for _, a := range c.AuxAddress {
				ip, err := netip.ParseAddr(a)
				if err != nil {
					return rep, fmt.Errorf("Docker network %s reports aux address %q (GC skipped): %w", n.ID, a, err)
				}
				ips[ip] = true
			}
		}
		for _, p := range n.Pools() {
			pools[p.Masked()] = true
		}
	}
	res, derr := r.cfg.Driver.GC(ctx, live, grace)
	rep.Endpoints, rep.Networks, rep.Links = res.Endpoints, res.Networks, res.Links
	// Addresses of endpoints that survived driver GC stay, even if Docker's
	// inspect lagged behind.
	for _, ep := range r.cfg.Driver.Endpoints() {
		for _, p := range []netip.Prefix{ep.IPv4, ep.IPv6} {
			if p.IsValid() {
				ips[p.Addr()] = true
			}
		}
	}
	for _, n := range r.cfg.Driver.Networks() {
		for _, p := range n.Pools() {
			pools[p.Masked()] = true
		}
		// A macvlan/ipvlan host-access shim's address lives as long as
		// its network.
		if n.HostAccess.IsValid() {
			ips[n.HostAccess.Addr()] = true
		}
	}
	var aerr, perr error
	rep.Addresses, aerr = r.cfg.IPAM.GCAddresses(ctx, ips, grace)
	rep.Pools, perr = r.cfg.IPAM.GCPools(ctx, pools, grace)
	if len(rep.Endpoints)+len(rep.Networks)+len(rep.Links)+len(rep.Addresses)+len(rep.Pools) > 0 {
		r.log.Info("reconciled with Docker", "endpoints", rep.Endpoints, "networks", rep.Networks,
			"links", rep.Links, "addresses", rep.Addresses, "pools", rep.Pools)
	}
	for _, e := range []error{derr, aerr, perr} {
		if e != nil {
			return rep, e
		}
	}
	return rep, nil
}
