package registry

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/podnet/podnet/admin"
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
	if err := r.checkClaims(ctx, svcs); err != nil {
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
	for _, s := range svcs {
		action, err := r.apply(ctx, s)
		record(admin.KindService, s.Name, action, err)
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

// checkClaims refuses, before anything is written, VIPs and NodePorts
// that another service holds or that two services of the file both ask
// for.
func (r *Registry) checkClaims(ctx context.Context, ss []store.Service) error {
	owners := map[string]string{}
	for _, prefix := range []string{store.ServiceIPsPrefix, store.LBIPsPrefix, store.NodePortsPrefix, store.ExternalIPsPrefix} {
		kvs, _, err := r.st.List(ctx, prefix)
		if err != nil {
			return fmt.Errorf("list %s: %w", prefix, err)
		}
		for _, kv := range kvs {
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
				return inputf("service %s: %s is taken by service %s", s.Name, what, o)
			}
			if o, ok := asked[k]; ok && o != s.Name {
				return inputf("services %s and %s both ask for %s", o, s.Name, what)
			}
			asked[k] = s.Name
		}
	}
	return nil
}

// apply creates want, or updates the service of that name in place.
func (r *Registry) apply(ctx context.Context, want store.Service) (string, error) {
	for range maxTxnAttempts {
		var old store.Service
		rev, err := r.st.Get(ctx, store.ServiceKey(want.Name), &old)
		if errors.Is(err, store.ErrNotFound) {
			_, err := r.create(ctx, want)
			if errors.Is(err, ErrInvalid) && r.exists(ctx, want.Name) {
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
// (as in Kubernetes): left out, it is kept; NodePorts left out are kept
// for the same port and protocol. done is false when old changed
// meanwhile (retry).
func (r *Registry) update(ctx context.Context, old store.Service, rev int64, want store.Service) (string, bool, error) {
	switch {
	case want.Headless != old.Headless || (want.ClusterIP.IsValid() && want.ClusterIP != old.ClusterIP):
		return "", true, inputf("service %s: clusterIP cannot change (it is %s): remove the service and create it again", old.Name, SpecOf(old).ClusterIP)
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
	if sameSpec(old, want) {
		return admin.ActionUnchanged, true, nil
	}
	held := claims(old)
	poolCmps, err := r.allocate(ctx, &want, held)
	if err != nil {
		return "", true, err
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
	ok, _, err := r.st.Txn(ctx, cmps, ops)
	if err != nil {
		return "", true, fmt.Errorf("update service %s: %w", want.Name, err)
	}
	if ok {
		r.log.Info("service updated", "service", want.Name, "clusterIP", want.ClusterIP, "ports", len(want.Ports))
		return admin.ActionConfigured, true, nil
	}
	if err := r.whyTaken(ctx, want, false); err != nil {
		return "", true, err
	}
	return "", false, nil
}

// usesNodePort reports whether s already has NodePort n for proto.
func usesNodePort(s store.Service, n uint16, proto string) bool {
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
	results := map[string]admin.ApplyResult{}
	for _, kind := range []string{admin.KindService, admin.KindNetworkPolicy, admin.KindLoadBalancerPool, admin.KindBGPPeer} {
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
