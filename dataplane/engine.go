package dataplane

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/podnet/podnet/internal/dockerid"
	"github.com/podnet/podnet/internal/metrics"
)

// Defaults of Options. The table, chain and prefix names must never
// change: upgrades find what an older podnetd programmed by these names.
const (
	DefaultTable        = "podnet"
	DefaultBridgePrefix = "pn-"
	DefaultFilterChain  = "PODNET-FORWARD"
)

// maxIfName is IFNAMSIZ-1, the longest interface name Linux accepts.
const maxIfName = 15

// Engine owns podnet's nftables table and iptables accepts. It keeps the
// desired state in memory (networks, endpoints' mappings) and makes the
// kernel match it; every mutating call applies at once, in one netlink
// batch, and leaves memory unchanged when the kernel refuses.
//
// Kernel calls act in the network namespace of the calling thread.
type Engine struct {
	opts Options
	log  *slog.Logger
	nft  nftBackend
	ipt  acceptsBackend
	ct   conntrackBackend

	// mu guards the state below and serializes nftables changes, so the
	// kernel sees them in the order memory did.
	mu        sync.Mutex
	nets      map[string]Network
	eps       map[string]endpointState
	ephemeral [2]uint16 // resolved on first use
	cursor    uint16    // next ephemeral port to try
	// acceptsOK records a successful iptables ensure, so AddNetwork runs
	// the (slow, exec-based) ensure only until one succeeded.
	acceptsOK bool
	// guard is what the guard rules protect (guard.go); tableLoaded says
	// this engine has loaded the table once, so the guard may rebuild it.
	guard       guardState
	tableLoaded bool
	svc         *svcTable // services (services.go)
	// trustSums is set during an engine's first Replace (services_sums.go).
	trustSums bool
	// written are the sums of the chains outside the service section as
	// this engine's last full syncs wrote them (chain_sums.go).
	written map[string]elemSum
	pol     polState // network policy (policy.go)
	// ctDumpOnly is set once the kernel refused a filtered conntrack flush.
	ctDumpOnly atomic.Bool
}

// New returns an Engine; it makes no kernel calls. Unknown
// IPTablesBackend values fall back to "auto" with a warning.
func New(opts Options) *Engine {
	opts = withDefaults(opts)
	return newEngine(opts, netlinkNFT{},
		newIPTAccepts(opts.Logger, opts.FilterChain, opts.BridgePrefix, opts.IPTablesBackend),
		netlinkConntrack{})
}

func newEngine(opts Options, nft nftBackend, ipt acceptsBackend, ct conntrackBackend) *Engine {
	return &Engine{opts: opts, log: opts.Logger, nft: measured(nft), ipt: ipt, ct: ct,
		nets: map[string]Network{}, eps: map[string]endpointState{}, svc: newSvcTable()}
}

func withDefaults(o Options) Options {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Table == "" {
		o.Table = DefaultTable
	}
	if o.BridgePrefix == "" {
		o.BridgePrefix = DefaultBridgePrefix
	}
	if o.FilterChain == "" {
		o.FilterChain = DefaultFilterChain
	}
	switch o.IPTablesBackend {
	case backendAuto, backendNFT, backendLegacy:
	case "":
		o.IPTablesBackend = backendAuto
	default:
		o.Logger.Warn("unknown iptables backend, using auto", "backend", o.IPTablesBackend)
		o.IPTablesBackend = backendAuto
	}
	if o.PortInUse == nil {
		o.PortInUse = bindProbe
	}
	return o
}

// Restore sets the whole desired state (at podnetd start, from etcd)
// without touching the kernel; Sync then programs it.
func (e *Engine) Restore(nets []Network, eps []EndpointPorts) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.nets = map[string]Network{}
	for _, n := range nets {
		e.nets[n.ID] = cloneNetwork(n)
	}
	e.eps = map[string]endpointState{}
	for _, ep := range eps {
		if len(ep.Mappings) == 0 {
			continue
		}
		ms := slices.Clone(ep.Mappings)
		for i := range ms {
			// Stored state may spell a wildcard 0.0.0.0 or carry
			// v4-in-v6 addresses; the maps need the engine's form.
			ms[i].HostIP = specific(ms[i].HostIP.Unmap())
			ms[i].ContainerIP = ms[i].ContainerIP.Unmap()
		}
		e.eps[ep.EndpointID] = endpointState{networkID: ep.NetworkID, mappings: ms}
	}
	e.log.Debug("state restored", "networks", len(e.nets), "endpoints", len(e.eps))
}

