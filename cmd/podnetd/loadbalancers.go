package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"time"

	"github.com/podnet/podnet/bgp"
	"github.com/podnet/podnet/catalog"
	"github.com/podnet/podnet/feed"
	"github.com/podnet/podnet/internal/link"
	"github.com/podnet/podnet/lbannounce"
	"github.com/podnet/podnet/overlay"
	"github.com/podnet/podnet/store"
)

// validateLB checks the announcer flags: its lease must run out well
// before the host's liveness does, or an address would wait for the
// host to be declared dead.
func (c *config) validateLB() error {
	if c.LBLeaseTTL < 2*time.Second || c.LBLeaseTTL%time.Second != 0 {
		return fmt.Errorf("--lb-lease-ttl %v: want whole seconds, at least 2s (etcd's shortest lease)", c.LBLeaseTTL)
	}
	if c.LBLeaseTTL >= c.LivenessTTL {
		return fmt.Errorf("--lb-lease-ttl %v must be shorter than --liveness-ttl %v: L2 addresses must move before the host is declared gone",
			c.LBLeaseTTL, c.LivenessTTL)
	}
	return nil
}

// startAnnouncer runs this host's LoadBalancer announcer (L2 election and
// ARP/NDP responder, BGP speaker) until ctx ends or stop is called; stop
// returns once it has handed its addresses over.
func startAnnouncer(ctx context.Context, cfg *config, st *store.Store, feeds *feed.Hub, k *link.Kernel, cat *catalog.Catalog, log *slog.Logger) (stop func()) {
	log = log.With("component", "lb")
	var underlay overlay.Underlay
	if u, err := overlay.DetectUnderlay(k, cfg.AdvertiseAddr); err == nil {
		underlay = u
	} else {
		log.Warn("no underlay interface: L2 addresses are answered only on interfaces whose network holds them, BGP speaks from the kernel's choice of address", "err", err)
	}
	speaker := bgp.New(bgp.Config{Local: underlay.Addr, RouterID: routerID(underlay.Addr, cfg.HostName),
		Logger: log.With("component", "bgp")})
	a := lbannounce.New(lbannounce.Config{Host: cfg.HostName, Store: st, Feeds: feeds, Catalog: cat,
		L2: lbannounce.NewResponder(log), Router: speaker, Interfaces: &lbannounce.HostInterfaces{Underlay: underlay.Dev},
		TTL: cfg.LBLeaseTTL, Logger: log})
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { a.Run(ctx) })
	return func() { cancel(); wg.Wait() }
}

// routerID is the BGP identifier: the IPv4 underlay address, else one
// derived from the host name (hosts with only IPv6 need one too).
func routerID(underlay netip.Addr, host string) netip.Addr {
	if underlay.Is4() {
		return underlay
	}
	var b [4]byte
	for i, c := range []byte(host) {
		b[i%4] = b[i%4]*31 + c
	}
	b[0] |= 1 // never 0.0.0.0
	return netip.AddrFrom4(b)
}
