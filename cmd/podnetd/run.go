package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
	"github.com/docker/docker/client"
	"github.com/podnet/podnet/catalog"
	"github.com/podnet/podnet/cluster"
	"github.com/podnet/podnet/clusterdns"
	"github.com/podnet/podnet/dataplane"
	"github.com/podnet/podnet/dockerwatch"
	"github.com/podnet/podnet/driver"
	"github.com/podnet/podnet/feed"
	"github.com/podnet/podnet/hostid"
	"github.com/podnet/podnet/internal/dockerup"
	"github.com/podnet/podnet/internal/fsutil"
	"github.com/podnet/podnet/internal/link"
	"github.com/podnet/podnet/ipam"
	"github.com/podnet/podnet/overlay"
	"github.com/podnet/podnet/overlay/wireguard"
	"github.com/podnet/podnet/plugin"
	"github.com/podnet/podnet/reconcile"
	"github.com/podnet/podnet/store"
)

// run starts podnetd. Order matters: the plugin socket first (dockerd may
// be waiting on it), then etcd, then restore, then the gate opens.
func run(parent context.Context, cfg *config) error {
	if err := cfg.validate(); err != nil {
		return err
	}
	log, err := newLogger(cfg.LogLevel, cfg.LogFormat, cfg.LogOutput)
	if err != nil {
		return err
	}
	log = log.With("host", cfg.HostName)
	tuneGC(log)
	ctx, stop := signal.NotifyContext(parent, os.Interrupt, syscall.SIGTERM)
	defer stop()
	// Whatever etcd is used, the data dir holds the cluster DNS's records
	// and often etcd's client keys: root's alone, before anything is in it.
	if was, err := fsutil.PrivateDir(cfg.DataDir); err != nil {
		return fmt.Errorf("--data-dir: %w", err)
	} else if was != 0o700 {
		log.Warn("data dir was open to other users; made it 0700", "dir", cfg.DataDir, "was", was)
	}
	k, err := link.New(nil, cfg.ProcSys)
	if err != nil {
		return err
	}
	wg, closeWG, err := setupEncryption(cfg, k, log)
	if err != nil {
		return err
	}
	started := false
	defer func() { closeWG(!started) }()

	l, err := plugin.Listen(cfg.PluginSocket)
	if err != nil {
		return err
	}
	srv := plugin.New(plugin.Options{Logger: log})
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ctx, l) }()
	log.Info("plugin socket open", "socket", cfg.PluginSocket, "driver", driverName(cfg.PluginSocket), "version", version)
	adm := newAdminServer(cfg)
	adminErr := make(chan error, 1)
	go func() { adminErr <- adm.serve(ctx, log) }()

	st, closeStore, embedded, err := openStore(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer closeStore()

	// One follower per etcd prefix, shared by the overlay, the catalog and
	// the cluster DNS (package feed).
	feeds := feed.New(st, log.With("component", "feed"))
	go feeds.Run(ctx)
	// The service catalog needs no etcd to exist (it fills from etcd once
	// the proxy agent runs), so the cluster DNS can hold it from the start.
	cat, err := newCatalog(cfg, log)
	if err != nil {
		return err
	}
	// The cluster DNS before etcd answers (it serves the records saved on
	// disk meanwhile), but only where a previous podnetd of this machine
	// left its address on lo: nothing in the kernel changes before the
	// host name is claimed (a podnetd refused for a taken name leaves the
	// host as it found it).
	dnsEarly := dnsKept(cfg, k)
	if dnsEarly {
		if err := startDNS(ctx, cfg, feeds, k, cat, log); err != nil {
			log.Warn("cluster DNS not started", "addr", cfg.dnsAddr, "err", err)
		}
	}
	ports := dataplane.New(dataplane.Options{Logger: log.With("component", "dataplane"), IPTablesBackend: cfg.IPTables})
	guardPorts(ctx, cfg, ports, log)
	go guardEtcd(ctx, st, ports, log)
	ipm, err := ipam.New(ipam.Config{
		Host: cfg.HostName, Store: st, Logger: log.With("component", "ipam"),
		BlockBits4: cfg.BlockSize, BlockBits6: cfg.BlockSize6,
		AutoPools: []ipam.AutoPool{
			{Base: netip.MustParsePrefix(cfg.DefaultPool), Bits: cfg.DefaultPoolLen},
			{Base: netip.MustParsePrefix(cfg.DefaultPool6), Bits: 64},
		},
		HostRoutes:   k.Routes,
		HostNetworks: hostNetworks(k),
		ServiceCIDR:  netip.MustParsePrefix(cfg.ServiceCIDR).Masked(),
	})
	if err != nil {
		return err
	}
	hc := &health{feeds: feeds, bound: cfg.HealthzTimeout}
	startMetrics(ctx, cfg, ipm, hc, log)
	ov, ovErr := newOverlay(cfg, st, feeds, k, ports, wg, log)
	pol := newPolicy(cfg, cat, ports, log)
	dcfg := driver.Config{Host: cfg.HostName, Store: st, Ports: ports, Kernel: k,
		Logger: log.With("component", "driver"), DefaultMTU: cfg.MTU, Tunnels: ipm, HostAddresses: ipm,
		HostNetworks: hostNetworks(k), Policy: policyHook{pol}}
	if ovErr != nil {
		log.Warn("multi-host (vxlan) networks unavailable on this host", "err", ovErr)
		dcfg.OverlayUnavailable = ovErr.Error()
	} else {
		dcfg.Overlay = ov
	}
	drv, err := driver.New(dcfg)
	if err != nil {
		return err
	}
	if err := waitForEtcd(ctx, st, log); err != nil {
		return err
	}
	if err := ensureSchema(ctx, st, cfg, log); err != nil {
		return err
	}
	if err := migrateIPAMLayout(ctx, st, cfg.HostName, log); err != nil {
		log.Warn("IPAM layout not migrated; retrying at the next start", "err", err)
	}
	svcs, err := newServices(ctx, cfg, st, cat, log)
	if err != nil {
		return err
	}
	if err := ensureEncryption(ctx, st, cfg, log); err != nil {
		return err
	}
	// The host name first: a podnetd started with the name of a running
	// host must stop before it touches that host's state.
	metaLayout := indexHostMeta(ctx, st, cfg.HostName, log)
	ident, err := registerHost(ctx, st, cfg, ov, metaLayout, log)
	if err != nil {
		return err
	}
	// Held until run returns; a clean stop leaves the lease to the next
	// podnetd (package hostid: a restart must not look like the host
	// leaving, its containers keep running).
	hctx, stopHold := context.WithCancel(ctx)
	holdErr, holdDone := make(chan error, 1), make(chan struct{})
	go func() { defer close(holdDone); holdErr <- ident.Hold(hctx) }()
	defer func() { stopHold(); <-holdDone }()
	if _, on := cfg.clusterDNS(); on && !dnsEarly {
		if err := startDNS(ctx, cfg, feeds, k, cat, log); err != nil {
			log.Warn("cluster DNS not started", "addr", cfg.dnsAddr, "err", err)
		}
	}
	if err := drv.Restore(ctx); err != nil {
		// Keep serving: one broken network must not take every other
		// network on the host down with it.
		log.Error("restore incomplete", "err", err)
	}
	go ipm.Preload(ctx, networkPools(drv.Networks()))
	srv.SetDrivers(drv, ipm)
	started = true
	log.Info("podnetd ready", "networks", len(drv.Networks()), "endpoints", len(drv.Endpoints()))
	notify(log, daemon.SdNotifyReady)
	defer notify(log, daemon.SdNotifyStopping)

	go ports.Run(ctx, 10*time.Second)
	if ov != nil {
		go ov.Run(ctx)
	}
	svcs.start(ctx, cfg, feeds, ports, log)
	hc.agent.Store(svcs.proxy)
	runPolicy(ctx, cfg, pol, log)
	defer startAnnouncer(ctx, cfg, st, feeds, k, cat, log)()
	var rec *reconcile.Reconciler
	dc, err := client.NewClientWithOpts(client.WithHost(cfg.DockerHost), client.WithAPIVersionNegotiation())
	if err != nil {
		log.Warn("no Docker API client: garbage collection, container names and network fan-out are off", "docker", cfg.DockerHost, "err", err)
	} else {
		defer dc.Close()
		up := dockerup.New(log.With("component", "docker"), cfg.DockerHost)
		rec = reconcile.New(reconcile.Config{Docker: dc, Driver: drv, IPAM: ipm, Logger: log.With("component", "reconcile"),
			Interval: cfg.GCInterval, Grace: cfg.GCGrace, Reach: up})
		go rec.Run(ctx)
		go reconcile.NewNetSync(reconcile.NetSyncConfig{Store: st, Feeds: feeds, Docker: dc, Driver: cfg.DriverName, Host: cfg.HostName,
			Logger: log.With("component", "netsync"), Reach: up}).Run(ctx)
		go dockerwatch.New(dockerwatch.Config{Host: cfg.HostName, Store: st, Docker: dc,
			IsPodnet: drv.HasNetwork, Logger: log.With("component", "watcher"), Reach: up, Hints: pol, Selects: cat.Selects}).Run(ctx)
	}
	cm := cluster.New(st, ipm, log.With("component", "cluster"))
	cm.SetHostNetworks(cfg.HostName, hostNetworks(k))
	cni, cniNames := startCNI(ctx, cfg, cniDeps{driver: drv, ipam: ipm, store: st, cluster: cm, docker: dc, selects: cat.Selects}, log)
	adm.setReady(&adminDeps{store: st, cluster: cm, driver: drv, ipam: ipm, rec: rec, embedded: embedded, services: svcs, policy: pol,
		overlay: ov, cni: cni, cniNames: cniNames})

	select {
	case <-ctx.Done():
		log.Info("shutting down; kernel state is kept so running containers keep their network")
	case err := <-serveErr:
		return fmt.Errorf("plugin socket: %w", err)
	case err := <-holdErr:
		if err != nil {
			return err
		}
	case err := <-adminErr:
		if err != nil {
			return err
		}
		<-ctx.Done()
	}
	return nil
}