// Sync atomically makes podnet's nftables table match the desired state
// (see netlinkNFT.syncTable) and ensures the iptables accepts (see
// iptAccepts.ensure). Established connections survive: conntrack is left
// alone, and NAT of existing flows lives in conntrack. Service rules are
// synced too once a Replace has said what they are; before that (right
// after a restart) the previous podnetd's stay as they are.
func (e *Engine) Sync(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	e.mu.Lock()
	_, nftErr := e.syncTableLocked(true)
	e.mu.Unlock()
	// The iptables execs run outside mu: Publish must not wait for them.
	iptErr := e.ipt.ensure()
	if iptErr == nil {
		e.mu.Lock()
		e.acceptsOK = true
		e.mu.Unlock()
	}
	if err := errors.Join(nftErr, iptErr); err != nil {
		return fmt.Errorf("sync: %w", err)
	}
	return nil
}

// syncTableLocked makes the kernel's table match memory in one batch:
// networks and published ports always, the service and network policy
// sections too when full is set and a Replace (SetPolicy) has run
// (otherwise their objects in the kernel are left alone, and only created
// if missing). It returns how many kernel objects the batch changed.
func (e *Engine) syncTableLocked(full bool) (int, error) {
	return e.syncSectionsLocked(full, full)
}

// syncSectionsLocked is syncTableLocked with the service and policy
// sections chosen apart (the first SetPolicy rewrites only its own).
func (e *Engine) syncSectionsLocked(withServices, withPolicy bool) (int, error) {
	in := rulesetInput{table: e.opts.Table, bridgePrefix: e.opts.BridgePrefix, nets: e.nets, eps: e.eps, guard: e.guard}
	svcs := withServices && e.svc.known
	pols := withPolicy && e.pol.known
	if svcs {
		in.services = e.svc
		in.trustSums = e.trustSums
	}
	if pols {
		in.policy = &e.pol.sec
	}
	rewrite := func(name string) bool {
		switch {
		case isServiceObject(name):
			return svcs
		case isPolicyObject(name):
			return pols
		}
		return true
	}
	rs := buildRuleset(in)
	sums := engineChainSums(rs)
	if in.trustSums {
		rs.keep = map[string]bool{}
		for name, s := range sums {
			if w, ok := e.written[name]; ok && w == s && rewrite(name) {
				rs.keep[name] = true
			}
		}
	}
	n, err := e.nft.syncTable(rs, rewrite)
	if err != nil {
		return 0, err
	}
	e.noteWritten(sums, rewrite)
	if in.services != nil {
		e.svc.sums = rs.sums
	}
	e.tableLoaded = true
	e.log.Debug("nftables table synced", "table", e.opts.Table, "networks", len(e.nets), "endpoints", len(e.eps),
		"services", svcs, "policy", pols)
	if _, elems := rulesetSize(rs); elems > bigSync {
		// Building and sending 5000 services x 10 endpoints allocates
		// ~200 MB that is garbage a moment later; give it back to the
		// system now rather than over the next minutes of scavenging.
		debug.FreeOSMemory()
	}
	return n, nil
}

// bigSync is the number of set elements above which a sync returns its
// garbage to the system at once.
const bigSync = 20000

// AddNetwork adds or replaces n and rebuilds the table at once (one
// batch, as Sync: `nft -f` of the whole table). The first call also
// ensures the iptables accepts if no Sync has.
func (e *Engine) AddNetwork(ctx context.Context, n Network) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := e.validateNetwork(n); err != nil {
		return err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.acceptsOK {
		if err := e.ipt.ensure(); err != nil {
			return fmt.Errorf("add network %s: %w", dockerid.Short(n.ID), err)
		}
		e.acceptsOK = true
	}
	old, had := e.nets[n.ID]
	e.nets[n.ID] = cloneNetwork(n)
	if _, err := e.syncTableLocked(false); err != nil {
		if had {
			e.nets[n.ID] = old
		} else {
			delete(e.nets, n.ID)
		}
		return fmt.Errorf("add network %s: %w", dockerid.Short(n.ID), err)
	}
	e.log.Debug("network programmed", "network", n.ID, "bridge", n.Bridge, "subnets", n.Subnets,
		"masquerade", n.Masquerade, "internal", n.Internal)
	return nil
}

func (e *Engine) validateNetwork(n Network) error {
	switch {
	case n.ID == "":
		return errors.New("add network: empty network ID")
	case !strings.HasPrefix(n.Bridge, e.opts.BridgePrefix) || len(n.Bridge) > maxIfName:
		return fmt.Errorf("add network %s: bridge %q must start with %q and have at most %d characters",
			dockerid.Short(n.ID), n.Bridge, e.opts.BridgePrefix, maxIfName)
	}
	for _, p := range n.Subnets {
		if !p.IsValid() {
			return fmt.Errorf("add network %s: invalid subnet %v", dockerid.Short(n.ID), p)
		}
	}
	for _, a := range n.TunnelAddrs {
		if !slices.ContainsFunc(n.Subnets, func(p netip.Prefix) bool { return p.Contains(a.Unmap()) }) {
			return fmt.Errorf("add network %s: tunnel address %v is in none of its subnets %v", dockerid.Short(n.ID), a, n.Subnets)
		}
	}
	return nil
}

