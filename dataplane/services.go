package dataplane

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"

	"github.com/podnet/podnet/internal/dockerid"
	"github.com/vishvananda/netlink"
)

// flowCleanup is the conntrack work a change leaves for after the
// engine's lock: the flows services calls for, and after a restart's
// first Replace the matcher of flows to endpoints that left meanwhile.
type flowCleanup struct {
	services *svcFlows
	restart  func(*netlink.ConntrackFlow) bool
}

// replaceServicesLocked makes svcs the whole desired set. Only services
// that differ from what the engine holds are planned and built again; the
// table is then synced against the kernel, which compares the service
// section element by element (see netlinkNFT.syncTable), so the
// transaction holds only what differs from the kernel. The first Replace
// after a start thereby keeps every rule of the previous podnetd that is
// still right, and a later one repairs drift. When the kernel refuses the
// whole table, services are programmed one batch each (rewriteOneByOne).
func (e *Engine) replaceServicesLocked(svcs []Service) (Result, flowCleanup, error) {
	prev := e.svc
	next := e.planReplace(prev, svcs)
	e.svc = next
	// An engine's first Replace (podnetd restarted) believes the kernel's
	// element sums; later ones list every set, repairing drift.
	e.trustSums = !prev.known
	n, err := e.syncTableLocked(true)
	e.trustSums = false
	if err != nil {
		e.log.Warn("service rules refused as a whole, programming them one by one", "err", err)
		if err = e.rewriteOneByOne(prev, next); err != nil {
			e.svc = prev
			return Result{}, flowCleanup{}, fmt.Errorf("replace services: %w", err)
		}
	}
	var flows flowCleanup
	if prev.known {
		flows.services = conntrackChanges(prev, e.svc)
	} else {
		// After a restart the previous podnetd's rules were in place (no
		// flow went around them), but endpoints may have left meanwhile.
		flows.restart = restartFlows(e.svc)
	}
	res := Result{Services: make(map[string]error, len(e.svc.svcs)), Kernel: n}
	for name, st := range e.svc.svcs {
		res.Services[name] = st.status()
	}
	res.Programmed, res.Failing = e.svc.counts()
	e.log.Info("services programmed", "services", res.Programmed, "failed", res.Failing, "kernel_changes", n)
	return res, flows, nil
}

// planReplace is prev turned into the desired set svcs: states, claims,
// objects and reference counts, changed only for services that differ
// (and those that failed or had blocked keys: a conflict, or a port of
// this host holding a NodePort, may be gone). Services
// that kept their keys claim first, new ones in name order.
func (e *Engine) planReplace(prev *svcTable, svcs []Service) *svcTable {
	next := prev.clone()
	next.known = true
	want := map[string]Service{}
	for _, s := range svcs {
		if _, dup := want[s.Name]; dup {
			e.log.Error("service given twice, keeping the first", "service", s.Name)
			continue
		}
		want[s.Name] = s
	}
	var changed []string
	for name, st := range prev.svcs {
		if w, ok := want[name]; !ok || st.err != nil || len(st.blocked) > 0 || !sameService(st.in, w) {
			changed = append(changed, name)
		}
	}
	for name := range want {
		if _, ok := prev.svcs[name]; !ok {
			changed = append(changed, name)
		}
	}
	for _, name := range changed {
		next.release(next.svcs[name])
		delete(next.svcs, name)
	}
	for _, name := range claimOrder(prev, changed) {
		if s, ok := want[name]; ok {
			next.svcs[name] = e.stateFor(next, s, prev.svcs[name])
		}
	}
	d := &tableDelta{countsOnly: true}
	for _, name := range changed {
		next.setObjects(d, name, objectsOf(next.svcs[name], e.opts.BridgePrefix))
	}
	d.finish(next)
	return next
}

// claimOrder sorts names so that services that held keys in prev claim
// first (a service never loses its address to a newcomer), then by name.
func claimOrder(prev *svcTable, names []string) []string {
	out := slices.Clone(names)
	slices.SortFunc(out, func(a, b string) int {
		_, ha := prev.objs[a]
		_, hb := prev.objs[b]
		switch {
		case ha && !hb:
			return -1
		case hb && !ha:
			return 1
		}
		return compareStrings(a, b)
	})
	return out
}

// objectsOf builds the objects of st (nil st: none).
func objectsOf(st *svcState, prefix string) *svcObjects {
	if st == nil {
		return nil
	}
	return buildServiceObjects(st, prefix)
}

