package registry

import (
	"context"
	"fmt"
	"strconv"
	"sync"

	"github.com/podnet/podnet/admin"
	"github.com/podnet/podnet/store"
)

// A file is written in as few etcd transactions as etcd allows: one
// listing of the services and of the claims, every object planned in
// memory against it (allocations included), then transactions of up to
// txnOps comparisons and writes each (etcd's default --max-txn-ops),
// each holding whole objects. A transaction whose conditions fail (a
// concurrent writer took a VIP, changed a service) falls back to one
// transaction per object of it, with the usual retries and explanations,
// so an object that etcd alone can refuse fails alone. A file of 1000
// services is about 20 transactions instead of 1000 (and 1000 listings of
// the claims).
const txnOps = 128

// txnsInFlight is how many of a file's transactions are sent at once: they
// touch disjoint keys, and etcd commits concurrent proposals together.
const txnsInFlight = 4

// planned is one object's share of a batch.
type planned struct {
	idx    int
	svc    store.Service // as validated (the fallback's input)
	name   string
	action string
	cmps   []store.Cmp
	ops    []store.Op
	err    error
}

// applyAll creates or updates ss (validated, checked against the claims
// taken and the load-balancer state lb, which it allocates from; lb nil
// when none is a LoadBalancer) and reports what became of each, in
// order.
func (r *Registry) applyAll(ctx context.Context, ss []store.Service, taken claimSet, lb *lbState) ([]admin.ApplyResult, error) {
	have, err := r.listServices(ctx)
	if err != nil {
		return nil, err
	}
	// What the file asks for by value is nobody else's to pick, whichever
	// object comes first.
	for _, s := range ss {
		if s.ClusterIP.IsValid() {
			taken.vips[store.AddrName(s.ClusterIP)] = true
		}
		for _, p := range s.Ports {
			if p.NodePort != 0 {
				taken.nodePorts[strconv.Itoa(int(p.NodePort))] = true
			}
		}
		if s.HealthCheckNodePort != 0 {
			taken.nodePorts[strconv.Itoa(int(s.HealthCheckNodePort))] = true
		}
		if s.LoadBalancerIP.IsValid() && lb != nil {
			if _, ok := lb.claims[s.LoadBalancerIP]; !ok {
				lb.claims[s.LoadBalancerIP] = s.Name
			}
		}
	}
	plans := make([]planned, len(ss))
	for i, want := range ss {
		p := planned{idx: i, svc: want, name: want.Name}
		if old, ok := have[want.Name]; ok {
			_, p.action, p.cmps, p.ops, p.err = r.planUpdate(ctx, old.s, old.rev, want, taken, lb)
		} else {
			_, p.cmps, p.ops, p.err = r.planCreate(want, taken, lb)
			p.action = admin.ActionCreated
		}
		plans[i] = p
	}
	out := make([]admin.ApplyResult, len(ss))
	var write []planned
	for _, p := range plans {
		out[p.idx] = admin.ApplyResult{Name: p.name, Action: p.action}
		switch {
		case p.err != nil:
			out[p.idx] = admin.ApplyResult{Name: p.name, Error: p.err.Error()}
		case len(p.ops) > 0: // else unchanged
			write = append(write, p)
		}
	}
	inParallel(chunks(write), func(batch []planned) { r.writeBatch(ctx, batch, out) })
	return out, nil
}

// chunks splits plans into transactions of whole objects within txnOps
// conditions and txnOps writes.
func chunks(plans []planned) [][]planned {
	var out [][]planned
	var cur []planned
	nc, no := 0, 0
	for _, p := range plans {
		if len(cur) > 0 && (nc+len(p.cmps) > txnOps || no+len(p.ops) > txnOps) {
			out, cur, nc, no = append(out, cur), nil, 0, 0
		}
		cur = append(cur, p)
		nc, no = nc+len(p.cmps), no+len(p.ops)
	}
	if len(cur) > 0 {
		out = append(out, cur)
	}
	return out
}

// inParallel runs fn on every batch, txnsInFlight at a time. Each batch
// writes its own objects' results.
func inParallel(batches [][]planned, fn func([]planned)) {
	sem := make(chan struct{}, txnsInFlight)
	var wg sync.WaitGroup
	for _, b := range batches {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			fn(b)
		})
	}
	wg.Wait()
}

