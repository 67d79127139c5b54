package dataplane

import (
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/podnet/podnet/internal/dockerid"
)

// Chain names in podnet's table. Never rename (see the map names).
const (
	chainPublished   = "published"   // DNAT through the published-port maps
	chainPrerouting  = "prerouting"  // nat: traffic from outside and from containers
	chainOutput      = "output"      // nat: the host's own connections
	chainPostrouting = "postrouting" // nat: masquerade, hairpin, localhost
	chainForward     = "forward"     // filter: every forward rule, in sections (filter_hooks.go)
	chainInput       = "input"       // filter: every input rule, in sections
	chainIsolation   = "isolation"   // section of forward: isolation between networks
)

// ruleset is podnet's whole nftables table as data: built from the desired
// state by buildRuleset (pure, unit-tested) and loaded by the kernel side
// in one batch.
type ruleset struct {
	table  string
	sets   []setDef
	chains []chainDef
	rules  []ruleDef
	// sums are the element sums of the service sets (with the whole
	// service section), and trustSums whether the sync may believe the
	// kernel's (see services_sums.go).
	sums      map[string]elemSum
	trustSums bool
	// keep are chains outside the service section that the sync may leave
	// as the kernel has them (an engine's first Replace: chain_sums.go).
	keep map[string]bool
	// counters are named counter objects (the policy section's).
	counters []string
}

type setDef struct {
	name     string
	keyType  nftables.SetDatatype
	dataType nftables.SetDatatype // maps only
	isMap    bool
	interval bool
	typeText string // as `nft list` prints it
	elems    []element
	// dynamic sets are filled by rules (`update @set`), with a timeout
	// per element and nft's default size for them.
	dynamic bool
	timeout time.Duration
}

type chainDef struct {
	name     string
	hook     *nftables.ChainHook
	priority *nftables.ChainPriority
	kind     nftables.ChainType
	header   string // as `nft list` prints it; empty for regular chains
}

// endpointState is what the engine remembers of one endpoint.
type endpointState struct {
	networkID string
	mappings  []Mapping
}

// rulesetInput is the desired state buildRuleset turns into rules.
type rulesetInput struct {
	table        string
	bridgePrefix string
	nets         map[string]Network
	eps          map[string]endpointState
	guard        guardState
	// services, when set, puts the whole service section in the ruleset;
	// without it only the objects the other rules refer to are included.
	services *svcTable
	// trustSums lets the sync skip listing the service sets whose sum in
	// the kernel's svc-sums is the wanted one (services_sums.go).
	trustSums bool
	// policy, when set, is the whole network policy section; without it,
	// its skeleton.
	policy *policySection
}

// mapDefs are the four published-port maps, without elements.
func mapDefs() []setDef {
	typePortKey := nftables.MustConcatSetType(nftables.TypeInetProto, nftables.TypeInetService)
	typeAddr4Key := nftables.MustConcatSetType(nftables.TypeIPAddr, nftables.TypeInetProto, nftables.TypeInetService)
	typeAddr6Key := nftables.MustConcatSetType(nftables.TypeIP6Addr, nftables.TypeInetProto, nftables.TypeInetService)
	typeDest4 := nftables.MustConcatSetType(nftables.TypeIPAddr, nftables.TypeInetService)
	typeDest6 := nftables.MustConcatSetType(nftables.TypeIP6Addr, nftables.TypeInetService)
	return []setDef{
		{name: mapPub4Addr, keyType: typeAddr4Key, dataType: typeDest4, isMap: true,
			typeText: "type ipv4_addr . inet_proto . inet_service : ipv4_addr . inet_service"},
		{name: mapPub4Any, keyType: typePortKey, dataType: typeDest4, isMap: true,
			typeText: "type inet_proto . inet_service : ipv4_addr . inet_service"},
		{name: mapPub6Addr, keyType: typeAddr6Key, dataType: typeDest6, isMap: true,
			typeText: "type ipv6_addr . inet_proto . inet_service : ipv6_addr . inet_service"},
		{name: mapPub6Any, keyType: typePortKey, dataType: typeDest6, isMap: true,
			typeText: "type inet_proto . inet_service : ipv6_addr . inet_service"},
	}
}

