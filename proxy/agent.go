package proxy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/podnet/podnet/admin"
	"github.com/podnet/podnet/catalog"
	"github.com/podnet/podnet/dataplane"
	"github.com/podnet/podnet/store"
)

// Programmer is the data plane the proxy agent drives (the dataplane
// Engine): every round of changes is one Apply.
type Programmer interface {
	Apply(ctx context.Context, c dataplane.Change) (dataplane.Result, error)
}

// Config wires an Agent.
type Config struct {
	Host    string
	Store   *store.Store
	Catalog *catalog.Catalog
	// Programmer nil: the agent computes what each service needs on this
	// host (shown by Status) but programs nothing.
	Programmer Programmer
	// ResyncInterval is the period of the full sync (a Replace compared
	// with the kernel; default 5 min).
	ResyncInterval time.Duration
	// HealthTimeout is how long changes may wait for the data plane
	// before Health reports the agent unhealthy (default 60 s).
	HealthTimeout time.Duration
	// HealthCheckHost is the address health-check NodePorts listen on
	// (healthcheck.go); "" means every address of the host.
	HealthCheckHost string
	// ExternalIPOK checks an external IP of a service record against the
	// cluster's rules (--external-ip-cidrs: registry.ServiceRange's
	// CheckExternalIP); nil passes every one. With the catalog's reserved
	// host addresses it decides which external IPs the agent programs: a
	// record written by hand, or by an older podnetd, can hold any.
	ExternalIPOK func(netip.Addr) error
	Logger       *slog.Logger
}

// Agent is the service proxy agent of one host: it turns the catalog
// (services, endpoints, hosts) into the data plane's services and hands
// each round of changes over as one change set.
type Agent struct {
	cfg Config
	log *slog.Logger
	cat *catalog.Catalog

	mu sync.Mutex
	// programmed is what the data plane was last given, by name.
	programmed map[string]dataplane.Service
	// failing maps a service to the error the data plane reports for it;
	// reported is what etcd holds for this host (svcstatus/<host>/).
	failing, reported map[string]string
	// retry holds changes the data plane refused, with the time of their
	// oldest write, handed back to the catalog a second later.
	retry map[string]time.Time
	// needFull: the last full round failed; the next round is full too.
	needFull    bool
	synced      bool
	lastSync    time.Time     // last successful full sync
	lastSyncDur time.Duration // how long the data plane took at lastSync
	lastApply   time.Time     // last successful round of any kind
	// pendingSince is when the oldest change not yet programmed was
	// noticed (zero: none), kube-proxy's oldest queued update.
	pendingSince time.Time
	lags         []time.Duration
	lagNext      int
	// checks holds each Local service's health-check NodePort and local
	// endpoints, hcErrs the ports that could not be opened.
	checks map[string]hcCheck
	hcErrs map[string]string
	hc     *healthChecks
	// extRefused holds, by service, the external IPs the agent leaves
	// out and why.
	extRefused map[string][]string
}

// hcCheck is one service's health-check NodePort and how many of its
// endpoints run on this host.
type hcCheck struct {
	port  uint16
	local int
}

const lagRing = 1000

// New returns an agent; Run starts it.
func New(cfg Config) *Agent {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.ResyncInterval <= 0 {
		cfg.ResyncInterval = 5 * time.Minute
	}
	if cfg.HealthTimeout <= 0 {
		cfg.HealthTimeout = time.Minute
	}
	p := &Agent{cfg: cfg, log: cfg.Logger, cat: cfg.Catalog, programmed: map[string]dataplane.Service{},
		failing: map[string]string{}, reported: map[string]string{}, retry: map[string]time.Time{},
		checks: map[string]hcCheck{}, hcErrs: map[string]string{}, extRefused: map[string][]string{}}
	p.hc = newHealthChecks(cfg.HealthCheckHost, func() bool { return p.Health() == nil }, cfg.Logger)
	return p
}

