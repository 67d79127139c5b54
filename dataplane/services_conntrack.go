package dataplane

import (
	"errors"
	"net/netip"
	"slices"

	"github.com/vishvananda/netlink"
)

// svcFlows is the conntrack cleanup a service change calls for. A UDP or
// SCTP client keeps its 5-tuple as long as it talks, and its conntrack
// entry keeps the NAT decision of its first packet, so:
//
//   - gone: flows a service rule sent to an endpoint that has left (ct
//     mark has the service bit, reply source is that endpoint and target
//     port, original port is the service port or NodePort) are deleted,
//     so the client's next packet picks a live endpoint;
//   - fresh: flows to a service address and port (or a NodePort on a host
//     address) that no service rule NATed — sent while the service did not
//     exist, and answered by nothing — are deleted when the service gains
//     endpoints, or the client would keep talking to nowhere.
//
// TCP is left alone: a connection to an endpoint that is going away (not
// ready, stopping) may still finish its work, and a new TCP connection
// never reuses an established entry.
type svcFlows struct {
	gone  map[goneFlow]bool
	fresh map[freshFlow]bool
	fams  map[family]bool
}

type goneFlow struct {
	proto    Proto
	ep       netip.Addr
	target   uint16
	origPort uint16
}

type freshFlow struct {
	proto Proto
	addr  netip.Addr // invalid: a NodePort on any host address
	port  uint16
}

func (c *svcFlows) empty() bool { return len(c.gone)+len(c.fresh) == 0 }

func newSvcFlows() *svcFlows {
	return &svcFlows{gone: map[goneFlow]bool{}, fresh: map[freshFlow]bool{}, fams: map[family]bool{}}
}

// conntrackChanges compares every service of prev and next.
func conntrackChanges(prev, next *svcTable) *svcFlows {
	c := newSvcFlows()
	names := map[string]bool{}
	for n := range prev.svcs {
		names[n] = true
	}
	for n := range next.svcs {
		names[n] = true
	}
	for n := range names {
		c.add(programmedState(prev, n), programmedState(next, n))
	}
	return c
}

// programmedState is name's state in t if it is programmed, else nil.
func programmedState(t *svcTable, name string) *svcState { return flowState(t.svcs[name]) }

// flowState is st if it has rules (programmed, not headless), else nil.
func flowState(st *svcState) *svcState {
	if st == nil || st.err != nil || st.headless() {
		return nil
	}
	return st
}

func (c *svcFlows) add(old, new *svcState) {
	if old == new {
		return
	}
	if old != nil {
		for _, p := range old.spec.Ports {
			if p.Proto == TCP {
				continue
			}
			np := newPort(new, p)
			for _, ep := range old.slots {
				if np != nil && np.TargetPort == p.TargetPort && slices.Contains(new.slots, ep) {
					continue
				}
				c.gone[goneFlow{p.Proto, ep, p.TargetPort, p.Port}] = true
				if p.NodePort != 0 {
					c.gone[goneFlow{p.Proto, ep, p.TargetPort, p.NodePort}] = true
				}
				c.fams[familyOf(ep)] = true
			}
		}
	}
	if new == nil || len(new.slots) == 0 {
		return
	}
	for _, p := range new.spec.Ports {
		if p.Proto == TCP {
			continue
		}
		op := newPort(old, p)
		served := op != nil && len(old.slots) > 0
		for _, a := range append([]netip.Addr{new.spec.ClusterIP}, new.spec.ExternalIPs...) {
			if !served || !slices.Contains(append([]netip.Addr{old.spec.ClusterIP}, old.spec.ExternalIPs...), a) {
				c.fresh[freshFlow{p.Proto, a, p.Port}] = true
				c.fams[familyOf(a)] = true
			}
		}
		if p.NodePort != 0 && (!served || op.NodePort != p.NodePort) {
			c.fresh[freshFlow{p.Proto, netip.Addr{}, p.NodePort}] = true
			c.fams[new.family()] = true
		}
	}
}

// newPort is s's port with p's protocol and port number, or nil.
func newPort(s *svcState, p ServicePort) *ServicePort {
	if s == nil {
		return nil
	}
	for i := range s.spec.Ports {
		if s.spec.Ports[i].Proto == p.Proto && s.spec.Ports[i].Port == p.Port {
			return &s.spec.Ports[i]
		}
	}
	return nil
}

