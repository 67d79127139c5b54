package dataplane

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"

	"github.com/podnet/podnet/internal/dockerid"
	"github.com/vishvananda/netlink"
)

// ErrServicesNotSet: UpsertService or DeleteService before the first
// SetServices. Until then the kernel holds the previous podnetd's service
// rules, which one SetServices replaces atomically; a single change
// cannot be merged into rules the engine does not know.
var ErrServicesNotSet = errors.New("services not set yet: call SetServices first")

// SetServices replaces the whole desired set (podnetd start, full resync)
// and programs it. A service that cannot be programmed does not fail the
// others: it is left out, logged by name and reported by ServiceStatus;
// SetServices returns an error only when nothing could be applied.
//
// The first call after a start rewrites the service section in one batch
// (the previous podnetd's rules stay until then); later calls apply only
// what changed. Conntrack entries of UDP and SCTP flows to endpoints that
// left are deleted afterwards; after the first call, those of flows
// through a service to an address that is not one of its endpoints any
// more (endpoints that left while podnetd was down).
func (e *Engine) SetServices(ctx context.Context, svcs []Service) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	e.mu.Lock()
	prev := e.svc
	next := e.planServices(prev, svcs)
	var err error
	if prev.known {
		err = e.applyDeltaLocked(prev, next)
	} else {
		err = errors.New("first SetServices")
	}
	if err != nil {
		err = e.rewriteServicesLocked(prev, next)
	}
	var cleanup *svcFlows
	var restart func(*netlink.ConntrackFlow) bool
	if prev.known {
		cleanup = conntrackChanges(prev, e.svc)
	} else {
		// After a restart the previous podnetd's rules were in place (no
		// flow went around them), but endpoints may have left meanwhile.
		restart = restartFlows(e.svc)
	}
	programmed, failed := e.svc.counts()
	e.mu.Unlock()
	if err != nil {
		return fmt.Errorf("set services: %w", err)
	}
	e.log.Info("services programmed", "services", programmed, "failed", failed)
	e.flushServiceConntrack(cleanup)
	if restart != nil {
		n, err := e.ct.deleteFlows([]family{ipv4, ipv6}, restart)
		e.logFlush("service restart", n, err)
	}
	return nil
}

// UpsertService adds or replaces one service incrementally: one small
// netlink batch (its map elements, its own chains and sets, shared
// objects it is the first or last to use), no process exec, a cost
// independent of how many other services exist.
func (e *Engine) UpsertService(ctx context.Context, s Service) error {
	var st *svcState
	err := e.changeService(ctx, "upsert", s.Name, func(t *svcTable, old *svcState) bool {
		st = e.stateFor(t, s, old)
		put(t, t.svcs, s.Name, st)
		return true
	})
	if err != nil {
		return err
	}
	return st.err
}

// DeleteService removes one service's rules and deletes the conntrack
// entries of its UDP/SCTP flows. An unknown name is not an error.
func (e *Engine) DeleteService(ctx context.Context, name string) error {
	return e.changeService(ctx, "delete", name, func(t *svcTable, old *svcState) bool {
		if old == nil {
			return false
		}
		drop(t, t.svcs, name)
		return true
	})
}

// changeService runs one service's change: mutate updates the table (its
// old keys already released, inside an open change; false: nothing to
// do), changeLocked programs it, the conntrack cleanup follows.
func (e *Engine) changeService(ctx context.Context, verb, name string, mutate func(t *svcTable, old *svcState) bool) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	e.mu.Lock()
	if !e.svc.known {
		e.mu.Unlock()
		return fmt.Errorf("%s service %s: %w", verb, name, ErrServicesNotSet)
	}
	t := e.svc
	old := t.svcs[name]
	t.begin()
	t.release(old)
	if !mutate(t, old) {
		t.rollback()
		e.mu.Unlock()
		return nil
	}
	// Keys the change freed go to services that were denied them.
	names := append([]string{name}, e.reclaimLocked(t, old)...)
	err := e.changeLocked(names...)
	cleanup := flowsOf(old, programmedState(e.svc, name))
	e.mu.Unlock()
	if err != nil {
		return fmt.Errorf("%s service %s: %w", verb, name, err)
	}
	e.flushServiceConntrack(cleanup)
	return nil
}

// ServiceStatus is nil when the service's rules are programmed (or it is
// headless and needs none), else why not.
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

