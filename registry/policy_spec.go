package registry

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"

	"github.com/podnet/podnet/admin"
	"github.com/podnet/podnet/store"
)

// Bounds of one policy: far beyond any hand-written policy, low enough
// that a generated file cannot make every host compile a monster.
const (
	maxPolicyRules   = 128 // per direction
	maxPolicyPeers   = 128 // per rule
	maxPolicyPorts   = 128 // per rule
	maxPolicyExcepts = 128 // per ipBlock
)

// ValidatePolicy checks spec and returns the canonical policy: policy
// types filled in (Kubernetes' defaults), protocols upper case, selector
// operators in Kubernetes' spelling. It is the one validator of a
// network policy; errors name the policy and the place in it.
func ValidatePolicy(spec admin.PolicySpec) (store.NetworkPolicy, error) {
	p := store.NetworkPolicy{Name: spec.Name}
	if spec.Kind != "" && spec.Kind != admin.KindNetworkPolicy {
		return p, inputf("kind %q is not a network policy", spec.Kind)
	}
	if !ValidServiceName(spec.Name) {
		return p, inputf("network policy name %q: use lower case letters, digits and '-', starting with a letter, at most 63 characters", spec.Name)
	}
	fail := func(format string, args ...any) (store.NetworkPolicy, error) {
		return p, inputf("network policy %s: "+format, append([]any{spec.Name}, args...)...)
	}
	if spec.PodSelector == nil {
		return fail("podSelector is required ({} selects every container)")
	}
	sel, err := validateSelector(*spec.PodSelector)
	if err != nil {
		return fail("podSelector: %v", err)
	}
	p.PodSelector = sel
	if p.PolicyTypes, err = policyTypes(spec); err != nil {
		return fail("%v", err)
	}
	if len(spec.Ingress) > maxPolicyRules || len(spec.Egress) > maxPolicyRules {
		return fail("%d ingress and %d egress rules: at most %d each", len(spec.Ingress), len(spec.Egress), maxPolicyRules)
	}
	for i, r := range spec.Ingress {
		rule, err := validateRule(r.From, r.Ports, "from")
		if err != nil {
			return fail("ingress rule %d: %v", i+1, err)
		}
		p.Ingress = append(p.Ingress, rule)
	}
	for i, r := range spec.Egress {
		rule, err := validateRule(r.To, r.Ports, "to")
		if err != nil {
			return fail("egress rule %d: %v", i+1, err)
		}
		p.Egress = append(p.Egress, rule)
	}
	return p, nil
}

// policyTypes checks policyTypes, or derives them as Kubernetes does:
// Ingress always, Egress when there are egress rules.
func policyTypes(spec admin.PolicySpec) ([]string, error) {
	if len(spec.PolicyTypes) == 0 {
		out := []string{store.PolicyIngress}
		if len(spec.Egress) > 0 {
			out = append(out, store.PolicyEgress)
		}
		return out, nil
	}
	var out []string
	for _, t := range spec.PolicyTypes {
		var c string
		switch strings.ToLower(t) {
		case "ingress":
			c = store.PolicyIngress
		case "egress":
			c = store.PolicyEgress
		default:
			return nil, fmt.Errorf("policyTypes: %q is not a policy type: use Ingress and/or Egress", t)
		}
		if slices.Contains(out, c) {
			return nil, fmt.Errorf("policyTypes: %s is given twice", c)
		}
		out = append(out, c)
	}
	if len(out) == 2 { // one spelling whatever the order given
		out = []string{store.PolicyIngress, store.PolicyEgress}
	}
	switch {
	case len(spec.Ingress) > 0 && !slices.Contains(out, store.PolicyIngress):
		return nil, fmt.Errorf("ingress rules given but policyTypes has no Ingress: they would never apply")
	case len(spec.Egress) > 0 && !slices.Contains(out, store.PolicyEgress):
		return nil, fmt.Errorf("egress rules given but policyTypes has no Egress: they would never apply")
	}
	return out, nil
}

