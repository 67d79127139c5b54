package netpol

import (
	"context"
	"maps"
	"net/netip"
	"slices"
	"time"

	"github.com/podnet/podnet/admin"
	"github.com/podnet/podnet/dataplane"
	"github.com/podnet/podnet/internal/dockerid"
	"github.com/podnet/podnet/internal/metrics"
	"github.com/podnet/podnet/policy"
	"github.com/podnet/podnet/store"
)

// A pass: the model of this host's endpoints, compiled and handed to the
// data plane, and what the agent reports of it.

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