// Run drives the data plane until ctx ends. The catalog must be running.
// It waits for the catalog's first complete view, hands everything over
// as one Replace (retrying until the data plane takes it), then hands
// over each round of changes the catalog marks as one change set, holding
// only the services whose result changed; every ResyncInterval it
// replaces the whole set again (compared with the kernel: drift is
// repaired, nothing else is rewritten).
func (p *Agent) Run(ctx context.Context) {
	defer p.hc.closeAll()
	for !p.cat.Loaded() {
		select {
		case <-ctx.Done():
			return
		case <-p.cat.Changed():
		case <-time.After(100 * time.Millisecond):
		}
	}
	backoff := 200 * time.Millisecond
	var done bool
	for {
		done = p.round(ctx, true)
		if p.Status().Synced {
			break
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 10*time.Second)
	}
	reported := p.reportStatus(ctx, true)
	resync := time.NewTicker(p.cfg.ResyncInterval)
	defer resync.Stop()
	retry := time.NewTimer(time.Hour)
	if done && reported {
		retry.Stop()
	} else {
		retry.Reset(time.Second)
	}
	for {
		full := false
		select {
		case <-ctx.Done():
			return
		case <-p.cat.Changed():
			p.noteQueued()
		case <-retry.C:
			p.requeue()
		case <-resync.C:
			full = true
		}
		if p.round(ctx, full) {
			p.noteDone()
		} else {
			p.noteQueued()
			retry.Reset(time.Second)
		}
		if reported = p.reportStatus(ctx, !reported); !reported {
			retry.Reset(time.Second)
		}
	}
}

// round takes what changed in the catalog (everything when full or when
// the catalog started over) and hands it to the data plane as one Apply.
// false means something must be retried soon.
func (p *Agent) round(ctx context.Context, full bool) bool {
	p.mu.Lock()
	full = full || p.needFull
	p.mu.Unlock()
	d := p.cat.TakeDelta(full)
	start := time.Now()
	if d.Full {
		return p.replace(ctx, d, start)
	}
	var c dataplane.Change
	p.mu.Lock()
	for _, name := range slices.Sorted(maps.Keys(d.Services)) {
		want, ok := p.dataplaneService(d.Services[name])
		prev, had := p.programmed[name]
		switch {
		case ok && (!had || !sameProgram(prev, want)):
			c.Services.Upsert = append(c.Services.Upsert, want)
		case !ok && had:
			c.Services.Remove = append(c.Services.Remove, name)
		default:
			delete(d.Since, name) // nothing to do: not a change of the rules
		}
	}
	p.mu.Unlock()
	if len(c.Services.Upsert)+len(c.Services.Remove) == 0 {
		p.syncChecks(d, false) // local endpoint counts may still move
		return true
	}
	res, err := p.apply(ctx, c)
	if err != nil {
		p.log.Warn("services not programmed; retrying", "changes", len(d.Since), "err", err)
		p.queueRetry(d.Since)
		observeRound(roundIncremental, start, err)
		return false
	}
	p.mu.Lock()
	refused := map[string]time.Time{}
	for _, s := range c.Services.Upsert {
		if errors.Is(res.Services[s.Name], dataplane.ErrServiceNotProgrammed) {
			refused[s.Name] = d.Since[s.Name]
			delete(p.programmed, s.Name)
			continue
		}
		p.programmed[s.Name] = s
	}
	for _, name := range c.Services.Remove {
		delete(p.programmed, name)
	}
	p.noteResults(res.Services)
	p.noteLags(d.Since, refused)
	p.lastApply = time.Now()
	p.mu.Unlock()
	p.syncChecks(d, false)
	observeRound(roundIncremental, start, nil)
	p.log.Debug("services programmed", "upserts", len(c.Services.Upsert), "removals", len(c.Services.Remove),
		"kernel_changes", res.Kernel, "took", res.Took)
	if len(refused) > 0 {
		p.queueRetry(refused)
		return false
	}
	return true
}