func validateRule(peers []admin.PolicyPeerSpec, ports []admin.PolicyPortSpec, dir string) (store.PolicyRule, error) {
	var r store.PolicyRule
	if len(peers) > maxPolicyPeers || len(ports) > maxPolicyPorts {
		return r, fmt.Errorf("%d peers and %d ports: at most %d peers and %d ports per rule", len(peers), len(ports), maxPolicyPeers, maxPolicyPorts)
	}
	for i, pe := range peers {
		where := fmt.Sprintf("%s[%d]", dir, i)
		switch {
		case pe.PodSelector != nil && pe.IPBlock != nil:
			return r, fmt.Errorf("%s: give either podSelector or ipBlock, not both", where)
		case pe.PodSelector != nil:
			sel, err := validateSelector(*pe.PodSelector)
			if err != nil {
				return r, fmt.Errorf("%s: podSelector: %v", where, err)
			}
			r.Peers = append(r.Peers, store.PolicyPeer{PodSelector: &sel})
		case pe.IPBlock != nil:
			b, err := validateIPBlock(*pe.IPBlock)
			if err != nil {
				return r, fmt.Errorf("%s: ipBlock: %v", where, err)
			}
			r.Peers = append(r.Peers, store.PolicyPeer{IPBlock: &b})
		default:
			return r, fmt.Errorf("%s: a peer needs podSelector or ipBlock (Docker has no namespaces: select a Compose project with podSelector {matchLabels: {com.docker.compose.project: NAME}})", where)
		}
	}
	for i, pp := range ports {
		port, err := validatePolicyPort(pp)
		if err != nil {
			return r, fmt.Errorf("ports[%d]: %v", i, err)
		}
		r.Ports = append(r.Ports, port)
	}
	return r, nil
}

func validateIPBlock(in admin.IPBlockSpec) (store.IPBlock, error) {
	var b store.IPBlock
	cidr, err := parseCIDR(in.CIDR)
	if err != nil {
		return b, fmt.Errorf("cidr: %v", err)
	}
	b.CIDR = cidr
	if len(in.Except) > maxPolicyExcepts {
		return b, fmt.Errorf("%d excepts: at most %d", len(in.Except), maxPolicyExcepts)
	}
	for _, s := range in.Except {
		e, err := parseCIDR(s)
		if err != nil {
			return b, fmt.Errorf("except: %v", err)
		}
		switch {
		case e.Addr().Is4() != cidr.Addr().Is4() || e.Bits() <= cidr.Bits() || !cidr.Contains(e.Addr()):
			return b, fmt.Errorf("except %s is not inside cidr %s (an except must be a smaller block of it)", e, cidr)
		case slices.Contains(b.Except, e):
			return b, fmt.Errorf("except %s is given twice", e)
		}
		b.Except = append(b.Except, e)
	}
	return b, nil
}

// parseCIDR takes a network in CIDR notation; host bits must be zero (a
// block written 10.1.2.3/16 is more likely a mistake than 10.1.0.0/16).
func parseCIDR(s string) (netip.Prefix, error) {
	p, err := netip.ParsePrefix(strings.TrimSpace(s))
	if err != nil {
		return p, fmt.Errorf("%q is not a CIDR (want e.g. 10.0.0.0/8 or fd00::/64)", s)
	}
	if p.Addr().Is4In6() {
		return p, fmt.Errorf("%q: write IPv4 blocks in IPv4 notation", s)
	}
	if p.Masked() != p {
		return p, fmt.Errorf("%q has host bits set: did you mean %s?", s, p.Masked())
	}
	return p, nil
}

func validatePolicyPort(in admin.PolicyPortSpec) (store.PolicyPort, error) {
	var p store.PolicyPort
	switch strings.ToLower(in.Protocol) {
	case "", "tcp":
		p.Protocol = "TCP"
	case "udp":
		p.Protocol = "UDP"
	case "sctp":
		p.Protocol = "SCTP"
	default:
		return p, fmt.Errorf("unknown protocol %q: use TCP, UDP or SCTP", in.Protocol)
	}
	if in.Port == nil {
		if in.EndPort != nil {
			return p, fmt.Errorf("endPort %d without port: give port as the start of the range", *in.EndPort)
		}
		return p, nil
	}
	if in.Port.Name != "" {
		return p, fmt.Errorf("port %q: named ports are not supported (Docker containers have no port names): give the number", in.Port.Name)
	}
	if in.Port.Number < 1 || in.Port.Number > 65535 {
		return p, fmt.Errorf("port %d is out of range 1-65535", in.Port.Number)
	}
	p.Port = uint16(in.Port.Number)
	if in.EndPort != nil {
		switch e := *in.EndPort; {
		case e > 65535:
			return p, fmt.Errorf("endPort %d is out of range 1-65535", e)
		case e < in.Port.Number:
			return p, fmt.Errorf("endPort %d is below port %d", e, in.Port.Number)
		case e > in.Port.Number:
			p.EndPort = uint16(e)
		}
	}
	return p, nil
}

