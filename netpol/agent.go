package netpol

import (
	"context"
	"log/slog"
	"maps"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/podnet/podnet/admin"
	"github.com/podnet/podnet/catalog"
	"github.com/podnet/podnet/dataplane"
	"github.com/podnet/podnet/internal/dockerid"
	"github.com/podnet/podnet/internal/metrics"
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

// EndpointDeleted forgets an endpoint (its rules go with the next pass).
func (a *Agent) EndpointDeleted(ctx context.Context, id string) {
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
		if err := a.programLocked(ctx, time.Time{}); err != nil {
			a.log.Warn("policy rules of a removed endpoint not removed yet; retrying", "endpoint", dockerid.Short(id), "err", err)
			a.poke()
		}
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

// programLocked compiles the model for this host's endpoints and hands
// it to the data plane (which programs only the difference).
func (a *Agent) programLocked(ctx context.Context, since time.Time) error {
	start := time.Now()
	a.fillFromRecords()
	m := policy.Compile(policy.Input{Policies: a.policies, Index: a.index, Targets: a.targets(), Selected: a.selected})
	err := a.cfg.Programmer.SetPolicy(ctx, ToDataplane(m, a.cfg.Log))
	metrics.PolicySyncs.WithLabelValues(metrics.Outcome(err)).Inc()
	metrics.Since(metrics.PolicySyncDuration, start)
	if err != nil {
		return err
	}
	a.model = m
	a.last, a.lastDur = time.Now(), time.Since(start)
	var isolated, open, pending int
	for _, t := range m.Targets {
		switch {
		case t.PendingIngress || t.PendingEgress:
			pending++
		case t.Ingress != nil || t.Egress != nil:
			isolated++
		default:
			open++
		}
	}
	metrics.PolicyEndpoints.WithLabelValues("isolated").Set(float64(isolated))
	metrics.PolicyEndpoints.WithLabelValues("open").Set(float64(open))
	metrics.PolicyEndpoints.WithLabelValues("pending").Set(float64(pending))
	if !since.IsZero() {
		a.log.Debug("network policy programmed", "lag", time.Since(since), "took", time.Since(start))
	}
	return nil
}

// fillFromRecords takes the labels of local endpoints the watcher has not
// reported (a restarted podnetd's, CNI attachments) from their etcd
// records. A CNI attachment's record is written without labels, which
// podman's follower adds later: until it carries some, the attachment
// stays pending (a container podman knows without labels stays isolated
// wherever a policy could isolate it: fail closed).
func (a *Agent) fillFromRecords() {
	for id, e := range a.eps {
		if e.exact && !e.fromRecord {
			continue
		}
		m, ok := a.cfg.Catalog.EndpointMeta(a.cfg.Host, id)
		if !ok || m.Container == "" || (m.Runtime == store.RuntimeCNI && len(m.Labels) == 0) {
			continue
		}
		e.container, e.name, e.labels, e.known, e.exact, e.fromRecord = m.Container, m.Name, maps.Clone(m.Labels), true, true, true
	}
}

// targets are the enforced local endpoints, by ID.
func (a *Agent) targets() []policy.Target {
	out := make([]policy.Target, 0, len(a.eps))
	for _, id := range slices.Sorted(maps.Keys(a.eps)) {
		e := a.eps[id]
		if !e.Enforced {
			continue
		}
		out = append(out, policy.Target{ID: id, Name: e.name, Labels: e.labels, Known: e.known, Addrs: e.Addrs})
	}
	return out
}

// selected is the model's view of a selection: the catalog's, plus the
// local containers the agent knows before etcd does.
func (a *Agent) selected(key string) []netip.Addr {
	out := slices.Clone(a.sels[key])
	sel, ok := a.selectors[key]
	if !ok {
		return out
	}
	for _, e := range a.eps {
		if e.known && policy.Matches(sel, e.labels) {
			out = append(out, e.Addrs...)
		}
	}
	return out
}

// ToDataplane is the data plane's form of a compiled model.
func ToDataplane(m *policy.Model, log bool) dataplane.Policy {
	p := dataplane.Policy{Policies: m.Policies, Log: log, AddrSets: map[string][]netip.Addr{}, RangeSets: map[string][]dataplane.AddrRange{}}
	for _, t := range m.Targets {
		ep := dataplane.PolicyEndpoint{Addrs: t.Addrs}
		switch {
		case t.PendingIngress:
			ep.Ingress = dataplane.PolicyPending
		case t.Ingress != nil:
			ep.Ingress = t.Ingress.ID
		}
		switch {
		case t.PendingEgress:
			ep.Egress = dataplane.PolicyPending
		case t.Egress != nil:
			ep.Egress = t.Egress.ID
		}
		if ep.Ingress != "" || ep.Egress != "" {
			p.Endpoints = append(p.Endpoints, ep)
		}
	}
	for _, id := range slices.Sorted(maps.Keys(m.Groups)) {
		g := m.Groups[id]
		dg := dataplane.PolicyGroup{ID: g.ID, Egress: g.Egress, Policies: g.Policies}
		for _, r := range g.Rules {
			var dr dataplane.PolicyRule
			for _, peer := range r.Peers {
				dr.Peers = append(dr.Peers, peer.Set)
			}
			for _, pr := range r.Ports {
				dr.Ports = append(dr.Ports, dataplane.PolicyPorts{Proto: protoOf(pr.Proto), First: pr.First, Last: pr.Last})
			}
			dg.Rules = append(dg.Rules, dr)
		}
		p.Groups = append(p.Groups, dg)
	}
	for id, s := range m.Peers {
		p.AddrSets[id] = s.Addrs
	}
	for id, b := range m.Blocks {
		for _, r := range b.Ranges {
			p.RangeSets[id] = append(p.RangeSets[id], dataplane.AddrRange{First: r.First, Last: r.Last})
		}
	}
	return p
}

func protoOf(p string) dataplane.Proto {
	switch p {
	case "UDP":
		return dataplane.UDP
	case "SCTP":
		return dataplane.SCTP
	}
	return dataplane.TCP
}

// Status is what the agent holds, for podnetctl policy agent.
func (a *Agent) Status() admin.PolicyAgentStatus {
	a.mu.Lock()
	defer a.mu.Unlock()
	st := admin.PolicyAgentStatus{Host: a.cfg.Host, Synced: a.synced, Policies: len(a.policies), Endpoints: map[string]int{},
		LastProgram: a.last, LastProgramDuration: a.lastDur}
	for _, id := range slices.Sorted(maps.Keys(a.eps)) {
		e := a.eps[id]
		state := "open"
		switch {
		case !e.Enforced:
			state = "unenforced"
		case !e.known:
			state = "pending"
			st.Pending = append(st.Pending, dockerid.Short(id))
		case a.model != nil:
			if t, ok := a.model.Target(e.Addrs[0]); ok && (t.Ingress != nil || t.Egress != nil) {
				state = "isolated"
			}
		}
		st.Endpoints[state]++
	}
	return st
}

// Model returns the model last programmed (nil before the first pass).
func (a *Agent) Model() *policy.Model {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.model
}
