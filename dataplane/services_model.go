package dataplane

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"
)

// Errors the engine reports per service (Result.Services, ServiceStatus),
// for callers that branch on the cause. The engine trusts its input: a
// service reaches it validated by the registry (package registry, the one
// validator), so none of them says "invalid"; a service the kernel cannot
// take anyway is refused by the kernel and reported as such.
var (
	// ErrServiceConflict: another service already answers on one of its
	// addresses and ports, or on its NodePort.
	ErrServiceConflict = errors.New("service conflicts with another")
	// ErrServiceNotProgrammed: the kernel refused the service's rules.
	ErrServiceNotProgrammed = errors.New("service rules not programmed")
	// ErrServiceUnknown: the engine was never given the service.
	ErrServiceUnknown = errors.New("unknown service")
)

// svcState is what the engine keeps of one service: the normalized spec,
// why it is not programmed (nil when it is), and the order of its
// endpoints in the bucket maps ("slots"), which changes as little as
// possible so that an endpoint change touches few map elements.
type svcState struct {
	// in is the service as given (Apply compares it with the next one);
	// spec its normalized form.
	in    Service
	spec  Service
	err   error
	slots []netip.Addr // every endpoint of the service's family
	local []netip.Addr // the local ones (LocalOnly external traffic)
	// blocked are the addresses:ports and NodePorts this host does not
	// program for the service, with why (another service answers there,
	// a port of this host holds it): a conflict costs only the
	// conflicting element, never the rest of the service.
	blocked map[svcKey]string
}

// status is nil when every element of the service is programmed, else
// why not: the service's error, or its blocked elements.
func (s *svcState) status() error {
	if s.err != nil || len(s.blocked) == 0 {
		return s.err
	}
	keys := make([]svcKey, 0, len(s.blocked))
	for k := range s.blocked {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b svcKey) int { return strings.Compare(a.String(), b.String()) })
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k.String() + " " + s.blocked[k]
	}
	return fmt.Errorf("%w: not programmed on this host: %s", ErrServiceConflict, strings.Join(parts, "; "))
}

// family returns the service's address family (that of its ClusterIP).
func (s *svcState) family() family { return familyOf(s.spec.ClusterIP) }

// headless services have no ClusterIP and get no rules.
func (s *svcState) headless() bool { return !s.spec.ClusterIP.IsValid() }

// normalizeService returns s in the engine's form: one address family
// (the ClusterIP's: external IPs and endpoints of the other family cannot
// be reached through it and are dropped), unmapped addresses, sorted and
// deduplicated lists, target ports defaulted to the port, the affinity
// timeout in whole seconds (as nft prints it back, so a sync compares
// equal). ignored lists what was dropped, for the log. s is trusted: the
// registry validated the service it comes from.
func normalizeService(s Service) (out Service, ignored []string) {
	out = Service{Name: s.Name, ClusterIP: s.ClusterIP.Unmap(), Affinity: s.Affinity.Truncate(time.Second), LocalOnly: s.LocalOnly}
	for _, p := range s.Ports {
		if p.TargetPort == 0 {
			p.TargetPort = p.Port
		}
		out.Ports = append(out.Ports, p)
	}
	if !out.ClusterIP.IsValid() {
		return out, nil // headless: no rules
	}
	f := familyOf(out.ClusterIP)
	for _, a := range s.ExternalIPs {
		a = a.Unmap()
		switch {
		case familyOf(a) != f:
			ignored = append(ignored, "external IP "+a.String())
		case a != out.ClusterIP && !slices.Contains(out.ExternalIPs, a):
			out.ExternalIPs = append(out.ExternalIPs, a)
		}
	}
	slices.SortFunc(out.ExternalIPs, netip.Addr.Compare)
	seenEP := map[netip.Addr]bool{}
	for _, ep := range s.Endpoints {
		ep.Addr = ep.Addr.Unmap()
		switch {
		case familyOf(ep.Addr) != f:
			ignored = append(ignored, "endpoint "+ep.Addr.String())
		case !seenEP[ep.Addr]:
			seenEP[ep.Addr] = true
			out.Endpoints = append(out.Endpoints, ep)
		}
	}
	slices.SortFunc(out.Endpoints, func(a, b ServiceEndpoint) int { return a.Addr.Compare(b.Addr) })
	return out, ignored
}

