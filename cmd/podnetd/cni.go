package main

import (
	"context"
	"log/slog"
	"net/netip"

	dnet "github.com/docker/docker/api/types/network"
	"github.com/docker/docker/client"
	"github.com/podnet/podnet/admin"
	"github.com/podnet/podnet/cluster"
	"github.com/podnet/podnet/cniattach"
	"github.com/podnet/podnet/driver"
	"github.com/podnet/podnet/ipam"
	"github.com/podnet/podnet/store"
)

// cniDeps are the parts of podnetd the CNI service works through.
type cniDeps struct {
	driver  *driver.Driver
	ipam    *ipam.IPAM
	store   *store.Store
	cluster *cluster.Manager
	docker  *client.Client // nil without a Docker API client
	// selects says which containers go to the selection index.
	selects store.Selection
}

// startCNI builds the service behind podnet's CNI plugin and runs its
// sweep of dead attachments (on the GC interval, with the GC grace).
func startCNI(ctx context.Context, cfg *config, d cniDeps, log *slog.Logger) (*cniattach.Service, cniattach.Names) {
	svc := cniattach.New(cniattach.Config{Driver: d.driver, IPAM: d.ipam, Records: d.store,
		Logger: log.With("component", "cni"), DNS: cniDNS(cfg)})
	go svc.Run(ctx, cfg.GCInterval, cfg.GCGrace)
	followPodman(ctx, cfg, d, log)
	names := cniattach.Names{Definitions: d.cluster.Networks, Networks: d.driver.Networks, Socket: cfg.AdminSocket}
	if d.docker != nil {
		names.DockerNetwork = func(ctx context.Context, name string) (string, error) {
			n, err := d.docker.NetworkInspect(ctx, name, dnet.InspectOptions{})
			return n.ID, err
		}
	}
	return svc, names
}

// cniDNS is the resolver configuration CNI results carry: the cluster DNS
// and the service domain as search domain (a bare service name then
// resolves in one query; the cluster DNS answers NXDOMAIN for its own
// zone at once, so container names cost no upstream round trip).
func cniDNS(cfg *config) admin.CNIDNS {
	addr, on := cfg.clusterDNS()
	if !on {
		return admin.CNIDNS{}
	}
	return admin.CNIDNS{Nameservers: []netip.Addr{addr}, Search: []string{"svc." + cfg.ClusterDomain}}
}

// followPodman follows podman's API for the labels and readiness of its
// containers' attachments (CNI passes no labels).
func followPodman(ctx context.Context, cfg *config, d cniDeps, log *slog.Logger) {
	if cfg.PodmanHost == "off" {
		return
	}
	pc, err := client.NewClientWithOpts(client.WithHost(cfg.PodmanHost), client.WithAPIVersionNegotiation())
	if err != nil {
		log.Warn("podman's API not followed: podman containers get no labels", "podman", cfg.PodmanHost, "err", err)
		return
	}
	go func() {
		defer pc.Close()
		cniattach.NewFollower(cniattach.FollowerConfig{Host: cfg.HostName, Engine: pc, Store: d.store, Selects: d.selects,
			Attachments: d.driver.Attachments, Logger: log.With("component", "podman"), Name: "podman", Addr: cfg.PodmanHost}).Run(ctx)
	}()
}