// filters are the conntrack flushes c calls for; local is the host's
// addresses (a fresh NodePort is flushed per address).
func (c *svcFlows) filters(local map[netip.Addr]bool) []ctFilter {
	var out []ctFilter
	for g := range c.gone {
		out = append(out, ctFilter{fam: familyOf(g.ep), proto: protoNumber(g.proto), origDport: g.origPort,
			replySrc: g.ep, replySport: g.target, mark: ctMarkService, markMask: ctMarkService})
	}
	for fr := range c.fresh {
		dsts := []netip.Addr{fr.addr}
		if !fr.addr.IsValid() {
			dsts = nil
			for a := range local {
				if c.fams[familyOf(a)] {
					dsts = append(dsts, a)
				}
			}
		}
		for _, d := range dsts {
			out = append(out, ctFilter{fam: familyOf(d), proto: protoNumber(fr.proto), origDst: d, origDport: fr.port,
				markMask: ctMarkService})
		}
	}
	return out
}

// flushServiceConntrack deletes the flows c names, by in-kernel filtered
// flushes (one netlink message each, no entry crosses to userspace) or,
// on kernels that cannot, one dump per family matched here. Failures are
// logged: the rules are already in place.
func (e *Engine) flushServiceConntrack(c *svcFlows) {
	if c == nil || c.empty() {
		return
	}
	var local map[netip.Addr]bool
	for fr := range c.fresh {
		if !fr.addr.IsValid() {
			var err error
			if local, err = e.ct.localAddrs(); err != nil {
				e.logFlush("service", 0, err)
			}
			break
		}
	}
	filters := c.filters(local)
	if !e.ctDumpOnly.Load() {
		var err error
		for _, f := range filters {
			if err = e.ct.flushFiltered(f); err != nil {
				break
			}
		}
		if !errors.Is(err, errNoFilteredFlush) {
			e.logFlush("service", 0, err)
			return
		}
		e.log.Info("conntrack cleanup falls back to dumping the table", "err", err)
		e.ctDumpOnly.Store(true)
	}
	var fams []family
	for _, f := range []family{ipv4, ipv6} {
		if c.fams[f] {
			fams = append(fams, f)
		}
	}
	n, err := e.ct.deleteFlows(fams, func(flow *netlink.ConntrackFlow) bool {
		return slices.ContainsFunc(filters, func(f ctFilter) bool { return f.matches(flow) })
	})
	e.logFlush("service", n, err)
}

// restartFlows matches, after a restart, the UDP and SCTP flows a service
// rule (of the previous podnetd) sent to an address that is no longer
// one of the service's endpoints: endpoints that left while podnetd was
// down. Per-endpoint filters cannot say "not one of these", so the first
// full sync (Replace) pays one dump of the table, unless no service has a
// UDP or SCTP port (nil: nothing to match). The dump walks the host's
// whole conntrack table, every namespace's entries included.
func restartFlows(t *svcTable) func(*netlink.ConntrackFlow) bool {
	type key struct {
		addr  netip.Addr // invalid: a NodePort
		proto uint8
		port  uint16
	}
	eps := map[key]map[netip.Addr]bool{}
	for _, st := range t.svcs {
		if st.err != nil || st.headless() {
			continue
		}
		set := map[netip.Addr]bool{}
		for _, a := range st.slots {
			set[a] = true
		}
		for _, k := range st.keys() {
			if k.proto != TCP {
				eps[key{k.addr, protoNumber(k.proto), k.port}] = set
			}
		}
	}
	if len(eps) == 0 {
		return nil // no UDP or SCTP service: no dump of the conntrack table
	}
	return func(f *netlink.ConntrackFlow) bool {
		if f.Mark&ctMarkService == 0 || f.Forward.Protocol == protoNumber(TCP) {
			return false
		}
		set, ok := eps[key{flowAddr(f.Forward.DstIP), f.Forward.Protocol, f.Forward.DstPort}]
		if !ok {
			set, ok = eps[key{netip.Addr{}, f.Forward.Protocol, f.Forward.DstPort}]
		}
		return ok && !set[flowAddr(f.Reverse.SrcIP)]
	}
}
