package catalog

import (
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/podnet/podnet/internal/index"
	"github.com/podnet/podnet/policy"
	"github.com/podnet/podnet/store"
)

// Network policies and their label selections. The catalog holds the
// policy records and, for every distinct label selector they use (a
// policy's podSelector, its peers' podSelectors), a selection: the
// containers it selects, found through the same label-term index
// services use (byLabel), never by scanning every container. A container
// change marks dirty only the selections whose anchor (policy.Anchor)
// its old or new labels carry, plus those without one; the policy agent
// takes the dirty ones with their addresses (TakePolicyDelta).

// selection is one registered selector.
type selection struct {
	sel  store.LabelSelector
	refs int // policies using it
}

// PolicyDelta is what changed for policies since the last
// TakePolicyDelta.
type PolicyDelta struct {
	// Full says Selections holds every selection (the first delta, after
	// a listing, or when asked): the reader drops the ones it has that
	// are not there.
	Full bool
	// Policies is every policy when any changed (nil when none did).
	Policies []store.NetworkPolicy
	// Selections maps each changed selection (by policy.Key) to the
	// addresses of the containers it selects on every host; nil when it
	// is gone.
	Selections map[string][]netip.Addr
	// Since is the write time of the oldest change taken (zero when
	// unknown).
	Since time.Time
}

func (c *Catalog) applyPolicy(kv store.KV, deleted bool) {
	name := strings.TrimPrefix(kv.Key, store.PoliciesPrefix)
	var p *store.NetworkPolicy
	if !deleted {
		p = &store.NetworkPolicy{}
		if err := kv.Decode(p); err != nil || p.Name != name {
			c.log.Warn("network policy record ignored", "key", kv.Key, "err", err)
			p = nil
		}
	}
	if old := c.policies[name]; old != nil {
		for _, s := range policy.Selectors(*old) {
			c.unselect(s)
		}
		delete(c.policies, name)
	}
	var at time.Time
	if p != nil {
		c.policies[name] = p
		for _, s := range policy.Selectors(*p) {
			c.selectBy(s)
		}
		at = p.Updated
	}
	c.polChanged = true
	c.markPolicyDirty(at)
}

// selectBy registers one more use of sel.
func (c *Catalog) selectBy(sel store.LabelSelector) {
	key := policy.Key(sel)
	if s := c.sels[key]; s != nil {
		s.refs++
		return
	}
	c.sels[key] = &selection{sel: sel, refs: 1}
	c.selectorsChanged()
	a := policy.AnchorOf(sel)
	switch {
	case a.Universal:
		c.selAll[key] = struct{}{}
	case a.Key != "":
		index.Add(c.selByKey, a.Key, key)
	default:
		for _, t := range a.Terms {
			index.Add(c.selByTerm, t, key)
		}
	}
	c.selDirty[key] = struct{}{}
}

// unselect drops one use of sel, and the selection with its last.
func (c *Catalog) unselect(sel store.LabelSelector) {
	key := policy.Key(sel)
	s := c.sels[key]
	if s == nil {
		return
	}
	if s.refs--; s.refs > 0 {
		return
	}
	delete(c.sels, key)
	c.selectorsChanged()
	a := policy.AnchorOf(sel)
	delete(c.selAll, key)
	index.Remove(c.selByKey, a.Key, key)
	for _, t := range a.Terms {
		index.Remove(c.selByTerm, t, key)
	}
	c.selDirty[key] = struct{}{}
}

// touchSelections marks dirty the selections a container with labels may
// have entered or left.
func (c *Catalog) touchSelections(labels map[string]string, at time.Time) {
	if len(c.sels) == 0 {
		return
	}
	n := len(c.selDirty)
	for key := range c.selAll {
		c.selDirty[key] = struct{}{}
	}
	for k, v := range labels {
		for key := range c.selByTerm[policy.Term(k, v)] {
			c.selDirty[key] = struct{}{}
		}
		for key := range c.selByKey[k] {
			c.selDirty[key] = struct{}{}
		}
	}
	if len(c.selDirty) > n {
		c.markPolicyDirty(at)
	}
}

