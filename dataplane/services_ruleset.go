package dataplane

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
)

// serviceNetworkSets are the sets the source NAT of service connections
// reads, built from the networks: pods4/pods6, the subnets of multi-host
// networks (every host routes them back to their owner), and
// tunnel4/tunnel6, from each such subnet to this host's tunnel address in
// it.
func serviceNetworkSets(nets []Network) []setDef {
	var pods [2][]netip.Prefix
	var tunnels [2][]tunnelRange
	for _, n := range nets {
		if n.Uplink == "" {
			continue
		}
		for _, p := range n.Subnets {
			i := famIndex(p.Addr())
			pods[i] = append(pods[i], p.Masked())
			for _, a := range n.TunnelAddrs {
				if p.Contains(a) {
					tunnels[i] = append(tunnels[i], tunnelRange{p.Masked(), a})
					break
				}
			}
		}
	}
	same := setDef{name: setSameBridge, keyType: nftables.MustConcatSetType(nftables.TypeIFName, nftables.TypeIFName),
		typeText: "type ifname . ifname"}
	for _, n := range nets {
		name := make([]byte, ifNameLen)
		copy(name, n.Bridge)
		same.elems = append(same.elems, element{set: setSameBridge, key: append(slices.Clone(name), name...),
			text: fmt.Sprintf("%q . %q", n.Bridge, n.Bridge)})
	}
	out := []setDef{same}
	for i, f := range []family{ipv4, ipv6} {
		out = append(out, setDef{name: podsSet(f), keyType: addrType(f), interval: true,
			typeText: "type " + addrTypeText(f), elems: subnetElements(podsSet(f), pods[i])})
	}
	for i, f := range []family{ipv4, ipv6} {
		out = append(out, setDef{name: tunnelMap(f), keyType: addrType(f), dataType: addrType(f), isMap: true, interval: true,
			typeText: fmt.Sprintf("type %s : %s", addrTypeText(f), addrTypeText(f)), elems: tunnelElements(tunnelMap(f), tunnels[i])})
	}
	return out
}

func famIndex(a netip.Addr) int {
	if a.Is4() {
		return 0
	}
	return 1
}

func podsSet(f family) string   { return pick4or6(f, setPods4, setPods6) }
func tunnelMap(f family) string { return pick4or6(f, mapTunnel4, mapTunnel6) }

type tunnelRange struct {
	subnet netip.Prefix
	addr   netip.Addr
}

// tunnelElements is subnetElements with a value on each interval.
func tunnelElements(set string, rs []tunnelRange) []element {
	var ps []netip.Prefix
	val := map[netip.Prefix]netip.Addr{}
	for _, r := range rs {
		ps = append(ps, r.subnet)
		val[r.subnet] = r.addr
	}
	out := subnetElements(set, ps)
	for i, el := range out {
		if el.keyEnd {
			continue
		}
		a, _ := netip.AddrFromSlice(el.key)
		for p, v := range val {
			if p.Addr() == a {
				out[i].val = v.AsSlice()
				out[i].text = fmt.Sprintf("%s : %s", el.text, v)
			}
		}
	}
	return out
}

// serviceSNATRules is chain snat-services, which postrouting jumps to for
// the first packet of every connection a service rule DNATed. Each rule
// ends the decision (see "Services across hosts" in the package doc):
//
//   - a container reaching itself through its service is masqueraded (a
//     packet from its own address would be dropped as martian);
//   - a container reaching an endpoint on its own bridge is masqueraded
//     only when the reply would bypass the host: the rule matches routed
//     packets (input and output interface the same bridge, one lookup in
//     set samebridge whatever the number of networks); with
//     br_netfilter the frame is bridged, has no input interface here, and
//     conntrack undoes the DNAT on the bridged reply, so the client keeps
//     its address;
//   - other local endpoints, and the host itself, see the client as is;
//   - a local container reaching a pod on another host keeps its address
//     (the pod network routes it back here);
//   - anything else going to a pod on another host (the host's own
//     connections, NodePort and external-IP clients, containers of
//     single-host networks) leaves with this host's tunnel address in the
//     endpoint's network, which routes the reply back here; without one,
//     or towards a host-network endpoint, it is masqueraded.
func serviceSNATRules(prefix string) []ruleDef {
	return []ruleDef{
		newRule(chainSvcSNAT, "", addrPairInSet(ipv4, setSvcHairpin4), masquerade()),
		newRule(chainSvcSNAT, "", addrPairInSet(ipv6, setSvcHairpin6), masquerade()),
		newRule(chainSvcSNAT, "", ifnamePairInSet(setSameBridge), masquerade()),
		newRule(chainSvcSNAT, "", oif(prefix+"*"), verdict(expr.VerdictAccept)),
		newRule(chainSvcSNAT, "", oif("lo"), verdict(expr.VerdictAccept)),
		newRule(chainSvcSNAT, "", iif(prefix+"*"), addrInSet(ipv4, saddr, setPods4), addrInSet(ipv4, daddr, setPods4),
			verdict(expr.VerdictAccept)),
		newRule(chainSvcSNAT, "", iif(prefix+"*"), addrInSet(ipv6, saddr, setPods6), addrInSet(ipv6, daddr, setPods6),
			verdict(expr.VerdictAccept)),
		newRule(chainSvcSNAT, "", snatViaMap(ipv4, mapTunnel4)),
		newRule(chainSvcSNAT, "", snatViaMap(ipv6, mapTunnel6)),
		newRule(chainSvcSNAT, "", masquerade()),
	}
}

// addServiceSection appends the service section to rs: all of it from t,
// or, without t, the skeleton the other rules refer to.
func addServiceSection(rs *ruleset, t *svcTable) {
	var sets []setDef
	var chains []chainDef
	var rules []ruleDef
	if t == nil {
		sets, chains, rules = serviceSkeleton()
	} else {
		sets, chains, rules, rs.sums = t.section()
	}
	rs.sets = append(rs.sets, sets...)
	rs.chains = append(rs.chains, chains...)
	rs.rules = append(rs.rules, rules...)
}

// nftDuration prints d as nft lists timeouts: "3h", "1h30m", "1d2h3m4s500ms".
func nftDuration(d time.Duration) string {
	ms := d.Milliseconds()
	var b strings.Builder
	for _, u := range []struct {
		ms   int64
		unit string
	}{{86400000, "d"}, {3600000, "h"}, {60000, "m"}, {1000, "s"}, {1, "ms"}} {
		if n := ms / u.ms; n > 0 {
			fmt.Fprintf(&b, "%d%s", n, u.unit)
			ms -= n * u.ms
		}
	}
	if b.Len() == 0 {
		return "0s"
	}
	return b.String()
}
