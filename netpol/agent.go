package netpol

import (
	"context"
	"log/slog"
	"maps"
	"net/netip"
	"sync"
	"time"

	"github.com/podnet/podnet/catalog"
	"github.com/podnet/podnet/dataplane"
	"github.com/podnet/podnet/internal/dockerid"
	"github.com/podnet/podnet/policy"
	"github.com/podnet/podnet/store"
)

// Programmer is what the agent needs of the data plane (the dataplane
// Engine).
type Programmer interface {
	SetPolicy(ctx context.Context, p dataplane.Policy) error
	IsolatePending(ctx context.Context, addrs []netip.Addr) error
}

// Config wires an Agent.
type Config struct {
	// Host is this host's name.
	Host       string
	Catalog    *catalog.Catalog
	Programmer Programmer
	// Log sends denied packets to the policy log (--policy-log).
	Log    bool
	Logger *slog.Logger
	// Resync is the period of the full pass that repairs drift (default
	// 5 min).
	Resync time.Duration
}

// LocalEndpoint is one endpoint of this host, as the driver knows it.
type LocalEndpoint struct {
	ID      string
	Network string
	Addrs   []netip.Addr
	// Enforced is false on networks whose traffic does not cross this
	// host (macvlan, ipvlan): policies cannot be enforced there.
	Enforced bool
}

// Agent is the network policy agent of one host: it compiles the
// policies for the endpoints of this host (package policy) and programs
// the result (the data plane's policy section), and it keeps every new
// endpoint isolated until its container's labels are known.
type Agent struct {
	cfg Config
	log *slog.Logger

	mu        sync.Mutex
	synced    bool // the data plane took the first whole state
	policies  []store.NetworkPolicy
	index     *policy.Index                  // policies prepared for compiling
	selectors map[string]store.LabelSelector // policy.Key → selector, of every policy
	sels      map[string][]netip.Addr        // the catalog's selections
	eps       map[string]*localEP            // local endpoints by ID
	hints     map[string]map[string]hint     // network → container → connect event
	// lastLoss is, per network, when an endpoint whose container was not
	// known yet went away (see shortcut.go).
	lastLoss map[string]time.Time
	model    *policy.Model
	kick     chan struct{}
	// last is when the last pass was programmed and how long it took.
	last    time.Time
	lastDur time.Duration
}

// localEP is a local endpoint and what is known of its container.
type localEP struct {
	LocalEndpoint
	container, name string
	labels          map[string]string
	// known: labels are known, exactly (the Docker watcher inspected the
	// container, or its record says so) or inferred from connect events
	// (shortcut.go), which any policy change withdraws.
	known, exact bool
	// fromRecord: what is known came from the endpoint's etcd record,
	// which is read again at every pass (a restarted podnetd's
	// endpoints; CNI attachments, whose labels podman's follower adds).
	fromRecord bool
}

// New returns an Agent; Run follows the catalog.
func New(cfg Config) *Agent {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Resync <= 0 {
		cfg.Resync = 5 * time.Minute
	}
	return &Agent{cfg: cfg, log: cfg.Logger, selectors: map[string]store.LabelSelector{}, sels: map[string][]netip.Addr{},
		eps: map[string]*localEP{}, hints: map[string]map[string]hint{}, lastLoss: map[string]time.Time{},
		kick: make(chan struct{}, 1)}
}

// Restore registers the endpoints this host already has (podnetd start,
// before the driver serves Docker). Nothing is programmed: the kernel
// keeps the previous podnetd's rules until the first pass.
func (a *Agent) Restore(eps []LocalEndpoint) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, ep := range eps {
		a.eps[ep.ID] = &localEP{LocalEndpoint: ep}
	}
}

// EndpointCreated registers a new endpoint and isolates it before its
// container can run (the driver calls it in CreateEndpoint, before Docker
// starts the container): in every direction some policy could isolate it,
// until its labels are known. An error fails the container start: an
// endpoint that could not be isolated must not run.
func (a *Agent) EndpointCreated(ctx context.Context, ep LocalEndpoint) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.eps[ep.ID] = &localEP{LocalEndpoint: ep}
	if !ep.Enforced {
		return nil
	}
	if !a.synced {
		// The agent has not read etcd yet: whether any policy exists is
		// unknown, so isolate.
		return a.cfg.Programmer.IsolatePending(ctx, ep.Addrs)
	}
	return a.programLocked(ctx, time.Time{})
}

