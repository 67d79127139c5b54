package service

import (
	"cmp"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/podnet/podnet/admin"
	"github.com/podnet/podnet/internal/dockerid"
	"github.com/podnet/podnet/portmap"
	"github.com/podnet/podnet/store"
)

// resolved is one selected container with the address it is reached at.
type resolved struct {
	m      *member
	addr   netip.Addr
	ready  bool
	reason string // why not ready
}

// familyOf is the address family of s's endpoints: its VIP's, else the
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

// addrOf is where m is reached, or why that is unknown.
func (c *Catalog) addrOf(m *member, v6 bool) (netip.Addr, string) {
	switch m.mode {
	case modeNetwork:
		var best netip.Addr
		for _, a := range m.eps {
			x := a[0]
			if v6 {
				x = a[1]
			}
			// The lowest address: a container on several podnet networks
			// is one endpoint, at a stable address.
			if x.IsValid() && (!best.IsValid() || x.Less(best)) {
				best = x
			}
		}
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

// programLocked is what the data plane of this host needs for s; ok is
// false for a headless service (no VIP: nothing to program).
func (c *Catalog) programLocked(s *store.Service) (portmap.Service, bool) {
	if s.Headless || !s.ClusterIP.IsValid() {
		return portmap.Service{}, false
	}
	ps := portmap.Service{Name: s.Name, ClusterIP: s.ClusterIP, LocalOnly: s.ExternalTrafficPolicy == store.TrafficPolicyLocal}
	for _, a := range s.ExternalIPs {
		if c.externalRefusedLocked(a) == nil {
			ps.ExternalIPs = append(ps.ExternalIPs, a)
		}
	}
	if s.SessionAffinity == store.AffinityClientIP {
		ps.Affinity = time.Duration(s.AffinityTimeout) * time.Second
	}
	for _, p := range s.Ports {
		ps.Ports = append(ps.Ports, portmap.ServicePort{Name: p.Name, Proto: portmap.Proto(strings.ToLower(p.Protocol)),
			Port: p.Port, TargetPort: p.TargetPort, NodePort: p.NodePort})
	}
	ps.Endpoints = readyEndpoints(c.resolveLocked(s), c.self)
	return ps, true
}

// readyEndpoints deduplicates the ready addresses (containers sharing one
// stack, host-mode containers of one host), sorted by address; Local is
// set when the address is on host self.
func readyEndpoints(rs []resolved, self string) []portmap.ServiceEndpoint {
	var out []portmap.ServiceEndpoint
	for _, r := range rs {
		if !r.ready {
			continue
		}
		local := r.m.key.host == self
		if i := slices.IndexFunc(out, func(e portmap.ServiceEndpoint) bool { return e.Addr == r.addr }); i >= 0 {
			out[i].Local = out[i].Local || local
			continue
		}
		out = append(out, portmap.ServiceEndpoint{Addr: r.addr, Local: local})
	}
	slices.SortFunc(out, func(a, b portmap.ServiceEndpoint) int { return a.Addr.Compare(b.Addr) })
	return out
}

// sameProgram compares two data-plane services.
func sameProgram(a, b portmap.Service) bool {
	return a.Name == b.Name && a.ClusterIP == b.ClusterIP && slices.Equal(a.ExternalIPs, b.ExternalIPs) &&
		slices.Equal(a.Ports, b.Ports) && slices.Equal(a.Endpoints, b.Endpoints) &&
		a.Affinity == b.Affinity && a.LocalOnly == b.LocalOnly
}

// endpointViews lists s's selected containers for `podnetctl service get`.
func (c *Catalog) endpointViews(s *store.Service) []admin.ServiceEndpointView {
	c.mu.RLock()
	defer c.mu.RUnlock()
	rs := c.resolveLocked(s)
	out := make([]admin.ServiceEndpointView, 0, len(rs))
	for _, r := range rs {
		v := admin.ServiceEndpointView{Host: r.m.key.host, Container: r.m.name, Mode: r.m.mode, Ready: r.ready,
			Reason: r.reason}
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