// RemoveNetwork forgets the network (and any endpoint still published on
// it) and rebuilds the table at once (one batch, as Sync), then deletes
// the conntrack entries of such endpoints. An unknown ID is not an error.
func (e *Engine) RemoveNetwork(ctx context.Context, networkID string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	e.mu.Lock()
	n, ok := e.nets[networkID]
	if !ok {
		e.mu.Unlock()
		return nil
	}
	removed := map[string]endpointState{}
	for id, ep := range e.eps {
		if ep.networkID == networkID {
			removed[id] = ep
			delete(e.eps, id)
		}
	}
	delete(e.nets, networkID)
	if _, err := e.syncTableLocked(false); err != nil {
		e.nets[networkID] = n
		for id, ep := range removed {
			e.eps[id] = ep
		}
		e.mu.Unlock()
		return fmt.Errorf("remove network %s: %w", dockerid.Short(networkID), err)
	}
	e.mu.Unlock()
	e.log.Debug("network removed", "network", networkID, "endpoints", len(removed))
	for id, ep := range removed {
		e.log.Warn("endpoint still published when its network was removed", "endpoint", id, "network", networkID)
		e.flushUnpublished(ep.mappings)
	}
	return nil
}

// Mappings returns the endpoint's published ports (nil if none).
func (e *Engine) Mappings(endpointID string) []Mapping {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.eps[endpointID].mappings)
}

// Run checks every interval that the nftables table and the iptables
// jump still exist (a canary, like kube-proxy's) and runs Sync when
// something removed them: `nft flush ruleset`, a firewalld reload, a
// dockerd restart that re-creates its chains. It checks once at start and
// returns when ctx ends.
func (e *Engine) Run(ctx context.Context, interval time.Duration) {
	if interval <= 0 {
		interval = 10 * time.Second
	}
	// podnetd starts before dockerd (dockerd may need the plugin while it
	// starts), so Docker's DOCKER-USER usually appears just after the first
	// Sync put podnet's jump in FORWARD: check every second for the first
	// minute so the jump moves there at once, then every interval.
	fastUntil := time.Now().Add(time.Minute)
	for {
		e.resyncIfDamaged(ctx)
		wait := interval
		if time.Now().Before(fastUntil) && interval > time.Second {
			wait = time.Second
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

// resyncIfDamaged is one canary check (`nft list chain inet podnet
// prerouting`, `iptables -S PODNET-FORWARD`, `iptables -S DOCKER-USER`)
// followed by Sync when something is missing.
func (e *Engine) resyncIfDamaged(ctx context.Context) {
	ok, err := e.nft.tableIntact(e.opts.Table)
	if err == nil && ok {
		ok, err = e.ipt.intact()
	}
	if err != nil {
		e.log.Warn("canary check failed, resyncing", "err", err)
	} else if ok {
		return
	} else {
		e.log.Info("podnet rules missing, resyncing", "table", e.opts.Table, "chain", e.opts.FilterChain)
	}
	metrics.NFTCanaryResyncs.WithLabelValues(canaryReason(err)).Inc()
	if err := e.Sync(ctx); err != nil && ctx.Err() == nil {
		e.log.Error("resync failed", "err", err)
	}
}

// Cleanup removes everything podnet programmed: `nft delete table inet
// podnet` and the iptables chain and jumps (see iptAccepts.cleanup).
// Absence is not an error. The desired state stays in memory (a later
// Sync re-creates it); stop Run first, or its canary will.
func (e *Engine) Cleanup(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	e.mu.Lock()
	nftErr := e.nft.deleteTable(e.opts.Table)
	e.acceptsOK, e.tableLoaded = false, false
	e.mu.Unlock()
	if err := errors.Join(nftErr, e.ipt.cleanup()); err != nil {
		return fmt.Errorf("cleanup: %w", err)
	}
	return nil
}

func cloneNetwork(n Network) Network {
	n.TunnelAddrs = slices.Clone(n.TunnelAddrs)
	for i, a := range n.TunnelAddrs {
		n.TunnelAddrs[i] = a.Unmap()
	}
	n.Subnets = slices.Clone(n.Subnets)
	for i, p := range n.Subnets {
		n.Subnets[i] = p.Masked()
	}
	return n
}