// driverName is the name Docker knows the plugin by: the socket's file name.
func driverName(socket string) string {
	b := filepath.Base(socket)
	return b[:len(b)-len(filepath.Ext(b))]
}

// openStore connects to the configured etcd, or starts the embedded one.
func openStore(ctx context.Context, cfg *config, log *slog.Logger) (*store.Store, func(), bool, error) {
	endpoints := cfg.EtcdEndpoints
	var emb *store.Embedded
	if len(endpoints) == 0 {
		var err error
		emb, err = store.StartEmbedded(ctx, store.EmbeddedConfig{DataDir: cfg.DataDir, ClientURL: cfg.EmbeddedClient,
			PeerURL: cfg.EmbeddedPeer, Logger: log})
		if err != nil {
			return nil, nil, false, fmt.Errorf("%w (pass --etcd-endpoints to use an external etcd instead)", err)
		}
		endpoints = emb.Endpoints()
	}
	warnInsecureEtcd(cfg, log)
	st, err := store.Open(store.Config{Endpoints: endpoints, CACert: cfg.EtcdCACert, Cert: cfg.EtcdCert,
		Key: cfg.EtcdKey, Logger: log})
	if err != nil {
		if emb != nil {
			emb.Close()
		}
		return nil, nil, false, err
	}
	closeFn := func() {
		_ = st.Close()
		if emb != nil {
			emb.Close()
		}
	}
	return st, closeFn, emb != nil, nil
}

