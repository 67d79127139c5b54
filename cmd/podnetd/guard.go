package main

import (
	"context"
	"log/slog"
	"net/netip"
	"time"

	"github.com/podnet/podnet/dataplane"
	"github.com/podnet/podnet/store"
)

// etcdGuardInterval is how often the etcd members' URLs are re-read for
// the rule that keeps containers away from etcd (members come and go
// rarely; a new member is covered within this interval).
const etcdGuardInterval = 5 * time.Minute

// guardEtcd keeps the data plane's etcd set (containers never reach etcd) on the
// endpoints podnetd was given and, once etcd answers, the client and peer
// URLs of every member of the cluster.
func guardEtcd(ctx context.Context, st *store.Store, ports *dataplane.Engine, log *slog.Logger) {
	set := func(eps []netip.AddrPort) {
		if err := ports.SetEtcd(ctx, eps); err != nil && ctx.Err() == nil {
			log.Warn("cannot update the rule keeping containers away from etcd", "err", err)
		}
	}
	set(store.URLAddrPorts(ctx, st.Endpoints(), log))
	for {
		wait := etcdGuardInterval
		if eps, err := st.ControlAddrPorts(ctx, log); err != nil {
			wait = 10 * time.Second
		} else {
			set(eps)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

// dnsCacheFile is where the cluster DNS keeps its records, in --data-dir.
const dnsCacheFile = "dns-records.json"

// guardPorts tells the data plane's guard what it protects on this host before
// the first Sync: the cluster DNS (answered only to this host and its
// containers) and the VXLAN peers a previous podnetd accepted (kept until
// the overlay has read the hosts from etcd).
func guardPorts(ctx context.Context, cfg *config, ports *dataplane.Engine, log *slog.Logger) {
	// Encrypted, VXLAN is accepted from nobody, from the first Sync on.
	if cfg.Encryption != store.EncryptionWireGuard {
		if err := ports.LoadPeers(); err != nil {
			log.Warn("cannot read the VXLAN peers of the previous run; VXLAN is refused until etcd answers", "err", err)
		}
	}
	if addr, on := cfg.clusterDNS(); on {
		if err := ports.SetClusterDNS(ctx, netip.AddrPortFrom(addr, 53)); err != nil {
			log.Warn("cannot restrict the cluster DNS to this host and its containers", "err", err)
		}
	}
}

// peersToGuard is the overlay's Peers callback: the hosts registered in
// etcd become the addresses VXLAN is accepted from.
func peersToGuard(ports *dataplane.Engine, log *slog.Logger) func([]netip.Addr) {
	return func(peers []netip.Addr) {
		if err := ports.SetPeers(context.Background(), peers); err != nil {
			log.Error("cannot update the VXLAN peers; tunnels from new hosts are refused until the next change", "err", err)
			return
		}
		log.Debug("vxlan peers", "hosts", peers)
	}
}