// replace hands the catalog's whole set over (start, resync, the catalog
// listing a prefix again).
func (p *Agent) replace(ctx context.Context, d catalog.Delta, start time.Time) bool {
	want := make(map[string]dataplane.Service, len(d.Services))
	for name, st := range d.Services {
		if s, ok := p.dataplaneService(st); ok {
			want[name] = s
		}
	}
	list := slices.Collect(maps.Values(want))
	slices.SortFunc(list, func(a, b dataplane.Service) int { return strings.Compare(a.Name, b.Name) })
	res, err := p.apply(ctx, dataplane.Change{Services: dataplane.ServiceChanges{Replace: true, Upsert: list}})
	if err != nil {
		p.log.Error("services not programmed; retrying", "services", len(list), "err", err)
		p.mu.Lock()
		p.needFull = true
		p.mu.Unlock()
		p.queueRetry(d.Since)
		observeRound(roundFull, start, err)
		return false
	}
	p.mu.Lock()
	refused := map[string]time.Time{}
	for name, err := range res.Services {
		if errors.Is(err, dataplane.ErrServiceNotProgrammed) {
			refused[name] = d.Since[name]
			delete(want, name)
		}
	}
	p.programmed = want
	p.failing = map[string]string{}
	p.noteResults(res.Services)
	p.noteLags(d.Since, refused)
	now := time.Now()
	p.synced, p.needFull, p.lastSync, p.lastSyncDur, p.lastApply = true, false, now, res.Took, now
	p.mu.Unlock()
	p.syncChecks(d, true)
	observeRound(roundFull, start, nil)
	p.log.Info("services programmed", "services", len(want), "programmer", p.cfg.Programmer != nil,
		"kernel_changes", res.Kernel, "took", res.Took)
	if len(refused) > 0 {
		p.queueRetry(refused)
		return false
	}
	return true
}

// apply hands c to the data plane, or, without one, reports every
// service programmed.
func (p *Agent) apply(ctx context.Context, c dataplane.Change) (dataplane.Result, error) {
	if p.cfg.Programmer != nil {
		return p.cfg.Programmer.Apply(ctx, c)
	}
	res := dataplane.Result{Services: map[string]error{}}
	for _, s := range c.Services.Upsert {
		res.Services[s.Name] = nil
	}
	return res, nil
}

// noteResults records the data plane's verdict on every service it
// reported. Called with p.mu held.
func (p *Agent) noteResults(services map[string]error) {
	for name, err := range services {
		if err != nil {
			p.failing[name] = err.Error()
		} else {
			delete(p.failing, name)
		}
	}
	for name := range p.failing {
		if _, ok := p.programmed[name]; !ok {
			if _, reported := services[name]; !reported {
				delete(p.failing, name)
			}
		}
	}
	setServiceGauges(len(p.programmed), len(p.failing))
}

// noteLags records the time from each change's write to now, except for
// refused ones. Called with p.mu held.
func (p *Agent) noteLags(since, refused map[string]time.Time) {
	now := time.Now()
	for name, at := range since {
		if _, bad := refused[name]; bad || at.IsZero() {
			continue
		}
		d := now.Sub(at)
		observeProgramming(d)
		if len(p.lags) < lagRing {
			p.lags = append(p.lags, d)
		} else {
			p.lags[p.lagNext] = d
			p.lagNext = (p.lagNext + 1) % lagRing
		}
	}
}

// syncChecks updates the health-check NodePorts from the services of d
// (all of them when full) and records the ports that could not be
// opened.
func (p *Agent) syncChecks(d catalog.Delta, full bool) {
	p.mu.Lock()
	if full {
		p.checks = map[string]hcCheck{}
		p.extRefused = map[string][]string{}
	}
	for name, st := range d.Services {
		delete(p.checks, name)
		if why := p.refusedExternalIPs(st); len(why) > 0 {
			p.extRefused[name] = why
		} else {
			delete(p.extRefused, name)
		}
		if st == nil || st.Service.ExternalTrafficPolicy != store.TrafficPolicyLocal || st.Service.HealthCheckNodePort == 0 {
			continue
		}
		c := hcCheck{port: st.Service.HealthCheckNodePort}
		for _, e := range st.Endpoints {
			if e.Local {
				c.local++
			}
		}
		p.checks[name] = c
	}
	want := make(map[uint16]hcWant, len(p.checks))
	for name, c := range p.checks {
		want[c.port] = hcWant{service: name, local: c.local}
	}
	p.mu.Unlock()
	failed := p.hc.sync(want)
	p.mu.Lock()
	defer p.mu.Unlock()
	p.hcErrs = map[string]string{}
	for name, err := range failed {
		p.hcErrs[name] = err.Error()
	}
}

