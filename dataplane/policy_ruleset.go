package dataplane

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
)

// Names of the network policy objects in podnet's table. Every one starts
// with "np-", so that a Sync of the rest of the table leaves them alone
// until SetPolicy has said what they should be (a restarted podnetd keeps
// enforcing the previous one's rules meanwhile). Never rename: a
// restarted podnetd finds the previous one's objects by these names.
const (
	polPrefix           = "np-"
	chainPolForward     = "np-forward"     // section of forward: egress of local endpoints, then ingress
	chainPolInput       = "np-input"       // section of input: egress of local endpoints to this host
	chainPolPendingIn   = "np-pending-in"  // endpoints whose labels are not known yet
	chainPolPendingOut  = "np-pending-out" //
	chainPolDenyIn      = "np-deny-in"     // the log of denied packets, then drop
	chainPolDenyOut     = "np-deny-out"    //
	counterPendingIn    = "np-c-pending-in"
	counterPendingOut   = "np-c-pending-out"
	maxPolicyObjectName = 40
)

// isPolicyObject tells the network policy section's chains, sets and
// counters from the rest of the table.
func isPolicyObject(name string) bool { return strings.HasPrefix(name, polPrefix) }

// polMap is the dispatch map of one direction and family: local endpoint
// address → its group chain (np-in4, np-out6...).
func polMap(f family, egress bool) string {
	return polPrefix + dirWord(egress) + map[family]string{ipv4: "4", ipv6: "6"}[f]
}

func dirWord(egress bool) string {
	if egress {
		return "out"
	}
	return "in"
}

// polSelf is the set of local endpoint . itself (traffic to itself).
func polSelf(f family) string { return polPrefix + "self" + map[family]string{ipv4: "4", ipv6: "6"}[f] }

func famDigit(f family) string {
	if f == ipv6 {
		return "6"
	}
	return "4"
}

// groupChain is the chain of a group's rules for one family:
// np-i4-<id> (ingress), np-e6-<id> (egress).
func groupChain(g PolicyGroup, f family) string {
	d := "i"
	if g.Egress {
		d = "e"
	}
	return polPrefix + d + famDigit(f) + "-" + objectID(g.ID)
}

// addrSetName and rangeSetName name a peer set for one family.
func addrSetName(id string, f family) string {
	return polPrefix + "a" + famDigit(f) + "-" + objectID(id)
}
func rangeSetName(id string, f family) string {
	return polPrefix + "r" + famDigit(f) + "-" + objectID(id)
}

// counterName is a policy's denied-packet counter for one direction.
func counterName(policy string, egress bool) string {
	return polPrefix + "c-" + hashName(policy) + "-" + dirWord(egress)
}

// objectID is id when it is short and plain, else a hash of it.
func objectID(id string) string {
	if len(id) == 0 || len(id) > maxPolicyObjectName-8 || id[0] == '-' {
		return hashName(id)
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return hashName(id)
		}
	}
	return id
}

func hashName(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:6])
}

// policySection is the network policy part of the table as data.
type policySection struct {
	sets     []setDef
	chains   []chainDef
	rules    []ruleDef
	counters []string
}

// polCounter says what a counter counts.
type polCounter struct {
	policy string // "" for the pending counters
	egress bool
}