// reclaimLocked gives the keys old held and the open change released
// to the services that were denied them (blocked because old had them),
// and returns their names, for the same delta.
func (e *Engine) reclaimLocked(t *svcTable, old *svcState) []string {
	if old == nil {
		return nil
	}
	var out []string
	for _, name := range sortedKeys(t.svcs) {
		st := t.svcs[name]
		if st.err != nil || name == old.spec.Name {
			continue
		}
		freed := false
		for k := range st.blocked {
			if _, taken := t.owners[k]; !taken && slices.Contains(old.keys(), k) {
				freed = true
			}
		}
		if !freed {
			continue
		}
		cp := *st
		t.claim(&cp, e.portHeldLocked)
		put(t, t.svcs, name, &cp)
		out = append(out, name)
	}
	return out
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

// planServices is the new service table for svcs: states with their
// slots carried over from prev, keys claimed (services prev already had
// keep theirs; new ones claim in name order), errors recorded per service.
// Objects are not built yet.
func (e *Engine) planServices(prev *svcTable, svcs []Service) *svcTable {
	next := newSvcTable()
	next.known = true
	byName := map[string]Service{}
	var names []string
	for _, s := range svcs {
		if _, dup := byName[s.Name]; dup {
			e.log.Error("service given twice, keeping the first", "service", s.Name)
			continue
		}
		byName[s.Name] = s
		names = append(names, s.Name)
	}
	slices.SortFunc(names, func(a, b string) int {
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
	for _, name := range names {
		next.svcs[name] = e.stateFor(next, byName[name], prev.svcs[name])
	}
	return next
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

// stateFor normalizes s and claims its keys in t; a service that fails
// either keeps only its name and the error.
func (e *Engine) stateFor(t *svcTable, s Service, prev *svcState) *svcState {
	if prev != nil && prev.err != nil {
		prev = nil
	}
	st, ignored, err := newSvcState(s, prev)
	if err != nil {
		// Reported by ServiceStatus (the agent logs it once per change).
		e.log.Debug("service cannot be programmed", "service", s.Name, "err", err)
		return &svcState{spec: Service{Name: s.Name}, err: err}
	}
	t.claim(st, e.portHeldLocked)
	if len(ignored) > 0 {
		e.log.Warn("service addresses of another family than its cluster IP ignored", "service", s.Name,
			"family", st.family().keyword(), "ignored", joinIgnored(ignored))
	}
	return st
}

// changeLocked programs the change of one service (e.svc.svcs already
// updated, inside an open change) as one delta and commits it. If the
// kernel refuses the delta (it drifted from memory), the whole table is
// rewritten instead; if that fails too, the change is rolled back.
func (e *Engine) changeLocked(names ...string) error {
	t := e.svc
	d := &tableDelta{}
	for _, name := range names {
		var o *svcObjects
		if st, ok := t.svcs[name]; ok {
			o = buildServiceObjects(st, e.opts.BridgePrefix)
		}
		t.setObjects(d, name, o)
	}
	d.finish(t)
	err := e.nft.applyDelta(e.opts.Table, d)
	if err == nil {
		t.commit()
		return nil
	}
	e.log.Info("incremental service update failed, rewriting the table", "service", names[0], "err", err)
	if err2 := e.syncTableLocked(true); err2 != nil {
		t.rollback()
		return fmt.Errorf("%w: %w", ErrServiceNotProgrammed, errors.Join(err, err2))
	}
	t.commit()
	return nil
}

// applyDeltaLocked programs the difference between prev and next (a whole
// desired set) as one delta.
func (e *Engine) applyDeltaLocked(prev, next *svcTable) error {
	work := prev.clone()
	work.svcs, work.owners = next.svcs, next.owners
	d := &tableDelta{}
	names := map[string]bool{}
	for n := range prev.objs {
		names[n] = true
	}
	for n := range next.svcs {
		names[n] = true
	}
	for _, n := range sortedKeys(names) {
		var o *svcObjects
		if st, ok := next.svcs[n]; ok {
			o = buildServiceObjects(st, e.opts.BridgePrefix)
		}
		work.setObjects(d, n, o)
	}
	d.finish(work)
	if err := e.nft.applyDelta(e.opts.Table, d); err != nil {
		e.log.Info("incremental service update failed, rewriting the table", "err", err)
		return err
	}
	e.svc = work
	return nil
}

// rewriteServicesLocked programs next by rewriting the whole table in one
// batch. If the kernel refuses that, it rewrites the table without
// services and then adds them one batch each, so that a service the
// kernel refuses is reported by name and the others still work. It fails
// only when not even the table without services could be written; e.svc
// is then prev again.
func (e *Engine) rewriteServicesLocked(prev, next *svcTable) error {
	e.svc = rebuildObjects(next, e.opts.BridgePrefix)
	err := e.syncTableLocked(true)
	if err == nil {
		return nil
	}
	e.log.Warn("service rules refused as a whole, programming them one by one", "err", err)
	empty := newSvcTable()
	empty.known = true
	e.svc = empty
	if err2 := e.syncTableLocked(true); err2 != nil {
		e.svc = prev
		return errors.Join(err, err2)
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
		d := &tableDelta{}
		if st.err == nil {
			t.setObjects(d, name, buildServiceObjects(st, e.opts.BridgePrefix))
			d.finish(t)
		}
		if aerr := e.nft.applyDelta(e.opts.Table, d); aerr != nil {
			t.rollback()
			t.svcs[name] = &svcState{spec: Service{Name: name}, err: fmt.Errorf("%w: %s: %w", ErrServiceNotProgrammed, name, aerr)}
			e.log.Error("service rules refused by the kernel", "service", name, "err", aerr)
			continue
		}
		t.commit()
	}
	return nil
}

// rebuildObjects returns t with every service's objects and the reference
// counts built from scratch.
func rebuildObjects(t *svcTable, prefix string) *svcTable {
	out := newSvcTable()
	out.known = t.known
	for k, v := range t.svcs {
		out.svcs[k] = v
	}
	for k, v := range t.owners {
		out.owners[k] = v
	}
	d := &tableDelta{}
	for _, name := range sortedKeys(t.svcs) {
		out.setObjects(d, name, buildServiceObjects(t.svcs[name], prefix))
	}
	d.finish(out)
	return out
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