// buildRuleset returns the complete table for in. Output is deterministic:
// networks and endpoints are visited in ID order.
func buildRuleset(in rulesetInput) *ruleset {
	rs := &ruleset{table: in.table, trustSums: in.trustSums && in.services != nil}
	nets := sortedNetworks(in.nets)

	var sub4, sub6 []netip.Prefix
	for _, n := range nets {
		if n.LAN {
			continue // not routed pod subnets (see Network.LAN)
		}
		for _, p := range n.Subnets {
			if p.Addr().Is4() {
				sub4 = append(sub4, p)
			} else {
				sub6 = append(sub6, p)
			}
		}
	}
	rs.sets = append(rs.sets,
		setDef{name: setSubnets4, keyType: nftables.TypeIPAddr, interval: true,
			typeText: "type ipv4_addr", elems: subnetElements(setSubnets4, sub4)},
		setDef{name: setSubnets6, keyType: nftables.TypeIP6Addr, interval: true,
			typeText: "type ipv6_addr", elems: subnetElements(setSubnets6, sub6)},
	)
	maps := mapDefs()
	seen := map[string]bool{}
	for _, id := range sortedKeys(in.eps) {
		for _, m := range in.eps[id].mappings {
			el := mappingElement(m, id)
			// Publish never lets two endpoints share a key, but restored
			// state might; one duplicate must not fail the whole batch.
			if seen[el.id()] {
				continue
			}
			seen[el.id()] = true
			for i := range maps {
				if maps[i].name == el.set {
					maps[i].elems = append(maps[i].elems, el)
				}
			}
		}
	}
	rs.sets = append(rs.sets, maps...)
	rs.sets = append(rs.sets, serviceNetworkSets(nets)...)

	rs.chains = []chainDef{
		{name: chainPublished},
		{name: chainPrerouting, hook: nftables.ChainHookPrerouting, priority: nftables.ChainPriorityNATDest,
			kind: nftables.ChainTypeNAT, header: "type nat hook prerouting priority dstnat; policy accept;"},
		{name: chainOutput, hook: nftables.ChainHookOutput, priority: nftables.ChainPriorityNATDest,
			kind: nftables.ChainTypeNAT, header: "type nat hook output priority -100; policy accept;"},
		{name: chainPostrouting, hook: nftables.ChainHookPostrouting, priority: nftables.ChainPriorityNATSource,
			kind: nftables.ChainTypeNAT, header: "type nat hook postrouting priority srcnat; policy accept;"},
	}
	rs.chains = append(rs.chains, filterHookChains()...)
	rs.chains = append(rs.chains, chainDef{name: chainIsolation}, chainDef{name: chainSvcSNAT})
	rs.rules = append(rs.rules, filterHookRules()...)
	rs.rules = append(rs.rules, controlRules(chainPrerouting, in.guard)...)
	rs.rules = append(rs.rules, controlRules(chainOutput, in.guard)...)
	rs.rules = append(rs.rules, publishRules()...)
	rs.rules = append(rs.rules, postroutingRules(in.bridgePrefix, nets)...)
	rs.rules = append(rs.rules, forwardRules(in.bridgePrefix, nets)...)
	rs.sets = append(rs.sets, guardSets(in.guard)...)
	rs.chains = append(rs.chains, guardChains()...)
	rs.rules = append(rs.rules, guardRules(in.guard, in.bridgePrefix)...)
	guardLocalnet(rs, in.bridgePrefix)
	rs.rules = append(rs.rules, serviceSNATRules(in.bridgePrefix)...)
	addServiceSection(rs, in.services)
	pol := in.policy
	if pol == nil {
		sk := policySkeleton(false)
		pol = &sk
	}
	rs.sets = append(rs.sets, pol.sets...)
	rs.chains = append(rs.chains, pol.chains...)
	rs.rules = append(rs.rules, pol.rules...)
	rs.counters = append(rs.counters, pol.counters...)
	return rs
}

// publishRules DNAT connections to a local address through the maps; the
// maps with a host address come first so a specific binding wins over a
// wildcard one on the same port.
func publishRules() []ruleDef {
	var rules []ruleDef
	for _, f := range []family{ipv4, ipv6} {
		rules = append(rules,
			newRule(chainPublished, "", dnatViaMap(f, keyAddrPort, mapName(f, keyAddrPort))),
			// The address-less lookup matches IPv6 packets too; the nat
			// statement would then skip them, but say it explicitly.
			newRule(chainPublished, "", nfproto(f), dnatViaMap(f, keyPort, mapName(f, keyPort))),
		)
	}
	return append(rules,
		newRule(chainPrerouting, "", jump(chainServices)),
		newRule(chainPrerouting, "", fibDaddrLocal(), jump(chainPublished)),
		newRule(chainOutput, "", jump(chainServices)),
		// A packet from ::1 cannot leave the host (IPv6 has no
		// route_localnet), so leave [::1]:port to local listeners.
		newRule(chainOutput, "", addrIn(daddr, netip.PrefixFrom(netip.IPv6Loopback(), 128)), verdict(expr.VerdictReturn)),
		newRule(chainOutput, "", fibDaddrLocal(), jump(chainPublished)),
	)
}

