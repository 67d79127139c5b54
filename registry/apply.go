package registry

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/podnet/podnet/admin"
	"github.com/podnet/podnet/internal/fault"
	"github.com/podnet/podnet/store"
)

// ApplyFile creates or updates every object of a YAML or JSON file
// (services, network policies, load-balancer pools, BGP peers), like
// kubectl apply: each
// object is reported created, configured or unchanged. The whole file is
// parsed and validated first, and checked against what the cluster holds
// (VIPs, NodePorts and load-balancer addresses of other services, other
// pools, podnet pools, hosts), so a bad file changes nothing. Pools and
// peers are written before services, so a service may take its address
// from a pool of the same file. An error that only etcd could tell (an
// address taken by a concurrent create) fails that object alone,
// reported in its result.
func (r *Registry) ApplyFile(ctx context.Context, source string, content []byte) ([]admin.ApplyResult, error) {
	objs, err := ParseFile(source, content)
	if err != nil {
		return nil, err
	}
	var svcs []store.Service
	var pools []store.LBPool
	var peers []store.BGPPeer
	var pols []store.NetworkPolicy
	for _, o := range objs {
		switch o.Kind {
		case admin.KindNetworkPolicy:
			p, err := ValidatePolicy(o.Policy)
			if err != nil {
				return nil, inputf("%s: line %d: %v", source, o.Line, err)
			}
			pols = append(pols, p)
		case admin.KindLoadBalancerPool:
			p, err := ValidatePool(o.Pool)
			if err != nil {
				return nil, inputf("%s: line %d: %v", source, o.Line, err)
			}
			pools = append(pools, p)
		case admin.KindBGPPeer:
			p, err := ValidatePeer(o.Peer)
			if err != nil {
				return nil, inputf("%s: line %d: %v", source, o.Line, err)
			}
			peers = append(peers, p)
		default:
			s, err := r.svcRange.ValidateService(o.Service)
			if err != nil {
				return nil, inputf("%s: line %d: %v", source, o.Line, err)
			}
			svcs = append(svcs, s)
		}
	}
	if err := r.probe(ctx); err != nil {
		return nil, err
	}
	lb, err := r.loadLB(ctx)
	if err != nil {
		return nil, err
	}
	if err := r.checkPools(ctx, lb, pools); err != nil {
		return nil, err
	}
	if err := r.checkPeers(ctx, lb, peers); err != nil {
		return nil, err
	}
	lb = lb.with(pools)
	if err := r.checkAgainstCluster(ctx, lb, svcs); err != nil {
		return nil, err
	}
	taken, err := r.checkClaims(ctx, svcs)
	if err != nil {
		return nil, err
	}
	results := map[string]admin.ApplyResult{}
	record := func(kind, name, action string, err error) {
		res := admin.ApplyResult{Kind: kind, Name: name, Action: action}
		if err != nil {
			res.Error = err.Error()
		}
		results[kind+"/"+name] = res
	}
	for _, p := range pools {
		action, err := r.applyPool(ctx, p)
		record(admin.KindLoadBalancerPool, p.Name, action, err)
	}
	for _, p := range peers {
		action, err := r.applyPeer(ctx, p)
		record(admin.KindBGPPeer, p.Name, action, err)
	}
	if len(svcs) > 0 {
		// The pools and peers above are written: the addresses are
		// allocated against them, as they now are.
		lbNow, err := r.loadLBFor(ctx, svcs)
		if err != nil {
			return nil, err
		}
		res, err := r.applyAll(ctx, svcs, taken, lbNow)
		if err != nil {
			return nil, err
		}
		for i, s := range svcs {
			record(admin.KindService, s.Name, res[i].Action, nil)
			if res[i].Error != "" {
				results[admin.KindService+"/"+s.Name] = res[i]
			}
		}
	}
	for _, p := range pols {
		action, err := r.applyPolicy(ctx, p)
		record(admin.KindNetworkPolicy, p.Name, action, err)
	}
	out := make([]admin.ApplyResult, 0, len(objs))
	for _, o := range objs {
		out = append(out, results[o.Kind+"/"+o.Name()])
	}
	return out, nil
}

