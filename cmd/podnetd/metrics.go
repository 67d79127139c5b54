package main

import (
	"context"
	"log/slog"
	"net/netip"

	"github.com/podnet/podnet/internal/metrics"
	"github.com/podnet/podnet/ipam"
	"github.com/podnet/podnet/store"
)

// startMetrics serves Prometheus metrics on --metrics-addr in the
// background (see metrics.Serve: a taken port is retried, never fatal).
func startMetrics(ctx context.Context, cfg *config, ipm *ipam.IPAM, h *health, log *slog.Logger) {
	if cfg.MetricsAddr == metrics.Off {
		log.Info("metrics disabled (--metrics-addr off)")
		return
	}
	if loopback, _ := metrics.CheckAddr(cfg.MetricsAddr); !loopback {
		log.Warn("metrics are served on a non-loopback address: anyone who can reach it, containers on this host included, can read them (pools, request rates, errors); restrict it with a firewall",
			"addr", cfg.MetricsAddr)
	}
	metrics.SetIPAMUsage(ipm.Usage)
	metrics.SetEtcdLastHeard(h.feeds.LastHeard)
	reg := metrics.NewRegistry(version)
	go metrics.Serve(ctx, cfg.MetricsAddr, metrics.Handler(reg, log.With("component", "metrics"), h.problems, cfg.Profiling), log.With("component", "metrics"))
}

// networkPools lists the IPAM pools of networks, for ipam.Preload.
func networkPools(nets []store.Network) []netip.Prefix {
	var out []netip.Prefix
	for i := range nets {
		out = append(out, nets[i].Pools()...)
	}
	return out
}