func (c *Catalog) markPolicyDirty(at time.Time) {
	if !at.IsZero() && (c.polSince.IsZero() || at.Before(c.polSince)) {
		c.polSince = at
	}
	select {
	case c.polSignal <- struct{}{}:
	default:
	}
}

// PolicyChanged is signalled (coalesced) when policies or the containers
// their selectors select may have changed.
func (c *Catalog) PolicyChanged() <-chan struct{} { return c.polSignal }

// TakePolicyDelta returns what changed for policies since the last call
// (everything when full, or after a listing) and forgets it.
func (c *Catalog) TakePolicyDelta(full bool) PolicyDelta {
	c.mu.Lock()
	defer c.mu.Unlock()
	d := PolicyDelta{Full: full || c.polAll, Selections: map[string][]netip.Addr{}, Since: c.polSince}
	if d.Full || c.polChanged {
		d.Policies = make([]store.NetworkPolicy, 0, len(c.policies))
		for _, p := range c.policies {
			d.Policies = append(d.Policies, *p)
		}
	}
	keys := c.selDirty
	if d.Full {
		keys = map[string]struct{}{}
		for k := range c.sels {
			keys[k] = struct{}{}
		}
	}
	for k := range keys {
		if s := c.sels[k]; s != nil {
			d.Selections[k] = c.selectionAddrsLocked(s.sel)
		} else {
			d.Selections[k] = nil
		}
	}
	c.selDirty, c.polChanged, c.polAll, c.polSince = map[string]struct{}{}, false, false, time.Time{}
	return d
}

// PoliciesLoaded reports whether the policies and the containers have
// been read from etcd once (the agent must not program a partial view).
func (c *Catalog) PoliciesLoaded() bool {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.loaded[store.PoliciesPrefix] && c.loaded[store.SelectedEndpoints] && c.loaded[store.SelectedContainers] &&
		c.loaded[store.EndpointMetaPrefix(c.self)] && c.loaded[store.ContainerMetaPrefix(c.self)] && c.legacyLoadedLocked()
}

// selectionAddrsLocked is every address of the containers sel selects:
// containers on podnet networks, on any host, at each of their
// addresses. A --net container:X container is X as far as policies go
// (it has no address of its own), and a --net host one is its host.
func (c *Catalog) selectionAddrsLocked(sel store.LabelSelector) []netip.Addr {
	var out []netip.Addr
	for _, m := range c.policyMembersLocked(sel) {
		for _, e := range m.eps {
			for _, x := range e.addrs {
				if x.IsValid() {
					out = append(out, x)
				}
			}
		}
	}
	slices.SortFunc(out, netip.Addr.Compare)
	return slices.Compact(out)
}

// policyMembersLocked returns the containers sel selects, from the
// smallest index its anchor allows (every container only for a selector
// without one), by host then name.
func (c *Catalog) policyMembersLocked(sel store.LabelSelector) []*member {
	var cands []ctrKey
	a := policy.AnchorOf(sel)
	switch {
	case a.Universal:
		for k := range c.members {
			cands = append(cands, k)
		}
	case a.Key != "":
		for t, set := range c.byLabel {
			if k, _, _ := strings.Cut(t, "="); k == a.Key {
				for m := range set {
					cands = append(cands, m)
				}
			}
		}
	default:
		for _, t := range a.Terms {
			for m := range c.byLabel[t] {
				cands = append(cands, m)
			}
		}
	}
	var out []*member
	for _, k := range cands {
		if m := c.members[k]; m != nil && policy.Matches(sel, m.labels) {
			out = append(out, m)
		}
	}
	slices.SortFunc(out, func(x, y *member) int {
		return strings.Compare(x.key.host+"/"+x.name+"/"+x.key.id, y.key.host+"/"+y.name+"/"+y.key.id)
	})
	return slices.CompactFunc(out, func(x, y *member) bool { return x == y })
}