// checkClaims refuses, before anything is written, VIPs, load-balancer
// addresses and NodePorts that another service holds or that two services
// of the file both ask for. It returns the VIPs and NodePorts it listed,
// to allocate from.
func (r *Registry) checkClaims(ctx context.Context, ss []store.Service) (claimSet, error) {
	owners := map[string]string{}
	taken := claimSet{vips: map[string]bool{}, nodePorts: map[string]bool{}}
	for _, prefix := range []string{store.ServiceIPsPrefix, store.LBIPsPrefix, store.NodePortsPrefix, store.ExternalIPsPrefix} {
		kvs, _, err := r.st.List(ctx, prefix)
		if err != nil {
			return taken, fmt.Errorf("list %s: %w", prefix, err)
		}
		for _, kv := range kvs {
			switch prefix {
			case store.ServiceIPsPrefix:
				taken.vips[strings.TrimPrefix(kv.Key, prefix)] = true
			case store.NodePortsPrefix:
				taken.nodePorts[strings.TrimPrefix(kv.Key, prefix)] = true
			}
			var c store.NodePortClaim // every claim is {"service": name}
			if kv.Decode(&c) == nil {
				owners[kv.Key] = c.Service
			}
		}
	}
	asked := map[string]string{}
	for _, s := range ss {
		for _, k := range claims(s) {
			what := claimWhat(s, k)
			if o, ok := owners[k]; ok && o != s.Name {
				return taken, inputf("service %s: %s is taken by service %s", s.Name, what, o)
			}
			if o, ok := asked[k]; ok && o != s.Name {
				return taken, inputf("services %s and %s both ask for %s", o, s.Name, what)
			}
			asked[k] = s.Name
		}
	}
	return taken, nil
}

// loadLBFor reads the load-balancer state when one of ss is a
// LoadBalancer (nil otherwise).
func (r *Registry) loadLBFor(ctx context.Context, ss []store.Service) (*lbState, error) {
	for _, s := range ss {
		if s.Type == store.ServiceTypeLoadBalancer {
			return r.loadLB(ctx)
		}
	}
	return nil, nil
}

// apply creates want, or updates the service of that name in place.
func (r *Registry) apply(ctx context.Context, want store.Service) (string, error) {
	for range maxTxnAttempts {
		var old store.Service
		rev, err := r.st.Get(ctx, store.ServiceKey(want.Name), &old)
		if errors.Is(err, store.ErrNotFound) {
			_, err := r.create(ctx, want)
			if errors.Is(err, fault.ErrInvalid) && r.exists(ctx, want.Name) {
				continue // created concurrently: update it instead
			}
			if err != nil {
				return "", err
			}
			return admin.ActionCreated, nil
		}
		if err != nil {
			return "", fmt.Errorf("read service %s: %w", want.Name, err)
		}
		action, done, err := r.update(ctx, old, rev, want)
		if err != nil || done {
			return action, err
		}
	}
	return "", fmt.Errorf("apply service %s: it keeps changing concurrently; retry", want.Name)
}

func (r *Registry) exists(ctx context.Context, name string) bool {
	_, err := r.st.Get(ctx, store.ServiceKey(name), nil)
	return err == nil
}

// update changes old (at revision rev) into want. The VIP is immutable
// (as in Kubernetes): left out, it is kept; so are the load-balancer
// address and the NodePorts left out (for the same port and protocol).
// done is false when old changed meanwhile (retry).
func (r *Registry) update(ctx context.Context, old store.Service, rev int64, want store.Service) (string, bool, error) {
	taken, lb, err := r.listClaims(ctx, []store.Service{want})
	if err != nil {
		return "", true, err
	}
	want, action, cmps, ops, err := r.planUpdate(ctx, old, rev, want, taken, lb)
	if err != nil || action == admin.ActionUnchanged {
		return action, true, err
	}
	ok, _, err := r.st.Txn(ctx, cmps, ops)
	if err != nil {
		return "", true, fmt.Errorf("update service %s: %w", want.Name, err)
	}
	if ok {
		r.logUpdated(want)
		return admin.ActionConfigured, true, nil
	}
	if err := r.whyTaken(ctx, want, false); err != nil {
		return "", true, err
	}
	return "", false, nil
}