// policySkeleton is what exists whatever the policies: the dispatch chains
// (sections of the input and forward base chains, filter_hooks.go, which
// accept established and related traffic before them),
// the dispatch maps (empty), the self sets, the pending and deny chains
// and their counters. A restarted podnetd finds it (or creates it) before
// its first SetPolicy, so the driver can isolate a new endpoint at once.
func policySkeleton(log bool) policySection {
	var s policySection
	for _, f := range []family{ipv4, ipv6} {
		for _, eg := range []bool{false, true} {
			s.sets = append(s.sets, setDef{name: polMap(f, eg), keyType: addrType(f), dataType: nftables.TypeVerdict,
				isMap: true, typeText: "type " + addrTypeText(f) + " : verdict"})
		}
	}
	for _, f := range []family{ipv4, ipv6} {
		s.sets = append(s.sets, setDef{name: polSelf(f), keyType: nftables.MustConcatSetType(addrType(f), addrType(f)),
			typeText: fmt.Sprintf("type %s . %s", addrTypeText(f), addrTypeText(f))})
	}
	s.chains = []chainDef{
		{name: chainPolForward}, {name: chainPolInput},
		{name: chainPolPendingIn}, {name: chainPolPendingOut}, {name: chainPolDenyIn}, {name: chainPolDenyOut},
	}
	accept := verdict(expr.VerdictAccept)
	s.rules = []ruleDef{
		// Policies decide a connection's first packet only: replies and
		// the rest of allowed connections were accepted before the jump
		// here. The section is the last of its base chain, so its
		// accepts are the chain's verdict, as they were when it was a
		// base chain of its own.
		// Without neighbor discovery an IPv6 container reaches nothing
		// (with br_netfilter, solicitations between containers of one
		// bridge cross this hook too).
		newRule(chainPolForward, "", icmpv6ND(), accept),
		// Egress of local endpoints (jump: a pass returns here, to the
		// destination's ingress), then ingress of local endpoints.
		newRule(chainPolForward, "", addrVmap(ipv4, saddr, polMap(ipv4, true))),
		newRule(chainPolForward, "", addrVmap(ipv6, saddr, polMap(ipv6, true))),
		newRule(chainPolForward, "", addrVmap(ipv4, daddr, polMap(ipv4, false))),
		newRule(chainPolForward, "", addrVmap(ipv6, daddr, polMap(ipv6, false))),
		newRule(chainPolInput, "", icmpv6ND(), accept),
		newRule(chainPolInput, "", addrVmap(ipv4, saddr, polMap(ipv4, true))),
		newRule(chainPolInput, "", addrVmap(ipv6, saddr, polMap(ipv6, true))),
		newRule(chainPolPendingIn, "", counterRefs([]string{counterPendingIn}), verdict(expr.VerdictDrop)),
		newRule(chainPolPendingOut, "", counterRefs([]string{counterPendingOut}), verdict(expr.VerdictDrop)),
	}
	for _, eg := range []bool{false, true} {
		chain, prefix := chainPolDenyIn, PolicyLogPrefixIn
		if eg {
			chain, prefix = chainPolDenyOut, PolicyLogPrefixOut
		}
		if log {
			s.rules = append(s.rules, newRule(chain, "", logDenied(prefix)))
		}
		s.rules = append(s.rules, newRule(chain, "", verdict(expr.VerdictDrop)))
	}
	s.counters = []string{counterPendingIn, counterPendingOut}
	return s
}