// writeBatch writes plans in one transaction; when its conditions fail,
// each object goes on its own (apply: re-read, re-plan, retry).
func (r *Registry) writeBatch(ctx context.Context, plans []planned, out []admin.ApplyResult) {
	if len(plans) == 0 {
		return
	}
	var cmps []store.Cmp
	var ops []store.Op
	for _, p := range plans {
		cmps, ops = append(cmps, p.cmps...), append(ops, p.ops...)
	}
	ok, _, err := r.st.Txn(ctx, cmps, ops)
	if err == nil && ok {
		r.log.Info("services written", "services", len(plans))
		return
	}
	if err != nil {
		for _, p := range plans {
			out[p.idx] = admin.ApplyResult{Name: p.name, Error: fmt.Sprintf("apply service %s: %v", p.name, err)}
		}
		return
	}
	r.log.Info("services changed concurrently; applying them one by one", "services", len(plans))
	for _, p := range plans {
		action, err := r.apply(ctx, p.svc)
		out[p.idx] = admin.ApplyResult{Name: p.name, Action: action}
		if err != nil {
			out[p.idx] = admin.ApplyResult{Name: p.name, Error: err.Error()}
		}
	}
}

// deleteAll removes the services named, batched as applyAll writes: each
// conditioned on the record as listed, with its claims; absent ones are
// "not found".
func (r *Registry) deleteAll(ctx context.Context, names []string) ([]admin.ApplyResult, error) {
	have, err := r.listServices(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]admin.ApplyResult, len(names))
	var remove []planned
	for i, name := range names {
		out[i] = admin.ApplyResult{Name: name, Action: admin.ActionNotFound}
		old, ok := have[name]
		if !ok {
			continue
		}
		p := planned{idx: i, name: name, action: admin.ActionDeleted,
			cmps: []store.Cmp{store.ModRevIs(store.ServiceKey(name), old.rev)},
			ops:  []store.Op{store.Delete(store.ServiceKey(name))}}
		for _, k := range claims(old.s) {
			p.ops = append(p.ops, store.Delete(k))
		}
		remove = append(remove, p)
		delete(have, name) // a name given twice is deleted once
	}
	inParallel(chunks(remove), func(batch []planned) { r.removeBatch(ctx, batch, out) })
	return out, nil
}

// removeBatch deletes plans in one transaction; when a record changed
// since it was listed, each goes on its own (Remove).
func (r *Registry) removeBatch(ctx context.Context, plans []planned, out []admin.ApplyResult) {
	if len(plans) == 0 {
		return
	}
	var cmps []store.Cmp
	var ops []store.Op
	for _, p := range plans {
		out[p.idx].Action = admin.ActionDeleted
		cmps, ops = append(cmps, p.cmps...), append(ops, p.ops...)
	}
	ok, _, err := r.st.Txn(ctx, cmps, ops)
	if err == nil && ok {
		r.log.Info("services removed", "services", len(plans))
		return
	}
	for _, p := range plans {
		if err != nil {
			out[p.idx] = admin.ApplyResult{Name: p.name, Error: fmt.Sprintf("remove service %s: %v", p.name, err)}
			continue
		}
		found, rerr := r.Remove(ctx, p.name)
		switch {
		case rerr != nil:
			out[p.idx] = admin.ApplyResult{Name: p.name, Error: rerr.Error()}
		case !found:
			out[p.idx].Action = admin.ActionNotFound
		}
	}
}

// serviceRecord is a service as listed, with the revision its write is
// conditioned on.
type serviceRecord struct {
	s   store.Service
	rev int64
}

// listServices reads every service record once, by name, for a file's
// batch (records that do not decode are left to the per-object paths).
func (r *Registry) listServices(ctx context.Context) (map[string]serviceRecord, error) {
	kvs, _, err := r.st.List(ctx, store.ServicesPrefix)
	if err != nil {
		return nil, fmt.Errorf("list services: %w", err)
	}
	have := make(map[string]serviceRecord, len(kvs))
	for _, kv := range kvs {
		var s store.Service
		if kv.Decode(&s) == nil {
			have[s.Name] = serviceRecord{s, kv.ModRev}
		}
	}
	return have, nil
}
