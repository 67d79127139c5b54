package proxy

import (
	"context"
	"errors"
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
// Engine):
// the whole desired set at start and on every resync, one service at a
// time in between.
type Programmer interface {
	SetServices(ctx context.Context, svcs []dataplane.Service) error
	UpsertService(ctx context.Context, s dataplane.Service) error
	DeleteService(ctx context.Context, name string) error
	// ServiceStatus is nil when the service's rules are programmed, else
	// why not.
	ServiceStatus(name string) error
}

// Config wires an Agent.
type Config struct {
	Host    string
	Store   *store.Store
	Catalog *catalog.Catalog
	// Programmer nil: the agent computes what each service needs on this
	// host (shown by Status) but programs nothing.
	Programmer Programmer
	// ResyncInterval is the period of the full SetServices (default 5 min).
	ResyncInterval time.Duration
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
// each change over as it happens.
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
	synced            bool
	lastSync          time.Time
	lastSyncDur       time.Duration   // how long the data plane took at lastSync
	lags              []time.Duration // ring of the last lagRing
	lagNext           int
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
	return &Agent{cfg: cfg, log: cfg.Logger, cat: cfg.Catalog, programmed: map[string]dataplane.Service{},
		failing: map[string]string{}, reported: map[string]string{}}
}

// Run drives the data plane until ctx ends. The catalog must be running.
// It waits for the catalog's first complete view, programs everything
// with SetServices (retrying until the data plane takes it), then applies
// each change with UpsertService/DeleteService, only for services whose
// result changed; every ResyncInterval it calls SetServices again.
func (p *Agent) Run(ctx context.Context) {
	for !p.cat.Loaded() {
		select {
		case <-ctx.Done():
			return
		case <-p.cat.Changed():
		case <-time.After(100 * time.Millisecond):
		}
	}
	p.cat.TakeDirty()
	backoff := 200 * time.Millisecond
	for !p.fullSync(ctx) {
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
	retry.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-p.cat.Changed():
			if !p.applyChanges(ctx) {
				retry.Reset(time.Second)
			}
		case <-retry.C:
			if !p.applyChanges(ctx) || !reported {
				retry.Reset(time.Second)
			}
		case <-resync.C:
			p.cat.TakeDirty()
			if !p.fullSync(ctx) {
				retry.Reset(time.Second)
			}
		}
		if reported = p.reportStatus(ctx, !reported); !reported {
			retry.Reset(time.Second)
		}
	}
}

// desired computes the data-plane view of every service with a VIP.
func (p *Agent) desired() map[string]dataplane.Service {
	names := p.cat.ServiceNames()
	out := make(map[string]dataplane.Service, len(names))
	for _, name := range names {
		if ps, ok := p.program(name); ok {
			out[name] = ps
		}
	}
	return out
}

// fullSync hands the whole desired set over; false when the data plane
// took none of it.
func (p *Agent) fullSync(ctx context.Context) bool {
	want := p.desired()
	var took time.Duration
	if pr := p.cfg.Programmer; pr != nil {
		list := slices.Collect(maps.Values(want))
		slices.SortFunc(list, func(a, b dataplane.Service) int { return strings.Compare(a.Name, b.Name) })
		start := time.Now()
		if err := pr.SetServices(ctx, list); err != nil {
			p.log.Error("services not programmed; retrying", "services", len(list), "err", err)
			return false
		}
		took = time.Since(start)
	}
	p.mu.Lock()
	p.programmed = want
	p.synced, p.lastSync, p.lastSyncDur = true, time.Now(), took
	p.mu.Unlock()
	p.refreshFailing(slices.Collect(maps.Keys(want)), true)
	p.log.Info("services programmed", "services", len(want), "programmer", p.cfg.Programmer != nil, "dur", took)
	return true
}

