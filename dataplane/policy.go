package dataplane

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"slices"

	"github.com/google/nftables"
)

// polState is the engine's network policy state. Guarded by Engine.mu.
type polState struct {
	// known is set by the first SetPolicy: from then on memory is the
	// truth for the policy section and a Sync rewrites it. Before that (a
	// restarted podnetd), the kernel keeps the previous podnetd's rules
	// untouched, and only the skeleton is created if it is missing.
	known bool
	sec   policySection
	ctr   *policyCounters
}

var groupIDRE = regexp.MustCompile(`^[a-z0-9][-a-z0-9]{0,63}$`)

// validatePolicy refuses what would make a batch fail as a whole: groups
// or sets that endpoints and rules name but p does not hold, ranges of
// mixed families.
func validatePolicy(p *Policy) error {
	groups := map[string]bool{}
	for _, g := range p.Groups {
		if !groupIDRE.MatchString(g.ID) || g.ID == PolicyPending {
			return fmt.Errorf("policy group ID %q: want lower case letters, digits and '-'", g.ID)
		}
		if groups[g.ID] {
			return fmt.Errorf("policy group %s given twice", g.ID)
		}
		groups[g.ID] = true
		for _, r := range g.Rules {
			for _, id := range r.Peers {
				_, a := p.AddrSets[id]
				_, b := p.RangeSets[id]
				if !a && !b {
					return fmt.Errorf("policy group %s names peer set %s, which is not given", g.ID, id)
				}
			}
			for _, pp := range r.Ports {
				if protoNumber(pp.Proto) == 0 || pp.First > pp.Last {
					return fmt.Errorf("policy group %s: bad ports %s %d-%d", g.ID, pp.Proto, pp.First, pp.Last)
				}
			}
		}
	}
	for _, ep := range p.Endpoints {
		for _, id := range []string{ep.Ingress, ep.Egress} {
			if id != "" && id != PolicyPending && !groups[id] {
				return fmt.Errorf("endpoint %v: policy group %s is not given", ep.Addrs, id)
			}
		}
	}
	for id, rs := range p.RangeSets {
		for i, r := range rs {
			if !r.First.IsValid() || r.First.Is4() != r.Last.Is4() || r.Last.Less(r.First) ||
				(i > 0 && (r.First.Is4() != rs[0].First.Is4() || !rs[i-1].Last.Less(r.First))) {
				return fmt.Errorf("range set %s: ranges must be of one family, sorted and disjoint", id)
			}
		}
	}
	return nil
}

// SetPolicy makes the network policy section match p (see "Network
// policy" in the package doc). The first call after a start rewrites the
// section in one batch (until then the previous podnetd's rules stay in
// place); later calls program only the difference, in one transaction:
// elements of the dispatch maps and peer sets, the group chains that
// changed, counters of policies that came or went. Conntrack is left
// alone, so established connections keep flowing.
func (e *Engine) SetPolicy(ctx context.Context, p Policy) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := validatePolicy(&p); err != nil {
		return fmt.Errorf("set policy: %w", err)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	ctr := countersFor(p.Policies, e.pol.ctr)
	next := buildPolicySection(&p, ctr)
	if e.pol.known {
		d := policyDelta(e.pol.sec, next)
		e.forgetWritten()
		_, err := e.nft.applyDelta(e.opts.Table, d)
		if err == nil {
			e.pol.sec, e.pol.ctr = next, ctr
			return nil
		}
		e.log.Info("incremental policy update failed, rewriting the section", "err", err)
	}
	prev := e.pol
	e.pol = polState{known: true, sec: next, ctr: ctr}
	if _, err := e.syncSectionsLocked(false, true); err != nil {
		e.pol = prev
		return fmt.Errorf("set policy: %w", err)
	}
	return nil
}