// planUpdate is the record old (at revision rev) becomes and the
// transaction that writes it: conditioned on the record's revision (and
// a new load-balancer address's pool as read) and on the claims it adds
// being absent, it writes the record and those claims and deletes the
// claims it gives up. Unchanged needs none.
func (r *Registry) planUpdate(ctx context.Context, old store.Service, rev int64, want store.Service, taken claimSet, lb *lbState) (store.Service, string, []store.Cmp, []store.Op, error) {
	if want.Headless != old.Headless || (want.ClusterIP.IsValid() && want.ClusterIP != old.ClusterIP) {
		return want, "", nil, nil, inputf("service %s: clusterIP cannot change (it is %s): remove the service and create it again", old.Name, SpecOf(old).ClusterIP)
	}
	want.ClusterIP = old.ClusterIP
	if want.Type == store.ServiceTypeLoadBalancer && !want.LoadBalancerIP.IsValid() {
		want.LoadBalancerIP = old.LoadBalancerIP // kept, as the VIP is
	}
	want.Ports = slices.Clone(want.Ports)
	if hasNodePorts(want.Type) {
		for i, p := range want.Ports {
			if p.NodePort != 0 {
				continue
			}
			for _, o := range old.Ports {
				if o.Port == p.Port && o.Protocol == p.Protocol && o.NodePort != 0 && !usesNodePort(want, o.NodePort, p.Protocol) {
					want.Ports[i].NodePort = o.NodePort
				}
			}
		}
	}
	if want.ExternalTrafficPolicy == store.TrafficPolicyLocal && want.HealthCheckNodePort == 0 &&
		!slices.ContainsFunc(want.Ports, func(p store.ServicePort) bool { return p.NodePort == old.HealthCheckNodePort }) {
		want.HealthCheckNodePort = old.HealthCheckNodePort
	}
	if sameSpec(old, want) {
		return want, admin.ActionUnchanged, nil, nil, nil
	}
	held := claims(old)
	poolCmps, err := r.allocateFrom(&want, taken, lb, held)
	if err != nil {
		return want, "", nil, nil, err
	}
	// A service from before external IPs were claimed holds none yet:
	// claim them now, like new ones.
	for i := 0; i < len(held); i++ {
		if k := held[i]; strings.HasPrefix(k, store.ExternalIPsPrefix) {
			if _, err := r.st.Get(ctx, k, nil); errors.Is(err, store.ErrNotFound) {
				held = slices.Delete(held, i, i+1)
				i--
			}
		}
	}
	want.Created, want.Updated = old.Created, time.Now().UTC()
	now := claims(want)
	cmps := append([]store.Cmp{store.ModRevIs(store.ServiceKey(old.Name), rev)}, poolCmps...)
	var added []string
	for _, k := range now {
		if !slices.Contains(held, k) {
			cmps = append(cmps, store.Absent(k))
			added = append(added, k)
		}
	}
	ops := append([]store.Op{store.Put(store.ServiceKey(want.Name), want)}, claimOps(want, added)...)
	for _, k := range held {
		if !slices.Contains(now, k) {
			ops = append(ops, store.Delete(k))
		}
	}
	return want, admin.ActionConfigured, cmps, ops, nil
}

func (r *Registry) logUpdated(s store.Service) {
	r.log.Info("service updated", "service", s.Name, "clusterIP", s.ClusterIP, "ports", len(s.Ports))
}

// usesNodePort reports whether s already has NodePort n for proto.
func usesNodePort(s store.Service, n uint16, proto store.Protocol) bool {
	return slices.ContainsFunc(s.Ports, func(p store.ServicePort) bool { return p.NodePort == n && p.Protocol == proto })
}

// DeleteFile removes every object a file names; absent ones are reported
// "not found", which is no error (deletes tolerate absence). Services go
// first, so a pool of the same file is free of them when its turn comes.
func (r *Registry) DeleteFile(ctx context.Context, source string, content []byte) ([]admin.ApplyResult, error) {
	objs, err := ParseFile(source, content)
	if err != nil {
		return nil, err
	}
	for _, o := range objs {
		if o.Name() == "" {
			return nil, inputf("%s: line %d: a %s without a name", source, o.Line, kindText(o.Kind))
		}
	}
	if err := r.probe(ctx); err != nil {
		return nil, err
	}
	results := map[string]admin.ApplyResult{}
	var names []string
	for _, o := range objs {
		if o.Kind == admin.KindService {
			names = append(names, o.Name())
		}
	}
	if len(names) > 0 {
		res, err := r.deleteAll(ctx, names)
		if err != nil {
			return nil, err
		}
		for _, x := range res {
			x.Kind = admin.KindService
			results[admin.KindService+"/"+x.Name] = x
		}
	}
	for _, kind := range []string{admin.KindNetworkPolicy, admin.KindLoadBalancerPool, admin.KindBGPPeer} {
		for _, o := range objs {
			if o.Kind != kind {
				continue
			}
			res := admin.ApplyResult{Kind: kind, Name: o.Name(), Action: admin.ActionNotFound}
			var found bool
			var err error
			switch kind {
			case admin.KindNetworkPolicy:
				found, err = r.RemovePolicy(ctx, o.Name())
			case admin.KindLoadBalancerPool:
				found, err = r.RemovePool(ctx, o.Name())
			case admin.KindBGPPeer:
				found, err = r.RemovePeer(ctx, o.Name())
			default:
				found, err = r.Remove(ctx, o.Name())
			}
			switch {
			case err != nil:
				res.Action, res.Error = "", err.Error()
			case found:
				res.Action = admin.ActionDeleted
			}
			results[kind+"/"+o.Name()] = res
		}
	}
	out := make([]admin.ApplyResult, 0, len(objs))
	for _, o := range objs {
		out = append(out, results[o.Kind+"/"+o.Name()])
	}
	return out, nil
}