// validateSelector checks a label selector (keys and values as a
// service's selector terms, store.ValidLabel; Kubernetes' operators) and
// returns its canonical form.
func validateSelector(in admin.LabelSelector) (store.LabelSelector, error) {
	var s store.LabelSelector
	if n := len(in.MatchLabels) + len(in.MatchExpressions); n > store.MaxSelectorTerms {
		return s, fmt.Errorf("%d terms: at most %d", n, store.MaxSelectorTerms)
	}
	for _, k := range slices.Sorted(maps.Keys(in.MatchLabels)) {
		if err := store.ValidLabel(k, in.MatchLabels[k]); err != nil {
			return s, fmt.Errorf("matchLabels: %v", err)
		}
	}
	if len(in.MatchLabels) > 0 {
		s.MatchLabels = maps.Clone(in.MatchLabels)
	}
	for i, r := range in.MatchExpressions {
		var op string
		switch strings.ToLower(r.Operator) {
		case "in":
			op = store.OpIn
		case "notin":
			op = store.OpNotIn
		case "exists":
			op = store.OpExists
		case "doesnotexist":
			op = store.OpDoesNotExist
		default:
			return s, fmt.Errorf("matchExpressions[%d]: operator %q: use In, NotIn, Exists or DoesNotExist", i, r.Operator)
		}
		if err := store.ValidLabel(r.Key, ""); err != nil {
			return s, fmt.Errorf("matchExpressions[%d]: %v", i, err)
		}
		withValues := op == store.OpIn || op == store.OpNotIn
		switch {
		case withValues && len(r.Values) == 0:
			return s, fmt.Errorf("matchExpressions[%d]: %s needs at least one value", i, op)
		case !withValues && len(r.Values) > 0:
			return s, fmt.Errorf("matchExpressions[%d]: %s takes no values", i, op)
		case len(r.Values) > store.MaxSelectorTerms:
			return s, fmt.Errorf("matchExpressions[%d]: %d values: at most %d", i, len(r.Values), store.MaxSelectorTerms)
		}
		for _, v := range r.Values {
			if err := store.ValidLabel(r.Key, v); err != nil {
				return s, fmt.Errorf("matchExpressions[%d]: %v", i, err)
			}
		}
		vals := slices.Clone(r.Values)
		slices.Sort(vals)
		s.MatchExpressions = append(s.MatchExpressions, store.LabelRequirement{Key: r.Key, Operator: op, Values: slices.Compact(vals)})
	}
	return s, nil
}

// SpecOfPolicy is the inverse of ValidatePolicy: the spec of a stored
// policy in its canonical form (applying it again changes nothing).
func SpecOfPolicy(p store.NetworkPolicy) admin.PolicySpec {
	out := admin.PolicySpec{Kind: admin.KindNetworkPolicy, Name: p.Name, PodSelector: selectorSpec(p.PodSelector),
		PolicyTypes: slices.Clone(p.PolicyTypes)}
	for _, r := range p.Ingress {
		peers, ports := ruleSpec(r)
		out.Ingress = append(out.Ingress, admin.PolicyIngressRule{From: peers, Ports: ports})
	}
	for _, r := range p.Egress {
		peers, ports := ruleSpec(r)
		out.Egress = append(out.Egress, admin.PolicyEgressRule{To: peers, Ports: ports})
	}
	return out
}

func selectorSpec(s store.LabelSelector) *admin.LabelSelector {
	out := &admin.LabelSelector{MatchLabels: maps.Clone(s.MatchLabels)}
	for _, r := range s.MatchExpressions {
		out.MatchExpressions = append(out.MatchExpressions, admin.LabelRequirementSpec{Key: r.Key, Operator: r.Operator,
			Values: slices.Clone(r.Values)})
	}
	return out
}

func ruleSpec(r store.PolicyRule) ([]admin.PolicyPeerSpec, []admin.PolicyPortSpec) {
	var peers []admin.PolicyPeerSpec
	for _, p := range r.Peers {
		switch {
		case p.PodSelector != nil:
			peers = append(peers, admin.PolicyPeerSpec{PodSelector: selectorSpec(*p.PodSelector)})
		case p.IPBlock != nil:
			b := &admin.IPBlockSpec{CIDR: p.IPBlock.CIDR.String()}
			for _, e := range p.IPBlock.Except {
				b.Except = append(b.Except, e.String())
			}
			peers = append(peers, admin.PolicyPeerSpec{IPBlock: b})
		}
	}
	var ports []admin.PolicyPortSpec
	for _, p := range r.Ports {
		ps := admin.PolicyPortSpec{Protocol: p.Protocol}
		if p.Port != 0 {
			ps.Port = admin.PortNumber(int(p.Port))
		}
		if p.EndPort != 0 {
			e := int(p.EndPort)
			ps.EndPort = &e
		}
		ports = append(ports, ps)
	}
	return peers, ports
}

// samePolicy compares two canonical policies, timestamps aside.
func samePolicy(a, b store.NetworkPolicy) bool {
	a.Created, a.Updated = b.Created, b.Updated
	x, err1 := json.Marshal(a)
	y, err2 := json.Marshal(b)
	return err1 == nil && err2 == nil && string(x) == string(y)
}