// changeServicesLocked programs the upserts and removals of c as one delta
// (journaled, so a refusal rolls memory back in time proportional to the
// change). Services failing with a conflict are tried again when the
// change releases addresses or ports. If the kernel refuses the delta (it
// drifted from memory), the table is synced as a whole instead; if that
// fails too, the change is programmed one service at a time.
func (e *Engine) changeServicesLocked(c ServiceChanges) (Result, flowCleanup, error) {
	t := e.svc
	want := map[string]*Service{}
	var names []string
	for i, s := range c.Upsert {
		if _, dup := want[s.Name]; dup {
			e.log.Error("service given twice, keeping the first", "service", s.Name)
			continue
		}
		want[s.Name] = &c.Upsert[i]
		names = append(names, s.Name)
	}
	for _, name := range c.Remove {
		if _, ok := want[name]; !ok && !slices.Contains(names, name) {
			want[name] = nil
			names = append(names, name)
		}
	}
	olds := map[string]*svcState{}
	t.begin()
	released := false
	for _, name := range names {
		old := t.svcs[name]
		olds[name] = old
		released = released || (old != nil && old.err == nil && !old.headless())
		t.release(old)
		drop(t, t.svcs, name)
	}
	if released {
		// Keys the change frees go to the services that were denied them.
		for _, name := range sortedKeys(t.svcs) {
			if st := t.svcs[name]; st.err == nil && len(st.blocked) > 0 {
				in := st.in
				want[name], olds[name] = &in, st
				names = append(names, name)
				t.release(st)
				drop(t, t.svcs, name)
			}
		}
	}
	for _, name := range claimOrder(t, names) {
		if s := want[name]; s != nil {
			put(t, t.svcs, name, e.stateFor(t, *s, olds[name]))
		}
	}
	d := &tableDelta{}
	for _, name := range names {
		t.setObjects(d, name, objectsOf(t.svcs[name], e.opts.BridgePrefix))
	}
	d.finish(t)
	var kernel int
	var err error
	if !d.empty() {
		kernel, err = e.nft.applyDelta(e.opts.Table, d)
	}
	if err != nil {
		e.log.Info("incremental service update failed, syncing the table", "services", len(names), "err", err)
		var err2 error
		if kernel, err2 = e.syncTableLocked(true); err2 != nil {
			t.rollback()
			e.log.Warn("service change refused, programming it one service at a time", "services", len(names),
				"err", errors.Join(err, err2))
			kernel = e.changeOneByOne(want)
		} else {
			t.commit()
		}
	} else {
		t.commit()
	}
	res := Result{Services: map[string]error{}, Kernel: kernel}
	flows := newSvcFlows()
	for _, name := range names {
		if st := t.svcs[name]; st != nil {
			res.Services[name] = st.status()
		}
		flows.add(flowState(olds[name]), programmedState(t, name))
	}
	res.Programmed, res.Failing = t.counts()
	return res, flowCleanup{services: flows}, nil
}

// changeOneByOne programs each named service's change as a delta of its
// own, after the change as a whole was refused; a service the kernel
// refuses is left out (its rules removed) and reported. It returns the
// kernel objects changed.
func (e *Engine) changeOneByOne(want map[string]*Service) int {
	t := e.svc
	total := 0
	for _, name := range sortedKeys(want) {
		s := want[name]
		t.begin()
		old := t.svcs[name]
		t.release(old)
		drop(t, t.svcs, name)
		if s != nil {
			put(t, t.svcs, name, e.stateFor(t, *s, old))
		}
		n, err := e.applyOwnDelta(name)
		if err == nil {
			t.commit()
			total += n
			continue
		}
		t.rollback()
		e.log.Error("service rules refused by the kernel", "service", name, "err", err)
		if s == nil {
			continue // its old rules stay; a later change retries
		}
		// Leave it out: its rules go, its record says why.
		t.begin()
		old = t.svcs[name]
		t.release(old)
		put(t, t.svcs, name, &svcState{in: cloneService(*s), spec: Service{Name: name},
			err: fmt.Errorf("%w: %s: %w", ErrServiceNotProgrammed, name, err)})
		if n, derr := e.applyOwnDelta(name); derr != nil {
			t.rollback()
		} else {
			t.commit()
			total += n
		}
	}
	return total
}

// applyOwnDelta programs name's state in e.svc (inside an open change) as
// a delta of its own.
func (e *Engine) applyOwnDelta(name string) (int, error) {
	t := e.svc
	d := &tableDelta{}
	t.setObjects(d, name, objectsOf(t.svcs[name], e.opts.BridgePrefix))
	d.finish(t)
	return e.nft.applyDelta(e.opts.Table, d)
}