// applyChanges recomputes the services the catalog marked and hands over
// those whose result changed. false means a call failed (retry soon: the
// failed services stay marked).
func (p *Agent) applyChanges(ctx context.Context) bool {
	dirty, all := p.cat.TakeDirty()
	if all {
		for name := range p.programmedNames() {
			if _, ok := dirty[name]; !ok {
				dirty[name] = time.Time{}
			}
		}
		for _, name := range p.cat.ServiceNames() {
			if _, ok := dirty[name]; !ok {
				dirty[name] = time.Time{}
			}
		}
	}
	var changes []change
	for name, since := range dirty {
		want, have := p.program(name)
		p.mu.Lock()
		prev, was := p.programmed[name]
		p.mu.Unlock()
		if have == was && (!have || sameProgram(prev, want)) {
			continue
		}
		changes = append(changes, change{name: name, since: since, want: want, have: have})
	}
	p.mu.Lock()
	held := len(p.programmed)
	p.mu.Unlock()
	if len(changes) >= batchAt(held) {
		return p.applyBatch(ctx, changes)
	}
	ok := true
	var touched []string
	for _, ch := range changes {
		var err error
		if pr := p.cfg.Programmer; pr != nil {
			if ch.have {
				err = pr.UpsertService(ctx, ch.want)
			} else {
				err = pr.DeleteService(ctx, ch.name)
			}
		}
		if err != nil && !settled(err) {
			p.log.Warn("service not programmed; retrying", "service", ch.name, "err", err)
			p.cat.MarkDirty(ch.name, ch.since)
			ok = false
			continue
		}
		p.mu.Lock()
		if ch.have {
			p.programmed[ch.name] = ch.want
		} else {
			delete(p.programmed, ch.name)
		}
		if !ch.since.IsZero() {
			p.recordLag(time.Since(ch.since))
		}
		p.mu.Unlock()
		touched = append(touched, ch.name)
		p.log.Debug("service programmed", "service", ch.name, "present", ch.have, "endpoints", len(ch.want.Endpoints),
			"lag", lagOf(ch.since))
	}
	p.refreshFailing(touched, false)
	return ok
}

// settled says err is the data plane's last word on a service (it
// cannot be expressed, or conflicts with another): trying again changes
// nothing until the service or the other one changes, so the service is
// not retried every second; its status says why (reportStatus, which logs
// it once per change).
func settled(err error) bool {
	return errors.Is(err, dataplane.ErrServiceInvalid) || errors.Is(err, dataplane.ErrServiceConflict)
}

// change is one service whose data-plane view changed: want (absent
// when !have) since the write dated since.
type change struct {
	name  string
	since time.Time
	want  dataplane.Service
	have  bool
}

// batchAt is how many changed services are handed over as one
// SetServices of the whole set rather than one call each. Every
// UpsertService or DeleteService is its own netlink batch, and a batch
// that replaces map elements waits for a kernel RCU grace period (about
// 10 ms here, however small the change); SetServices plans every service
// but programs only the difference, in one batch. Measured on the lab
// machine: one change costs ~10 ms as a call of its own and ~55 ms (1000
// services loaded) or ~200 ms (5000) as a SetServices, while 1000
// changes cost ~13 s one by one and ~50 ms as one SetServices. So a burst
// (a host with endpoints of many services dies or returns, a resync)
// goes in one batch, and a single change stays cheap.
func batchAt(programmed int) int { return max(8, programmed/200) }

// applyBatch hands a burst of changes over as one SetServices; on failure
// the changes are marked again (retried soon).
func (p *Agent) applyBatch(ctx context.Context, changes []change) bool {
	if !p.fullSync(ctx) {
		for _, ch := range changes {
			p.cat.MarkDirty(ch.name, ch.since)
		}
		return false
	}
	p.mu.Lock()
	for _, ch := range changes {
		if !ch.since.IsZero() {
			p.recordLag(time.Since(ch.since))
		}
	}
	p.mu.Unlock()
	return true
}

func lagOf(since time.Time) time.Duration {
	if since.IsZero() {
		return 0
	}
	return time.Since(since)
}

func (p *Agent) programmedNames() map[string]bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make(map[string]bool, len(p.programmed))
	for n := range p.programmed {
		out[n] = true
	}
	return out
}

func (p *Agent) recordLag(d time.Duration) {
	if len(p.lags) < lagRing {
		p.lags = append(p.lags, d)
		return
	}
	p.lags[p.lagNext] = d
	p.lagNext = (p.lagNext + 1) % lagRing
}

// refreshFailing asks the data plane about names (every programmed
// service when all) and remembers which fail.
func (p *Agent) refreshFailing(names []string, all bool) {
	pr := p.cfg.Programmer
	p.mu.Lock()
	defer p.mu.Unlock()
	if all {
		p.failing = map[string]string{}
	}
	for _, n := range names {
		delete(p.failing, n)
		if _, ok := p.programmed[n]; !ok || pr == nil {
			continue
		}
		var why []string
		if err := pr.ServiceStatus(n); err != nil {
			why = append(why, err.Error())
		}
		why = append(why, p.refusedExternalIPs(n)...)
		if len(why) > 0 {
			p.failing[n] = strings.Join(why, "; ")
		}
	}
}

// Status reports what the agent holds.
func (p *Agent) Status() admin.ServiceAgentStatus {
	p.mu.Lock()
	defer p.mu.Unlock()
	st := admin.ServiceAgentStatus{Host: p.cfg.Host, Programmer: p.cfg.Programmer != nil, Synced: p.synced,
		LastSync: p.lastSync, LastSyncDuration: p.lastSyncDur, Services: len(p.programmed), LagCount: len(p.lags)}
	st.Failing = slices.Sorted(maps.Keys(p.failing))
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