// buildPolicySection is the whole section for p: the skeleton, the
// dispatch and self elements, a chain per group and family in use, the
// peer sets those chains name, and a counter per policy and direction.
// Deterministic: groups, sets and policies in ID order.
func buildPolicySection(p *Policy, ctr *policyCounters) policySection {
	s := policySkeleton(p.Log)
	s.counters = append(s.counters, ctr.names...)
	groups := map[string]PolicyGroup{}
	for _, g := range p.Groups {
		groups[g.ID] = g
	}
	// Which group chains exist: one per group and family some endpoint
	// of that family uses.
	used := map[string]map[family]bool{}
	elems := map[string][]element{}
	for _, ep := range p.Endpoints {
		for _, a := range ep.Addrs {
			a = a.Unmap()
			f := familyOf(a)
			isolated := false
			for _, eg := range []bool{false, true} {
				id := ep.Ingress
				if eg {
					id = ep.Egress
				}
				target := ""
				switch {
				case id == "":
					continue
				case id == PolicyPending:
					target = chainPolPendingIn
					if eg {
						target = chainPolPendingOut
					}
				default:
					g, ok := groups[id]
					if !ok {
						continue // refused by validatePolicy
					}
					if used[id] == nil {
						used[id] = map[family]bool{}
					}
					used[id][f] = true
					target = groupChain(g, f)
					isolated = true
				}
				m := polMap(f, eg)
				elems[m] = append(elems[m], dispatchVerdictElement(m, a, target, eg))
			}
			if isolated {
				elems[polSelf(f)] = append(elems[polSelf(f)], element{set: polSelf(f), key: append(a.AsSlice(), a.AsSlice()...),
					text: fmt.Sprintf("%s . %s", a, a)})
			}
		}
	}
	setsUsed := map[string]bool{}
	for _, id := range sortedKeys(groups) {
		g := groups[id]
		for _, f := range []family{ipv4, ipv6} {
			if !used[id][f] {
				continue
			}
			chain := groupChain(g, f)
			s.chains = append(s.chains, chainDef{name: chain})
			rules, sets := groupRules(g, f, chain, p, p.Log)
			s.rules = append(s.rules, rules...)
			for _, n := range sets {
				setsUsed[n] = true
			}
		}
	}
	for _, id := range sortedKeys(p.AddrSets) {
		for _, f := range []family{ipv4, ipv6} {
			if len(setsUsed) == 0 {
				break
			}
			name := addrSetName(id, f)
			if !setsUsed[name] {
				continue
			}
			sd := setDef{name: name, keyType: addrType(f), typeText: "type " + addrTypeText(f)}
			for _, a := range uniqueAddrs(p.AddrSets[id]) {
				if familyOf(a) == f {
					sd.elems = append(sd.elems, element{set: name, key: a.AsSlice(), text: a.String()})
				}
			}
			s.sets = append(s.sets, sd)
		}
	}
	for _, id := range sortedKeys(p.RangeSets) {
		rs := p.RangeSets[id]
		if len(rs) == 0 {
			continue
		}
		f := familyOf(rs[0].First)
		name := rangeSetName(id, f)
		if !setsUsed[name] {
			continue
		}
		s.sets = append(s.sets, setDef{name: name, keyType: addrType(f), interval: true, typeText: "type " + addrTypeText(f),
			elems: rangeElements(name, rs)})
	}
	for i := range s.sets {
		if e := elems[s.sets[i].name]; len(e) > 0 {
			s.sets[i].elems = e
		}
	}
	return s
}

// policyCounters are the denied-packet counters of a list of policies.
type policyCounters struct {
	policies []string              // sorted, each once
	names    []string              // two per policy: ingress, egress
	byName   map[string]polCounter // every counter, the pending ones too
}

// countersFor returns prev when policies are the same ones (a container
// start changes no policy: hashing 2000 names and building their map per
// pass would cost more than the rest of it), else the counters of
// policies, reusing prev's names.
func countersFor(policies []string, prev *policyCounters) *policyCounters {
	sorted := uniqueSorted(slices.Clone(policies))
	if prev != nil && slices.Equal(sorted, prev.policies) {
		return prev
	}
	known := map[polCounter]string{}
	if prev != nil {
		for name, c := range prev.byName {
			known[c] = name
		}
	}
	out := &policyCounters{policies: sorted,
		byName: map[string]polCounter{counterPendingIn: {}, counterPendingOut: {egress: true}}}
	for _, name := range sorted {
		for _, eg := range []bool{false, true} {
			k := polCounter{policy: name, egress: eg}
			c, ok := known[k]
			if !ok {
				c = counterName(name, eg)
			}
			out.byName[c] = k
			out.names = append(out.names, c)
		}
	}
	return out
}