// postroutingRules masquerade:
//   - every DNATed connection into a LAN network's host-access shim
//     (Network.LAN), before the service rules decide: its container
//     answers through the LAN, not through this host;
//   - the host's 127.0.0.1 connections to published ports (the container
//     could not answer 127.0.0.1);
//   - hairpin connections: a container reaching a published port of a
//     container on its own bridge must see replies come from the host
//     address it dialled. They are recognised by source subnet and output
//     bridge, not by `iifname == oifname`: with br_netfilter (loaded by
//     dockerd) a DNATed frame whose new destination sits on the same
//     bridge is bridged, not routed, and its postrouting hook has no input
//     interface;
//   - each masquerading network's traffic to destinations outside every
//     podnet subnet.
func postroutingRules(prefix string, nets []Network) []ruleDef {
	// LAN shims first, before services decide (see Network.LAN): the
	// container's reply must come back through this host, published port
	// or service alike.
	var rules []ruleDef
	for _, n := range nets {
		if n.LAN {
			rules = append(rules, newRule(chainPostrouting, "lan net "+dockerid.Short(n.ID), ctStatusDNAT(), oif(n.Bridge), masquerade()))
		}
	}
	rules = append(rules,
		newRule(chainPostrouting, "", ctMarkHasService(), jump(chainSvcSNAT)),
		newRule(chainPostrouting, "localhost to published ports",
			addrIn(saddr, netip.MustParsePrefix("127.0.0.0/8")), oif(prefix+"*"), masquerade()),
	)
	for _, n := range nets {
		if n.LAN {
			continue
		}
		id := dockerid.Short(n.ID)
		subnets := sortedPrefixes(n.Subnets)
		for _, p := range subnets {
			rules = append(rules, newRule(chainPostrouting, "hairpin net "+id,
				ctStatusDNAT(), addrIn(saddr, p), oif(n.Bridge), masquerade()))
		}
		if !n.Masquerade {
			continue
		}
		for _, p := range subnets {
			set := setSubnets4
			if !p.Addr().Is4() {
				set = setSubnets6
			}
			rules = append(rules, newRule(chainPostrouting, "masquerade net "+id,
				addrIn(saddr, p), addrNotInSet(familyOf(p.Addr()), daddr, set), oifNot(n.Bridge), masquerade()))
		}
	}
	return rules
}

// String renders rs roughly as `nft list table` does (elements in order
// of insertion); used in logs and test failure messages.
func (rs *ruleset) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "table inet %s {\n", rs.table)
	blank := ""
	for _, c := range rs.counters {
		fmt.Fprintf(&b, "%s\tcounter %s {\n\t\tpackets 0 bytes 0\n\t}\n", blank, c)
		blank = "\n"
	}
	for _, s := range rs.sets {
		kind := "set"
		if s.isMap {
			kind = "map"
		}
		fmt.Fprintf(&b, "%s\t%s %s {\n\t\t%s\n", blank, kind, s.name, s.typeText)
		blank = "\n"
		if s.interval {
			b.WriteString("\t\tflags interval\n")
		}
		if s.dynamic {
			fmt.Fprintf(&b, "\t\tsize %d\n\t\tflags dynamic,timeout\n\t\ttimeout %s\n", dynamicSetSize, nftDuration(s.timeout))
		}
		if texts := elementTexts(s.elems); len(texts) > 0 {
			fmt.Fprintf(&b, "\t\telements = { %s }\n", strings.Join(texts, ", "))
		}
		b.WriteString("\t}\n")
	}
	for _, c := range rs.chains {
		fmt.Fprintf(&b, "%s\tchain %s {\n", blank, c.name)
		blank = "\n"
		if c.header != "" {
			fmt.Fprintf(&b, "\t\t%s\n", c.header)
		}
		for _, r := range rs.rules {
			if r.chain == c.name {
				fmt.Fprintf(&b, "\t\t%s\n", r.text)
			}
		}
		b.WriteString("\t}\n")
	}
	b.WriteString("}\n")
	return b.String()
}

// elementTexts is how nft lists elements: interval end markers are not
// shown, comments follow the key.
func elementTexts(elems []element) []string {
	var out []string
	for _, el := range elems {
		if el.keyEnd {
			continue
		}
		out = append(out, elementText(el))
	}
	return out
}

func elementText(el element) string {
	if el.comment == "" {
		return el.text
	}
	key, val, isMap := strings.Cut(el.text, " : ")
	if !isMap {
		return fmt.Sprintf("%s comment %q", el.text, el.comment)
	}
	return fmt.Sprintf("%s comment %q : %s", key, el.comment, val)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func sortedNetworks(m map[string]Network) []Network {
	out := make([]Network, 0, len(m))
	for _, k := range sortedKeys(m) {
		out = append(out, m[k])
	}
	return out
}

func sortedPrefixes(ps []netip.Prefix) []netip.Prefix {
	out := slices.Clone(ps)
	sortPrefixes(out)
	return out
}

func sortPrefixes(ps []netip.Prefix) {
	slices.SortFunc(ps, func(a, b netip.Prefix) int {
		if c := a.Addr().Compare(b.Addr()); c != 0 {
			return c
		}
		return a.Bits() - b.Bits()
	})
}