// Policies returns every policy, by name.
func (c *Catalog) Policies() []store.NetworkPolicy {
	c.mu.RLock()
	defer c.mu.RUnlock()
	out := make([]store.NetworkPolicy, 0, len(c.policies))
	for _, p := range c.policies {
		out = append(out, *p)
	}
	slices.SortFunc(out, func(a, b store.NetworkPolicy) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// SelectionAddrs returns the addresses sel selects (a one-shot catalog's
// answer for `policy check`).
func (c *Catalog) SelectionAddrs(sel store.LabelSelector) []netip.Addr {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.selectionAddrsLocked(sel)
}

// PolicyMember is one container a selector selects, for views.
type PolicyMember struct {
	Host, ID, Name string
	// Mode is network (its own addresses on podnet networks), host or
	// container (--net container:X: Parent is X).
	Mode   string
	Parent string
	Labels map[string]string
	// Endpoints are its endpoints (network mode): endpoint ID → network
	// ID and addresses.
	Endpoints map[string]PolicyEndpoint
}

// PolicyEndpoint is one endpoint of a PolicyMember.
type PolicyEndpoint struct {
	Network string
	Addrs   []netip.Addr
}

// SelectedMembers returns the containers sel selects, by host then name.
func (c *Catalog) SelectedMembers(sel store.LabelSelector) []PolicyMember {
	c.mu.RLock()
	defer c.mu.RUnlock()
	var out []PolicyMember
	for _, m := range c.policyMembersLocked(sel) {
		out = append(out, c.viewLocked(m))
	}
	return out
}

// MemberByAddr finds the container reached at address a (its own
// address on a podnet network), for `policy check`.
func (c *Catalog) MemberByAddr(a netip.Addr) (PolicyMember, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	a = a.Unmap()
	for _, m := range c.members {
		for _, e := range m.eps {
			if e.addrs[0] == a || e.addrs[1] == a {
				return c.viewLocked(m), true
			}
		}
	}
	return PolicyMember{}, false
}

// MemberByName finds containers by name or ID prefix (at least 12 hex
// digits), on any host.
func (c *Catalog) MemberByName(name string) []PolicyMember {
	c.mu.RLock()
	defer c.mu.RUnlock()
	var out []PolicyMember
	for _, m := range c.members {
		if m.name == name || (len(name) >= 12 && strings.HasPrefix(m.key.id, name)) {
			out = append(out, c.viewLocked(m))
		}
	}
	slices.SortFunc(out, func(x, y PolicyMember) int { return strings.Compare(x.Host+x.ID, y.Host+y.ID) })
	return out
}

func (c *Catalog) viewLocked(m *member) PolicyMember {
	pm := PolicyMember{Host: m.key.host, ID: m.key.id, Name: m.name, Mode: m.mode, Parent: m.parent, Labels: m.labels}
	for _, me := range m.eps {
		key, a := me.key, me.addrs
		_, ep, _ := store.SplitHostKey(key, store.EndpointMetaPrefix(""))
		if pm.Endpoints == nil {
			pm.Endpoints = map[string]PolicyEndpoint{}
		}
		e := PolicyEndpoint{Network: c.epmeta[key].Network}
		for _, x := range a {
			if x.IsValid() {
				e.Addrs = append(e.Addrs, x)
			}
		}
		pm.Endpoints[ep] = e
	}
	return pm
}

// Underlay returns host's underlay address.
func (c *Catalog) Underlay(host string) (netip.Addr, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	a, ok := c.underlay[host]
	return a, ok
}

// EndpointMeta returns the metadata record of endpoint ep of host (the
// policy agent's source of a local container's labels after a restart).
func (c *Catalog) EndpointMeta(host, ep string) (store.EndpointMeta, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	m, ok := c.epmeta[store.EndpointMetaKey(host, ep)]
	return m, ok
}