// groupRules are the rules of g's chain for family f, and the peer sets
// they name. A rule passes on a match (accept for ingress; return for
// egress, so the destination's ingress is checked next); the last rule
// counts the packet against each of the group's policies and drops it.
func groupRules(g PolicyGroup, f family, chain string, p *Policy, log bool) ([]ruleDef, []string) {
	peerField, pass := saddr, verdict(expr.VerdictAccept)
	if g.Egress {
		peerField, pass = daddr, verdict(expr.VerdictReturn)
	}
	rules := []ruleDef{newRule(chain, "", addrPairInSet(f, polSelf(f)), pass)}
	var sets []string
	for _, r := range g.Rules {
		var peers []frag
		for _, id := range r.Peers {
			if _, ok := p.AddrSets[id]; ok {
				n := addrSetName(id, f)
				peers = append(peers, addrInSet(f, peerField, n))
				sets = append(sets, n)
			} else if rs := p.RangeSets[id]; len(rs) > 0 && familyOf(rs[0].First) == f {
				n := rangeSetName(id, f)
				peers = append(peers, addrInSet(f, peerField, n))
				sets = append(sets, n)
			}
		}
		if len(r.Peers) > 0 && len(peers) == 0 {
			continue // no peer of this family: the rule passes nothing here
		}
		if len(peers) == 0 {
			peers = []frag{{}}
		}
		var ports []frag
		byProto := sortedPorts(r.Ports)
		for _, proto := range []Proto{TCP, UDP, SCTP} {
			if rs, ok := byProto[proto]; ok {
				ports = append(ports, portsMatch(proto, rs))
			}
		}
		if len(ports) == 0 {
			ports = []frag{{}}
		}
		for _, pf := range peers {
			for _, portf := range ports {
				rules = append(rules, newRule(chain, "", pf, portf, pass))
			}
		}
	}
	var names []string
	for _, pol := range g.Policies {
		names = append(names, counterName(pol, g.Egress))
	}
	deny := chainPolDenyIn
	if g.Egress {
		deny = chainPolDenyOut
	}
	rules = append(rules, newRule(chain, "", counterRefs(names), gotoChain(deny)))
	return rules, sets
}

func dispatchVerdictElement(set string, a netip.Addr, chain string, jumpTo bool) element {
	v := &expr.Verdict{Kind: expr.VerdictGoto, Chain: chain}
	word := "goto "
	if jumpTo {
		v.Kind, word = expr.VerdictJump, "jump "
	}
	return element{set: set, key: a.AsSlice(), verdict: v, text: a.String() + " : " + word + chain}
}

// rangeElements are interval-set elements for address ranges, as nft
// builds them (see subnetElements), listed as nft lists them: a prefix
// when the range is one, else first-last.
func rangeElements(set string, rs []AddrRange) []element {
	var out []element
	if !rs[0].First.IsUnspecified() {
		zero := netip.IPv4Unspecified()
		if rs[0].First.Is6() {
			zero = netip.IPv6Unspecified()
		}
		out = append(out, element{set: set, key: zero.AsSlice(), keyEnd: true})
	}
	for _, r := range rs {
		out = append(out, element{set: set, key: r.First.AsSlice(), text: rangeText(r)})
		if next := r.Last.Next(); next.IsValid() {
			out = append(out, element{set: set, key: next.AsSlice(), keyEnd: true})
		}
	}
	return out
}

func rangeText(r AddrRange) string {
	if r.First == r.Last {
		return r.First.String()
	}
	for bits := 0; bits <= r.First.BitLen(); bits++ {
		p := netip.PrefixFrom(r.First, bits)
		if p.Masked().Addr() == r.First && lastAddr(p) == r.Last {
			return p.String()
		}
	}
	return r.First.String() + "-" + r.Last.String()
}

func uniqueAddrs(in []netip.Addr) []netip.Addr {
	out := make([]netip.Addr, 0, len(in))
	for _, a := range in {
		if a.IsValid() {
			out = append(out, a.Unmap())
		}
	}
	slices.SortFunc(out, netip.Addr.Compare)
	return slices.Compact(out)
}
