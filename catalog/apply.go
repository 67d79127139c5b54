package catalog

import (
	"maps"
	"net/netip"
	"strings"
	"time"

	"github.com/podnet/podnet/internal/index"
	"github.com/podnet/podnet/store"
)

// Records into the view: every snapshot and event of a followed prefix
// goes through applyLocked, which keeps the indexes and marks dirty the
// services the record can affect.

// snapshot replaces everything under prefix.
func (c *Catalog) snapshot(prefix string, kvs []store.KV) {
	c.mu.Lock()
	present := map[string]bool{}
	for _, kv := range kvs {
		present[kv.Key] = true
		c.applyLocked(prefix, kv, false)
	}
	for _, k := range c.keysLocked(prefix) {
		if !present[k] {
			c.applyLocked(prefix, store.KV{Key: k}, true)
		}
	}
	c.loaded[prefix] = true
	if prefix == store.ServicesPrefix || prefix == store.PoliciesPrefix {
		c.selectorsChanged() // Selects answers from the records now
	}
	c.all = true
	c.polAll = true
	c.markPolicyDirty(time.Time{})
	c.mu.Unlock()
	c.signal()
}

// keysLocked lists the keys the catalog holds under prefix.
func (c *Catalog) keysLocked(prefix string) []string {
	var out []string
	switch prefix {
	case store.ServicesPrefix:
		for n := range c.services {
			out = append(out, store.ServiceKey(n))
		}
	case store.AlivePrefix:
		for h := range c.alive {
			out = append(out, store.AliveKey(h))
		}
	case store.HostsPrefix:
		for h := range c.underlay {
			out = append(out, store.HostKey(h))
		}
	case store.PoliciesPrefix:
		for n := range c.policies {
			out = append(out, store.PolicyKey(n))
		}
	case store.NetworksPrefix(""):
		for k := range c.nets {
			host, id, _ := strings.Cut(k, "/")
			out = append(out, store.NetworkKey(host, id))
		}
	default:
		if isMetaSource(prefix) {
			out = c.metaSourceKeysLocked(prefix)
		}
	}
	return out
}

func (c *Catalog) applyLocked(prefix string, kv store.KV, deleted bool) {
	switch prefix {
	case store.ServicesPrefix:
		c.applyService(kv, deleted)
	case store.PoliciesPrefix:
		c.applyPolicy(kv, deleted)
	case store.NetworksPrefix(""):
		c.applyNetwork(kv, deleted)
	case store.AlivePrefix:
		h, ok := store.AliveHost(kv.Key)
		if !ok {
			return
		}
		if deleted {
			delete(c.layout, h)
		} else {
			var a store.HostAlive
			_ = kv.Decode(&a) // unreadable: layout 0, followed whole
			c.layout[h] = a.MetaLayout
		}
		if c.alive[h] == deleted {
			if deleted {
				delete(c.alive, h)
			} else {
				c.alive[h] = true
			}
			c.touchHost(h)
		}
		c.legacyWantLocked()
	case store.HostsPrefix:
		h := strings.TrimPrefix(kv.Key, store.HostsPrefix)
		var rec store.Host
		var u netip.Addr
		if !deleted && kv.Decode(&rec) == nil {
			u = rec.Underlay
		}
		c.reservedLocked(h, rec, deleted)
		old, had := c.underlay[h]
		if deleted || !u.IsValid() {
			delete(c.underlay, h)
		} else {
			c.underlay[h] = u.Unmap()
		}
		if had != (u.IsValid() && !deleted) || old != u.Unmap() {
			c.touchHost(h)
		}
	default:
		if isMetaSource(prefix) {
			c.applyMetaSource(prefix, kv, deleted)
		}
	}
}

func (c *Catalog) applyService(kv store.KV, deleted bool) {
	name := strings.TrimPrefix(kv.Key, store.ServicesPrefix)
	var s *store.Service
	if !deleted {
		s = &store.Service{}
		if err := kv.Decode(s); err != nil || s.Name != name {
			c.log.Warn("service record ignored", "key", kv.Key, "err", err)
			s = nil
		}
	}
	if old := c.services[name]; (old == nil) != (s == nil) || old != nil && !maps.Equal(old.Selector, s.Selector) {
		c.selectorsChanged()
	}
	if old := c.services[name]; old != nil {
		for k, v := range old.Selector {
			index.Remove(c.byTerm, term(k, v), name)
		}
		if c.byVIP[old.ClusterIP] == name {
			delete(c.byVIP, old.ClusterIP)
		}
		delete(c.services, name)
	}
	var at time.Time
	if s != nil {
		c.services[name] = s
		for k, v := range s.Selector {
			index.Add(c.byTerm, term(k, v), name)
		}
		if s.ClusterIP.IsValid() {
			c.byVIP[s.ClusterIP] = name
		}
		at = s.Updated
	}
	c.markDirty(name, at)
}

