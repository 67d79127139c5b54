package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"regexp"

	"github.com/podnet/podnet/catalog"
	"github.com/podnet/podnet/dataplane"
	"github.com/podnet/podnet/feed"
	"github.com/podnet/podnet/internal/metrics"
	"github.com/podnet/podnet/proxy"
	"github.com/podnet/podnet/registry"
	"github.com/podnet/podnet/store"
)

// services is the service layer of podnetd: the registry behind the admin
// API, the catalog the agent and the DNS read, and the proxy agent.
type services struct {
	registry *registry.Registry
	catalog  *catalog.Catalog
	proxy    *proxy.Agent
	st       *store.Store
}

var domainRE = regexp.MustCompile(`^([a-z0-9]([-a-z0-9]*[a-z0-9])?\.)*[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)

// validateServices checks the service flags.
func (c *config) validateServices() error {
	if _, err := registry.ParseExternalIPCIDRs(c.ExternalIPs); err != nil {
		return err
	}
	if _, err := c.serviceRange(); err != nil {
		return fmt.Errorf("--service-cidr: %w", err)
	}
	if !domainRE.MatchString(c.ClusterDomain) || len(c.ClusterDomain) > 200 {
		return fmt.Errorf("--cluster-domain %q: want a DNS name of lower case letters, digits, '-' and '.'", c.ClusterDomain)
	}
	return nil
}

func (c *config) serviceRange() (registry.ServiceRange, error) {
	p, err := netip.ParsePrefix(c.ServiceCIDR)
	if err != nil {
		return registry.ServiceRange{}, err
	}
	r, err := registry.NewServiceRange(p, c.dnsAddr)
	if err != nil {
		return r, err
	}
	r.ExternalCIDRs, err = registry.ParseExternalIPCIDRs(c.ExternalIPs)
	return r, err
}

// newServices checks this podnetd's service CIDR against the cluster's
// (refusing to run when they disagree or it overlaps a pool) and builds
// the service layer; start runs it.
func newServices(ctx context.Context, cfg *config, st *store.Store, cat *catalog.Catalog, log *slog.Logger) (*services, error) {
	rng, err := cfg.serviceRange()
	if err != nil {
		return nil, err
	}
	if err := registry.EnsureServiceCIDR(ctx, st, rng.CIDR, cfg.HostName); err != nil {
		return nil, err
	}
	if err := registry.EnsureExternalIPCIDRs(ctx, st, rng.ExternalCIDRs, cfg.HostName); err != nil {
		return nil, err
	}
	log = log.With("component", "services")
	return &services{
		registry: registry.New(registry.Config{Store: st, Range: rng, Host: cfg.HostName, Logger: log}),
		catalog:  cat,
		st:       st,
	}, nil
}

// newCatalog is the in-memory view of services and their endpoints that
// the proxy agent fills and the cluster DNS reads.
func newCatalog(cfg *config, log *slog.Logger) (*catalog.Catalog, error) {
	rng, err := cfg.serviceRange()
	if err != nil {
		return nil, err
	}
	return catalog.New(cfg.HostName, rng.CIDR.Addr().Is6(), log.With("component", "services")), nil
}

// start runs the catalog and the proxy agent, which programs services
// through the NAT engine.
func (s *services) start(ctx context.Context, cfg *config, feeds *feed.Hub, ports *dataplane.Engine, log *slog.Logger) {
	go s.catalog.Run(ctx, feeds)
	go reselectLoop(ctx, s.st, cfg.HostName, s.catalog, log.With("component", "selection"))
	s.proxy = proxy.New(proxy.Config{Host: cfg.HostName, Store: s.st, Catalog: s.catalog,
		Programmer: ports, HealthTimeout: cfg.HealthzTimeout, ExternalIPOK: s.registry.Range().CheckExternalIP,
		Logger: log.With("component", "proxy")})
	metrics.SetProxyPending(s.proxy.Pending)
	metrics.SetHosts(func() (metrics.HostCounts, bool) {
		alive, down, loaded := s.catalog.HostCounts()
		return metrics.HostCounts{Alive: alive, Down: down}, loaded
	})
	go s.proxy.Run(ctx)
}
