package catalog

import (
	"cmp"
	"net/netip"
	"slices"
	"strings"

	"github.com/podnet/podnet/admin"
	"github.com/podnet/podnet/internal/dockerid"
	"github.com/podnet/podnet/store"
)

// term is the index form of one selector term or label.
func term(k, v string) string { return k + "=" + v }

// selects reports whether labels match every term of sel.
func selects(sel, labels map[string]string) bool {
	if len(sel) == 0 {
		return false
	}
	for k, v := range sel {
		if got, ok := labels[k]; !ok || got != v {
			return false
		}
	}
	return true
}

// selectedLocked returns the containers s selects, by host then name.
func (c *Catalog) selectedLocked(s *store.Service) []*member {
	var smallest map[ctrKey]struct{}
	first := true
	for k, v := range s.Selector {
		set := c.byLabel[term(k, v)]
		if first || len(set) < len(smallest) {
			smallest, first = set, false
		}
	}
	var out []*member
	for k := range smallest {
		if m := c.members[k]; m != nil && selects(s.Selector, m.labels) {
			out = append(out, m)
		}
	}
	slices.SortFunc(out, func(a, b *member) int {
		return strings.Compare(a.key.host+"/"+a.name+"/"+a.key.id, b.key.host+"/"+b.name+"/"+b.key.id)
	})
	return out
}

// resolved is one selected container with the address it is reached at.
type resolved struct {
	m      *member
	addr   netip.Addr
	ready  bool
	reason string // why not ready
	// reach is from which hosts the address can be reached, and why
	// not from every host (reach.go).
	reach    reach
	reachWhy string
}

// familyV6 is the address family of s's endpoints: its VIP's, else the
// service CIDR's.
func (c *Catalog) familyV6(s *store.Service) bool {
	if s.ClusterIP.IsValid() {
		return s.ClusterIP.Is6()
	}
	return c.v6
}

// resolveLocked returns every container s selects, with its address and
// readiness: ready means running and healthy (per its record), on a live
// host, with an address known.
func (c *Catalog) resolveLocked(s *store.Service) []resolved {
	v6 := c.familyV6(s)
	sel := c.selectedLocked(s)
	out := make([]resolved, 0, len(sel))
	for _, m := range sel {
		r := resolved{m: m}
		r.addr, r.reason = c.addrOf(m, v6)
		r.reach, r.reachWhy = c.reachLocked(m, v6)
		switch {
		case !c.alive[m.key.host]:
			r.reason = "host " + m.key.host + " is down"
		case !m.ready:
			r.reason = "not ready (starting, paused or failing its health check)"
		case r.reason == "":
			r.ready = true
		}
		out = append(out, r)
	}
	return out
}

// bestEndpoint is the endpoint (epmeta key) and address a container on
// podnet networks is reached at: the lowest address of the family, so a
// container on several networks is one endpoint, at a stable address.
func bestEndpoint(m *member, v6 bool) (string, netip.Addr) {
	var key string
	var best netip.Addr
	for _, e := range m.eps {
		k, a := e.key, e.addrs
		x := a[0]
		if v6 {
			x = a[1]
		}
		if x.IsValid() && (!best.IsValid() || x.Less(best) || x == best && k < key) {
			key, best = k, x
		}
	}
	return key, best
}

// addrOf is where m is reached, or why that is unknown.
func (c *Catalog) addrOf(m *member, v6 bool) (netip.Addr, string) {
	switch m.mode {
	case modeNetwork:
		_, best := bestEndpoint(m, v6)
		if !best.IsValid() {
			return best, "no address of the service's family"
		}
		return best, ""
	case modeHost:
		u, ok := c.underlay[m.key.host]
		if !ok || u.Is6() != v6 {
			return netip.Addr{}, "host " + m.key.host + " has no underlay address of the service's family"
		}
		return u, ""
	case modeContainer:
		p := c.members[ctrKey{m.key.host, m.parent}]
		if p == nil {
			return netip.Addr{}, "the container whose network it shares (" + dockerid.Short(m.parent) + ") is not running on a podnet network"
		}
		if p.mode == modeContainer {
			return netip.Addr{}, "the container whose network it shares is itself in container mode"
		}
		return c.addrOf(p, v6)
	}
	return netip.Addr{}, "unknown network mode " + m.mode
}

// Endpoint is a ready address of a service's endpoints as host self sees
// it: Local when a container at that address runs on self.
type Endpoint struct {
	Addr  netip.Addr
	Local bool
}

// readyEndpoints deduplicates the ready addresses self reaches (running
// and healthy containers on live hosts, on networks that carry self's
// traffic to them: reach.go), sorted by address; Local is set when the
// address is on host self.
func readyEndpoints(rs []resolved, self string) []Endpoint {
	var out []Endpoint
	for _, r := range rs {
		if !r.ready || !r.reach.from(self, r.m.key.host) {
			continue
		}
		local := r.m.key.host == self
		if i := slices.IndexFunc(out, func(e Endpoint) bool { return e.Addr == r.addr }); i >= 0 {
			out[i].Local = out[i].Local || local
			continue
		}
		out = append(out, Endpoint{Addr: r.addr, Local: local})
	}
	slices.SortFunc(out, func(a, b Endpoint) int { return a.Addr.Compare(b.Addr) })
	return out
}

// EndpointViews lists s's selected containers for `podnetctl service get`.
func (c *Catalog) EndpointViews(s *store.Service) []admin.ServiceEndpointView {
	c.mu.RLock()
	defer c.mu.RUnlock()
	rs := c.resolveLocked(s)
	out := make([]admin.ServiceEndpointView, 0, len(rs))
	for _, r := range rs {
		v := admin.ServiceEndpointView{Host: r.m.key.host, Container: r.m.name, Mode: r.m.mode, Ready: r.ready,
			Reason: r.reason, Reach: r.reach.text(r.m.key.host, r.reachWhy)}
		if v.Container == "" {
			v.Container = dockerid.Short(r.m.key.id)
		}
		if r.addr.IsValid() {
			v.Address = r.addr.String()
		}
		for _, p := range s.Ports {
			if !slices.Contains(v.Ports, int(p.TargetPort)) {
				v.Ports = append(v.Ports, int(p.TargetPort))
			}
		}
		out = append(out, v)
	}
	slices.SortFunc(out, func(a, b admin.ServiceEndpointView) int {
		return cmp.Or(strings.Compare(a.Host, b.Host), strings.Compare(a.Container, b.Container))
	})
	return out
}