// failingLocked is every service this host cannot serve whole, with why:
// the data plane's errors, the external IPs left out, the health-check
// ports that could not be opened.
// Called with p.mu held.
func (p *Agent) failingLocked() map[string]string {
	out := maps.Clone(p.failing)
	for name, why := range p.extRefused {
		msg := strings.Join(why, "; ")
		if prev, ok := out[name]; ok {
			msg = prev + "; " + msg
		}
		out[name] = msg
	}
	for name, msg := range p.hcErrs {
		if prev, ok := out[name]; ok {
			msg = prev + "; " + msg
		}
		out[name] = msg
	}
	return out
}

// queueRetry keeps changes to hand back to the catalog at the next retry.
func (p *Agent) queueRetry(since map[string]time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for name, at := range since {
		if old, ok := p.retry[name]; !ok || (!at.IsZero() && (old.IsZero() || at.Before(old))) {
			p.retry[name] = at
		}
	}
}

// requeue hands the changes to retry back to the catalog.
func (p *Agent) requeue() {
	p.mu.Lock()
	r := p.retry
	p.retry = map[string]time.Time{}
	p.mu.Unlock()
	p.cat.Requeue(r)
}

// noteQueued records that a change is waiting, unless an older one is.
func (p *Agent) noteQueued() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.pendingSince.IsZero() {
		p.pendingSince = time.Now()
	}
}

// noteDone records a round that left nothing to retry.
func (p *Agent) noteDone() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.retry) == 0 {
		p.pendingSince = time.Time{}
	}
}

// Health is nil when this host's service rules are current, as
// kube-proxy's healthz judges it: the agent programmed the whole set once
// since it started, no change has waited for the data plane longer than
// HealthTimeout, and a round ran within the resync interval plus that
// (even a quiet host runs a full one every interval). Otherwise it says
// what is wrong.
func (p *Agent) Health() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	now, bound := time.Now(), p.cfg.HealthTimeout
	switch {
	case !p.synced:
		return errors.New("the service proxy has not programmed the services since podnetd started")
	case !p.pendingSince.IsZero() && now.Sub(p.pendingSince) > bound:
		return fmt.Errorf("service changes have waited %v for the data plane (%d to retry)",
			now.Sub(p.pendingSince).Round(time.Second), len(p.retry))
	case now.Sub(p.lastApply) > p.cfg.ResyncInterval+bound:
		return fmt.Errorf("the service proxy's last round was %v ago", now.Sub(p.lastApply).Round(time.Second))
	}
	return nil
}

// Pending counts the services changed in the catalog that the data plane
// does not have yet: marked and not taken, or refused and waiting for a
// retry (podnet_proxy_pending_changes).
func (p *Agent) Pending() int {
	p.mu.Lock()
	n := len(p.retry)
	p.mu.Unlock()
	return n + p.cat.Pending()
}

// Status reports what the agent holds.
func (p *Agent) Status() admin.ServiceAgentStatus {
	p.mu.Lock()
	defer p.mu.Unlock()
	st := admin.ServiceAgentStatus{Host: p.cfg.Host, Programmer: p.cfg.Programmer != nil, Synced: p.synced,
		LastSync: p.lastSync, LastSyncDuration: p.lastSyncDur, Services: len(p.programmed), LagCount: len(p.lags)}
	st.Failing = slices.Sorted(maps.Keys(p.failingLocked()))
	if len(p.lags) > 0 {
		ls := slices.Clone(p.lags)
		slices.Sort(ls)
		st.LagP50, st.LagP99, st.LagMax = ls[len(ls)/2], ls[len(ls)*99/100], ls[len(ls)-1]
	}
	return st
}

// Programmed returns what the data plane was last given for name.
func (p *Agent) Programmed(name string) (dataplane.Service, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	s, ok := p.programmed[name]
	return s, ok
}