// ServiceStatus is nil when the service's rules are programmed (or it is
// headless and needs none), else why not. Apply reports the same in its
// Result for the services a change names.
func (e *Engine) ServiceStatus(name string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	st, ok := e.svc.svcs[name]
	if !ok {
		return fmt.Errorf("service %s: %w", name, ErrServiceUnknown)
	}
	return st.status()
}

// nodePortOwnerLocked names the service whose NodePort port is on this
// host ("" if none).
func (e *Engine) nodePortOwnerLocked(p Proto, port uint16) string {
	return e.svc.owners[svcKey{proto: p, port: port}]
}

// portHeldLocked says why this host keeps a NodePort from services ("":
// it does not): a container publishes that port here with -p, or a
// process of the host holds it. Either came first and keeps its traffic;
// the NodePort is left out on this host and reported.
func (e *Engine) portHeldLocked(k svcKey) string {
	if k.addr.IsValid() {
		return ""
	}
	for _, id := range sortedKeys(e.eps) {
		for _, m := range e.eps[id].mappings {
			if m.Proto == k.proto && m.HostPort == k.port && !(m.HostIP.IsValid() && m.HostIP.IsLoopback()) {
				return "is published on this host by endpoint " + dockerid.Short(id) + " (docker run -p), which keeps it"
			}
		}
	}
	if in := e.opts.PortInUse; in != nil && (in(k.proto, netip.IPv4Unspecified(), k.port) || in(k.proto, netip.IPv6Unspecified(), k.port)) {
		return "is held by a process of this host, which keeps its traffic"
	}
	return ""
}

func compareStrings(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// stateFor normalizes s and claims its keys in t, one by one: a key
// another service holds, or a NodePort a port of this host holds, is
// blocked (svcState.blocked) and only that element is left out.
func (e *Engine) stateFor(t *svcTable, s Service, prev *svcState) *svcState {
	if prev != nil && prev.err != nil {
		prev = nil
	}
	st, ignored := newSvcState(s, prev)
	t.claim(st, e.portHeldLocked)
	if err := st.status(); err != nil {
		// Reported in the Result (the agent logs it once per change).
		e.log.Debug("service not programmed whole", "service", s.Name, "err", err)
	}
	if len(ignored) > 0 {
		e.log.Warn("service addresses of another family than its cluster IP ignored", "service", s.Name,
			"family", st.family().keyword(), "ignored", joinIgnored(ignored))
	}
	return st
}

// rewriteOneByOne programs next after the kernel refused it as a whole:
// it syncs the table without services, then adds them one batch each, so
// that a service the kernel refuses is reported by name and the others
// still work. It fails only when not even the table without services
// could be written; e.svc is then prev again.
func (e *Engine) rewriteOneByOne(prev, next *svcTable) error {
	empty := newSvcTable()
	empty.known = true
	e.svc = empty
	if _, err := e.syncTableLocked(true); err != nil {
		e.svc = prev
		return err
	}
	t := e.svc
	for _, name := range sortedKeys(next.svcs) {
		st := next.svcs[name]
		t.begin()
		if st.err == nil {
			cp := *st // states are never changed in place (clone shares them)
			st = &cp
			t.claim(st, e.portHeldLocked)
		}
		put(t, t.svcs, name, st)
		if _, aerr := e.applyOwnDelta(name); aerr != nil {
			t.rollback()
			t.svcs[name] = &svcState{in: st.in, spec: Service{Name: name},
				err: fmt.Errorf("%w: %s: %w", ErrServiceNotProgrammed, name, aerr)}
			e.log.Error("service rules refused by the kernel", "service", name, "err", aerr)
			continue
		}
		t.commit()
	}
	return nil
}

// counts returns how many services are programmed and how many failed.
func (t *svcTable) counts() (ok, failed int) {
	for _, st := range t.svcs {
		if st.err != nil {
			failed++
		} else {
			ok++
		}
	}
	return ok, failed
}

// sameService reports whether two inputs are the same service.
func sameService(a, b Service) bool {
	return a.Name == b.Name && a.ClusterIP == b.ClusterIP && slices.Equal(a.ExternalIPs, b.ExternalIPs) &&
		slices.Equal(a.Ports, b.Ports) && slices.Equal(a.Endpoints, b.Endpoints) &&
		a.Affinity == b.Affinity && a.LocalOnly == b.LocalOnly
}