// waitForEtcd blocks until etcd answers, logging while it does not; plugin
// calls meanwhile fail fast with "still starting".
func waitForEtcd(ctx context.Context, st *store.Store, log *slog.Logger) error {
	backoff := 200 * time.Millisecond
	for {
		err := st.Ping(ctx)
		if err == nil {
			return nil
		}
		log.Warn("waiting for etcd", "err", err)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 5*time.Second)
	}
}

// newOverlay detects the underlay and builds the multi-host data plane
// (encrypted when wg is set); VXLAN is then accepted only from the hosts
// it follows (from none with encryption).
func newOverlay(cfg *config, st *store.Store, feeds *feed.Hub, k *link.Kernel, ports *dataplane.Engine, wg *wireguard.Device, log *slog.Logger) (*overlay.Overlay, error) {
	u, err := overlay.DetectUnderlay(k, cfg.AdvertiseAddr)
	if err != nil {
		return nil, err
	}
	ov, err := overlay.New(overlay.Config{Host: cfg.HostName, Store: st, Feeds: feeds, Kernel: k, Logger: log.With("component", "overlay"),
		Underlay: u, Port: cfg.VXLANPort, Peers: peersToGuard(ports, log), WireGuard: wg})
	if err != nil {
		return nil, err
	}
	if err := ports.SetOverlay(context.Background(), uint16(cfg.VXLANPort), overlay.DevicePrefix); err != nil {
		return nil, err
	}
	return ov, nil
}

// dnsKept says whether the cluster DNS address is on lo already (a
// previous podnetd of this machine put it there and left it, as it
// leaves all kernel state when it stops).
func dnsKept(cfg *config, k *link.Kernel) bool {
	addr, on := cfg.clusterDNS()
	if !on {
		return false
	}
	has, err := k.HasLocalAddr("lo", addr)
	return err == nil && has
}