// policyDelta is the change from old to new in one batch: sets and chains
// that appear or go, chains whose rules changed (flushed and refilled),
// elements added and deleted, counters of policies that came or went.
func policyDelta(old, new policySection) *tableDelta {
	d := &tableDelta{}
	diffOwnSets(d, old.sets, new.sets)
	diffOwnChains(d, old.chains, old.rules, new.chains, new.rules)
	fresh := map[string]bool{}
	for _, s := range d.addSets {
		fresh[s.name] = true
	}
	gone := map[string]bool{}
	for _, n := range d.delSets {
		gone[n] = true
	}
	var oldElems, newElems []element
	for _, s := range old.sets {
		if !gone[s.name] {
			oldElems = append(oldElems, s.elems...)
		}
	}
	for _, s := range new.sets {
		if fresh[s.name] {
			d.addElems = append(d.addElems, s.elems...)
		} else {
			newElems = append(newElems, s.elems...)
		}
	}
	del, add := diffElements(oldElems, newElems)
	d.delElems = append(d.delElems, del...)
	d.addElems = append(d.addElems, add...)
	if slices.Equal(old.counters, new.counters) {
		return d
	}
	had, has := setOf(old.counters), setOf(new.counters)
	for _, c := range new.counters {
		if !had[c] {
			d.addCounters = append(d.addCounters, c)
		}
	}
	for _, c := range old.counters {
		if !has[c] {
			d.delCounters = append(d.delCounters, c)
		}
	}
	return d
}

// PolicyDenied is one denied-packet count: packets a policy's group
// dropped in one direction (Policy empty: endpoints still pending).
type PolicyDenied struct {
	Policy  string
	Egress  bool
	Packets uint64
}

// PolicyDenials reads the denied-packet counters of the policies the last
// SetPolicy named (and of pending endpoints): what the kernel counted,
// which survives podnetd restarts.
func (e *Engine) PolicyDenials() ([]PolicyDenied, error) {
	e.mu.Lock()
	ctr := e.pol.ctr
	e.mu.Unlock()
	if ctr == nil {
		return nil, nil
	}
	got, err := e.nft.counters(e.opts.Table)
	if err != nil {
		return nil, err
	}
	var out []PolicyDenied
	for name, c := range ctr.byName {
		if n, ok := got[name]; ok {
			out = append(out, PolicyDenied{Policy: c.policy, Egress: c.egress, Packets: n})
		}
	}
	return out, nil
}

// counters reads the named counters of the table (packets).
func (netlinkNFT) counters(table string) (map[string]uint64, error) {
	c, err := nftables.New()
	if err != nil {
		return nil, fmt.Errorf("nftables connection: %w", err)
	}
	objs, err := c.GetObjects(inetTable(table))
	if err != nil {
		return nil, fmt.Errorf("list counters of inet %s: %w", table, err)
	}
	out := map[string]uint64{}
	for _, o := range objs {
		if co, ok := o.(*nftables.CounterObj); ok {
			out[co.Name] = co.Packets
		}
	}
	return out, nil
}

// ErrPolicySet: IsolatePending after the first SetPolicy, which owns the
// section from then on.
var ErrPolicySet = errors.New("policy already set: give the endpoint to SetPolicy")

// IsolatePending isolates new endpoints in both directions before the
// first SetPolicy (a restarted podnetd whose policy agent has not synced
// yet): their addresses go into the kernel's dispatch maps, pointing at
// the pending chains, whatever the previous podnetd left there. It is
// what lets the driver keep "isolated before it runs" at every moment.
func (e *Engine) IsolatePending(ctx context.Context, addrs []netip.Addr) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.pol.known {
		return ErrPolicySet
	}
	if !e.tableLoaded {
		// The skeleton (maps, pending chains) exists from the first sync on.
		if _, err := e.syncSectionsLocked(false, false); err != nil {
			return fmt.Errorf("isolate %v: %w", addrs, err)
		}
	}
	var add []element
	for _, a := range addrs {
		a = a.Unmap()
		f := familyOf(a)
		add = append(add, dispatchVerdictElement(polMap(f, false), a, chainPolPendingIn, false),
			dispatchVerdictElement(polMap(f, true), a, chainPolPendingOut, true))
	}
	if err := e.nft.updateElements(e.opts.Table, nil, add); err == nil {
		return nil
	}
	// An address the previous podnetd left in the maps (its endpoint went
	// while nobody could clean up): replace it. The delete fails the
	// batch when an element is absent, so delete only what is there.
	present, err := e.nft.mapKeys(e.opts.Table, add)
	if err != nil {
		return fmt.Errorf("isolate %v: %w", addrs, err)
	}
	if err := e.nft.updateElements(e.opts.Table, present, add); err != nil {
		return fmt.Errorf("isolate %v: %w", addrs, err)
	}
	return nil
}

func setOf(ss []string) map[string]bool {
	out := make(map[string]bool, len(ss))
	for _, s := range ss {
		out[s] = true
	}
	return out
}