// EndpointDeleted forgets an endpoint. Its rules go with the next pass,
// run by Run at once but outside the driver's request: Docker waits for
// DeleteEndpoint (docker run --rm, docker stop), and a batch deleting
// elements waits for an RCU grace period in the kernel. The rules of a
// gone endpoint meanwhile apply to an address nobody holds; should this
// host hand it out again first, that endpoint's EndpointCreated
// programs the whole state, the stale rules gone with it.
func (a *Agent) EndpointDeleted(_ context.Context, id string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	e, ok := a.eps[id]
	if !ok {
		return
	}
	delete(a.eps, id)
	if e.Enforced && !e.exact {
		a.lastLoss[e.Network] = time.Now()
	}
	if a.synced && e.Enforced {
		a.poke()
	}
}

// Observe takes what the Docker watcher learnt of a local endpoint's
// container (in process: no etcd round trip between a container's start
// and its rules).
func (a *Agent) Observe(ctx context.Context, m store.EndpointMeta) {
	a.mu.Lock()
	defer a.mu.Unlock()
	e, ok := a.eps[m.Endpoint]
	if !ok {
		return
	}
	if hs := a.hints[e.Network]; hs != nil {
		delete(hs, m.Container)
	}
	if e.exact && e.container == m.Container && maps.Equal(e.labels, m.Labels) {
		e.name = m.Name
		return
	}
	e.container, e.name, e.labels, e.known, e.exact, e.fromRecord = m.Container, m.Name, maps.Clone(m.Labels), true, true, false
	if a.synced && e.Enforced {
		if err := a.programLocked(ctx, m.Updated); err != nil {
			a.log.Warn("policy rules of a started container not programmed yet; retrying", "endpoint", dockerid.Short(m.Endpoint), "err", err)
			a.poke()
		}
	}
}

func (a *Agent) poke() {
	select {
	case a.kick <- struct{}{}:
	default:
	}
}

// Run follows the catalog until ctx ends: the first pass once it has read
// etcd, then one per change, and a full one every Resync.
func (a *Agent) Run(ctx context.Context) {
	cat := a.cfg.Catalog
	for !cat.PoliciesLoaded() {
		select {
		case <-ctx.Done():
			return
		case <-cat.PolicyChanged():
		case <-time.After(100 * time.Millisecond):
		}
	}
	resync := time.NewTicker(a.cfg.Resync)
	defer resync.Stop()
	full := true
	for {
		d := cat.TakePolicyDelta(full)
		a.mu.Lock()
		a.takeDelta(d)
		err := a.programLocked(ctx, d.Since)
		if err == nil && !a.synced {
			a.synced = true
			a.log.Info("network policy agent synced", "policies", len(a.policies), "endpoints", len(a.eps))
		}
		a.mu.Unlock()
		full = false
		retry := time.Duration(0)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			a.log.Error("network policy not programmed; retrying", "err", err)
			full, retry = true, time.Second
		}
		var after <-chan time.Time
		if retry > 0 {
			after = time.After(retry)
		}
		select {
		case <-ctx.Done():
			return
		case <-cat.PolicyChanged():
		case <-a.kick:
		case <-resync.C:
			full = true
		case <-after:
		}
	}
}

// takeDelta folds the catalog's changes in.
func (a *Agent) takeDelta(d catalog.PolicyDelta) {
	if d.Full {
		a.sels = map[string][]netip.Addr{}
	}
	for k, addrs := range d.Selections {
		if addrs == nil {
			delete(a.sels, k)
		} else {
			a.sels[k] = addrs
		}
	}
	if d.Policies == nil {
		return
	}
	a.policies = d.Policies
	a.index = policy.NewIndex(a.policies)
	a.selectors = map[string]store.LabelSelector{}
	for _, p := range a.policies {
		for _, s := range policy.Selectors(p) {
			a.selectors[policy.Key(s)] = s
		}
	}
	// Labels inferred from connect events held for the policies of that
	// moment only.
	for _, e := range a.eps {
		if e.known && !e.exact {
			e.known, e.labels = false, nil
		}
	}
}