func (c *Catalog) applyEndpointMeta(kv store.KV, deleted bool) {
	host, _, ok := store.SplitHostKey(kv.Key, store.EndpointMetaPrefix(""))
	if !ok {
		return
	}
	var at time.Time
	if old, had := c.epmeta[kv.Key]; had {
		delete(c.epmeta, kv.Key)
		k := ctrKey{host, old.Container}
		index.RemoveSmall(c.epByCtr, k, kv.Key)
		c.memberChanged(k, time.Time{})
	}
	if !deleted {
		var m store.EndpointMeta
		if err := kv.Decode(&m); err != nil || m.Container == "" {
			return
		}
		c.epmeta[kv.Key] = m
		at = m.Updated
		k := ctrKey{host, m.Container}
		index.AddSmall(c.epByCtr, k, kv.Key)
		c.memberChanged(k, at)
	}
}

func (c *Catalog) applyContainerMeta(kv store.KV, deleted bool) {
	host, id, ok := store.SplitHostKey(kv.Key, store.ContainerMetaPrefix(""))
	if !ok {
		return
	}
	delete(c.ctrmeta, kv.Key)
	var at time.Time
	if !deleted {
		var m store.ContainerMeta
		if err := kv.Decode(&m); err == nil && m.Container == id {
			c.ctrmeta[kv.Key] = m
			at = m.Updated
		}
	}
	c.memberChanged(ctrKey{host, id}, at)
}

// memberChanged rebuilds a container's member from its records and marks
// the services it was or is selected by, and those of the containers
// sharing its stack, dirty.
func (c *Catalog) memberChanged(k ctrKey, at time.Time) {
	old := c.members[k]
	m := c.buildMember(k)
	if old != nil {
		c.touchLabels(old.labels, at)
		c.touchSelections(old.labels, at)
		for l, v := range old.labels {
			index.Remove(c.byLabel, term(l, v), k)
		}
		if old.mode == modeContainer {
			index.RemoveSmall(c.children, ctrKey{k.host, old.parent}, k)
		}
		index.RemoveSmall(c.byHost, k.host, k)
	}
	if m != nil {
		c.members[k] = m
		for l, v := range m.labels {
			index.Add(c.byLabel, term(l, v), k)
		}
		if m.mode == modeContainer {
			index.AddSmall(c.children, ctrKey{k.host, m.parent}, k)
		}
		index.AddSmall(c.byHost, k.host, k)
		c.touchLabels(m.labels, at)
		c.touchSelections(m.labels, at)
	} else {
		delete(c.members, k)
	}
	// Container-mode members reached through this one.
	for _, ck := range c.children[k] {
		if o := c.members[ck]; o != nil {
			c.touchLabels(o.labels, at)
		}
	}
}

// buildMember derives a member from the records of container k, or nil.
func (c *Catalog) buildMember(k ctrKey) *member {
	var m *member
	var newest time.Time
	for _, key := range c.epByCtr[k] {
		rec := c.epmeta[key]
		if m == nil {
			m = &member{key: k, mode: modeNetwork, eps: make([]memberEP, 0, len(c.epByCtr[k]))}
		}
		var a [2]netip.Addr
		if rec.IPv4.IsValid() {
			a[0] = rec.IPv4.Unmap()
		}
		if rec.IPv6.IsValid() {
			a[1] = rec.IPv6
		}
		m.eps = append(m.eps, memberEP{key, a})
		if rec.Updated.After(newest) || m.labels == nil {
			newest = rec.Updated
			m.name, m.labels, m.ready = rec.Name, rec.Labels, rec.Ready
		}
	}
	if m != nil {
		return m
	}
	rec, ok := c.ctrmeta[store.ContainerMetaKey(k.host, k.id)]
	if !ok {
		return nil
	}
	return &member{key: k, name: rec.Name, labels: rec.Labels, ready: rec.Ready, mode: rec.Mode,
		parent: rec.Parent, ctr: true}
}

// touchLabels marks dirty every service with a selector term among labels.
func (c *Catalog) touchLabels(labels map[string]string, at time.Time) {
	if c.all && at.IsZero() {
		return
	}
	for k, v := range labels {
		for name := range c.byTerm[term(k, v)] {
			c.markDirty(name, at)
		}
	}
}

// touchHost marks dirty the services of every container on host.
func (c *Catalog) touchHost(host string) {
	if c.all {
		return // everything is recomputed anyway
	}
	for _, k := range c.byHost[host] {
		c.touchLabels(c.members[k].labels, time.Time{})
	}
}

// reservedLocked keeps reserved in line with host h's record; when it
// changes, every service with external IPs is marked (which of them the
// agent programs may change).
func (c *Catalog) reservedLocked(h string, rec store.Host, deleted bool) {
	var now map[netip.Addr]string
	if !deleted && rec.Name == h {
		now = map[netip.Addr]string{}
		rec.ReservedAddrs(func(a netip.Addr, why string) { now[a] = why })
	}
	if maps.Equal(now, c.reserved[h]) {
		return
	}
	if now == nil {
		delete(c.reserved, h)
	} else {
		c.reserved[h] = now
	}
	for name, s := range c.services {
		if len(s.ExternalIPs) > 0 {
			c.markDirty(name, time.Time{})
		}
	}
}
