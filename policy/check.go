package policy

import (
	"net/netip"
	"slices"
	"strings"
)

// Decision is what the model decides for a new connection: both sides
// must allow it (the source's egress, the destination's ingress).
type Decision struct {
	Allowed         bool
	Egress, Ingress Side
}

// Side is one end's decision.
type Side struct {
	Allowed bool
	// Enforced is set when this end is a target of the model (policies
	// are enforced on it); Isolated when some policy isolates it in this
	// direction (Policies), Pending when its labels are not known yet.
	Enforced, Isolated, Pending bool
	Policies                    []string
	// Rules are the rules that allow the connection.
	Rules []Rule
	// Reason says why, in words.
	Reason string
}

// Conn is a connection to decide on. FromHost is set when the source is
// the destination's own host (traffic from a container's own host is
// always allowed, as in Kubernetes).
type Conn struct {
	Src, Dst netip.Addr
	Proto    string // TCP, UDP or SCTP
	Port     uint16
	FromHost bool
}

// Decide answers for c exactly as the data plane built from m filters
// its first packet.
func (m *Model) Decide(c Conn) Decision {
	src, dst := c.Src.Unmap(), c.Dst.Unmap()
	var d Decision
	if src == dst {
		self := Side{Allowed: true, Reason: "traffic a container sends to itself is not filtered"}
		return Decision{Allowed: true, Egress: self, Ingress: self}
	}
	d.Egress = m.side(src, dst, c, true)
	if c.FromHost {
		d.Ingress = Side{Allowed: true, Reason: "traffic from a container's own host is always allowed"}
	} else {
		d.Ingress = m.side(dst, src, c, false)
	}
	d.Allowed = d.Egress.Allowed && d.Ingress.Allowed
	return d
}

// side decides for the end at addr (the source for egress, the
// destination for ingress); peer is the other end.
func (m *Model) side(addr, peer netip.Addr, c Conn, egress bool) Side {
	dir, other := "ingress", "the source"
	if egress {
		dir, other = "egress", "the destination"
	}
	t, ok := m.Target(addr)
	if !ok {
		return Side{Allowed: true, Reason: "not a container podnet enforces policies on: no " + dir + " policy applies"}
	}
	s := Side{Enforced: true}
	g := t.Ingress
	pending := t.PendingIngress
	if egress {
		g, pending = t.Egress, t.PendingEgress
	}
	switch {
	case pending:
		s.Pending = true
		s.Reason = "its labels are not known yet: isolated until they are"
		return s
	case g == nil:
		s.Allowed = true
		s.Reason = "no policy with " + strings.ToUpper(dir[:1]) + dir[1:] + " selects it: not isolated"
		return s
	}
	s.Isolated, s.Policies = true, slices.Clone(g.Policies)
	for _, r := range g.Rules {
		if m.ruleMatches(r, peer, c) {
			s.Rules = append(s.Rules, r)
		}
	}
	s.Allowed = len(s.Rules) > 0
	if s.Allowed {
		s.Reason = "allowed by " + ruleNames(s.Rules, dir)
	} else {
		s.Reason = "isolated for " + dir + " by " + strings.Join(g.Policies, ", ") + ", and no rule allows " + other + " on this port"
	}
	return s
}

// ruleMatches is one rule against the other end's address and the port.
func (m *Model) ruleMatches(r Rule, peer netip.Addr, c Conn) bool {
	if len(r.Peers) > 0 && !slices.ContainsFunc(r.Peers, func(p Peer) bool { return m.peerHas(p, peer) }) {
		return false
	}
	if len(r.Ports) == 0 {
		return true
	}
	return slices.ContainsFunc(r.Ports, func(p PortRange) bool {
		return strings.EqualFold(p.Proto, c.Proto) && p.First <= c.Port && c.Port <= p.Last
	})
}

func (m *Model) peerHas(p Peer, a netip.Addr) bool {
	if p.Block {
		b := m.Blocks[p.Set]
		return b != nil && contains(b.Ranges, a)
	}
	s := m.Peers[p.Set]
	if s == nil {
		return false
	}
	_, found := slices.BinarySearchFunc(s.Addrs, a, netip.Addr.Compare)
	return found
}

// RuleName is "policy web-ingress, ingress rule 2".
func RuleName(r Rule, dir string) string {
	return "policy " + r.Policy + ", " + dir + " rule " + itoa(uint16(r.Index))
}

func ruleNames(rs []Rule, dir string) string {
	var out []string
	for _, r := range rs {
		out = append(out, RuleName(r, dir)+" ("+r.Text+")")
	}
	return strings.Join(out, "; ")
}