// startDNS puts the cluster DNS address on lo and serves it.
func startDNS(ctx context.Context, cfg *config, feeds *feed.Hub, k *link.Kernel, cat *catalog.Catalog, log *slog.Logger) error {
	addr, on := cfg.clusterDNS()
	if !on {
		return nil
	}
	if err := k.EnsureLocalAddr("lo", addr); err != nil {
		return err
	}
	d, err := clusterdns.New(clusterdns.Config{Feeds: feeds, Listen: netip.AddrPortFrom(addr, 53),
		Upstreams: cfg.DNSUpstreams, CacheFile: filepath.Join(cfg.DataDir, dnsCacheFile), Logger: log.With("component", "dns"),
		Services: cat, Domain: cfg.ClusterDomain})
	if err != nil {
		return err
	}
	errc := make(chan error, 1)
	go func() { errc <- d.Run(ctx) }()
	select {
	case err := <-errc:
		return err
	case <-time.After(200 * time.Millisecond):
		return nil
	}
}

// registerHost claims the host name — refusing to start, with an error
// naming the holder, when another running podnetd has it — and writes the
// persistent host record (with the underlay address when multi-host
// networking is on). The returned identity must be held (Hold) for as long
// as podnetd runs: it keeps the liveness lease and writes back records
// someone else changed.
func registerHost(ctx context.Context, st *store.Store, cfg *config, ov *overlay.Overlay, metaLayout int, log *slog.Logger) (*hostid.Identity, error) {
	rec := hostRecord(cfg.HostName, ov)
	write := func(ctx context.Context) error { return writeHostRecord(ctx, st, cfg.HostName, ov) }
	id, err := hostid.Claim(ctx, hostid.Config{Store: st, Host: cfg.HostName, TTL: cfg.LivenessTTL,
		Alive: store.HostAlive{Started: time.Now().UTC(), Version: version, IPAMLayout: store.IPAMLayoutExceptions,
			MetaLayout: metaLayout},
		Record: rec, Reassert: write, Logger: log.With("component", "hostid")})
	if err != nil {
		return nil, fmt.Errorf("register host %s: %w", cfg.HostName, err)
	}
	if err := write(ctx); err != nil {
		id.Release(ctx)
		return nil, fmt.Errorf("register host %s: %w", cfg.HostName, err)
	}
	return id, nil
}

// writeHostRecord writes hosts/<host>: the overlay's record (underlay
// address), or a bare one on a host without multi-host networking. An
// existing record is left as it is when it already says the same.
func writeHostRecord(ctx context.Context, st *store.Store, host string, ov *overlay.Overlay) error {
	if ov != nil {
		return ov.RegisterHost(ctx)
	}
	var h store.Host
	_, err := st.Get(ctx, store.HostKey(host), &h)
	if err == nil && h.Name == host && !h.Underlay.IsValid() {
		return nil
	}
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	since := h.Since
	if since.IsZero() {
		since = time.Now().UTC()
	}
	return st.Put(ctx, store.HostKey(host), store.Host{Name: host, Since: since})
}

// cleanup removes podnet's kernel state (uninstall, tests).
func cleanup(ctx context.Context, cfg *config) error {
	log, err := newLogger(cfg.LogLevel, cfg.LogFormat, cfg.LogOutput)
	if err != nil {
		return err
	}
	ports := dataplane.New(dataplane.Options{Logger: log, IPTablesBackend: cfg.IPTables})
	var errs []error
	if err := ports.Cleanup(ctx); err != nil {
		errs = append(errs, err)
	}
	k, err := link.New(nil, cfg.ProcSys)
	if err != nil {
		return err
	}
	removed, err := driver.CleanupLinks(k)
	if err != nil {
		errs = append(errs, err)
	}
	vx, err := overlay.Cleanup(k)
	if err != nil {
		errs = append(errs, err)
	}
	removed = append(removed, vx...)
	if err := wireguard.Delete(k); err != nil {
		errs = append(errs, err)
	}
	if err := cfg.validate(); err != nil {
		errs = append(errs, err)
	} else if addr, on := cfg.clusterDNS(); on {
		if err := k.DeleteLocalAddr("lo", addr); err != nil {
			errs = append(errs, err)
		}
	}
	log.Info("podnet kernel state removed", "links", removed)
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("cleanup: %w", err)
	}
	return nil
}