// assignSlots returns the bucket order for want (sorted addresses) given
// the previous order: an address keeps its slot while it stays, a new one
// takes the first free slot, and when the list shrinks the last slots move
// into the holes. A change of one endpoint thus rewrites one element per
// key instead of shifting every endpoint after it.
func assignSlots(prev, want []netip.Addr) []netip.Addr {
	keep := map[netip.Addr]bool{}
	for _, a := range want {
		keep[a] = true
	}
	out := make([]netip.Addr, len(prev))
	placed := map[netip.Addr]bool{}
	for i, a := range prev {
		if keep[a] {
			out[i] = a
			placed[a] = true
		}
	}
	var fresh []netip.Addr
	for _, a := range want {
		if !placed[a] {
			fresh = append(fresh, a)
		}
	}
	for i := range out {
		if !out[i].IsValid() && len(fresh) > 0 {
			out[i], fresh = fresh[0], fresh[1:]
		}
	}
	out = append(out, fresh...)
	// Close holes by moving the last slots into them.
	for i := 0; i < len(out); i++ {
		if out[i].IsValid() {
			continue
		}
		last := len(out) - 1
		for last > i && !out[last].IsValid() {
			last--
		}
		if last == i {
			out = out[:i]
			break
		}
		out[i] = out[last]
		out = out[:last]
	}
	return out
}

// newSvcState normalizes s and assigns its slots after prev (nil for a
// new service).
func newSvcState(s Service, prev *svcState) (*svcState, []string) {
	spec, ignored := normalizeService(s)
	st := &svcState{in: cloneService(s), spec: spec}
	var all, local, prevAll, prevLocal []netip.Addr
	for _, ep := range spec.Endpoints {
		all = append(all, ep.Addr)
		if ep.Local {
			local = append(local, ep.Addr)
		}
	}
	if prev != nil {
		prevAll, prevLocal = prev.slots, prev.local
	}
	st.slots = assignSlots(prevAll, all)
	if spec.LocalOnly {
		st.local = assignSlots(prevLocal, local)
	}
	return st, ignored
}

// svcKey is one address:port (or NodePort) a service answers on; two
// services may not share one.
type svcKey struct {
	addr  netip.Addr // invalid for a NodePort
	proto Proto
	port  uint16
}

func (k svcKey) String() string {
	if !k.addr.IsValid() {
		return fmt.Sprintf("node port %d/%s", k.port, k.proto)
	}
	return fmt.Sprintf("%s/%s", netip.AddrPortFrom(k.addr, k.port), k.proto)
}

// keys lists every address:port and NodePort of the service.
func (s *svcState) keys() []svcKey {
	if s.headless() {
		return nil
	}
	var out []svcKey
	for _, p := range s.spec.Ports {
		for _, a := range append([]netip.Addr{s.spec.ClusterIP}, s.spec.ExternalIPs...) {
			out = append(out, svcKey{addr: a, proto: p.Proto, port: p.Port})
		}
		if p.NodePort != 0 {
			out = append(out, svcKey{proto: p.Proto, port: p.NodePort})
		}
	}
	return out
}

// joinIgnored is the log form of what normalizeService dropped.
func joinIgnored(ignored []string) string { return strings.Join(ignored, ", ") }

// cloneService copies s's lists: the engine keeps its input (svcState.in)
// to compare with the next one, and callers may reuse theirs.
func cloneService(s Service) Service {
	s.ExternalIPs, s.Ports, s.Endpoints = slices.Clone(s.ExternalIPs), slices.Clone(s.Ports), slices.Clone(s.Endpoints)
	return s
}
