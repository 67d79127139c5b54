package dataplane

import (
	"github.com/google/nftables/expr"
	"github.com/podnet/podnet/internal/dockerid"
)

// forwardRules isolate networks: an Internal network talks to nothing
// beyond its bridge; other networks do not talk to each other, nor to
// Docker's own bridges (docker0, user-defined bridge networks: Docker
// keeps its bridge networks apart, podnet keeps its own apart from them),
// except through published ports and services (DNATed connections),
// which are meant to be reachable from everywhere, as Kubernetes
// hostPorts are. Nothing outside opens a connection straight to a
// container of a single-host network either (Docker 28 drops such
// "direct routing" too): only its published ports answer. Multi-host
// (vxlan) networks stay routed between hosts. The rules are the section
// isolation of the forward base chain (filter_hooks.go), before its
// established check (they drop established traffic too); where they pass
// a packet they return, so that the guard and the policy still decide.
func forwardRules(prefix string, nets []Network) []ruleDef {
	var rules []ruleDef
	for _, n := range nets {
		if n.Internal {
			id := dockerid.Short(n.ID)
			out := []frag{iif(n.Bridge), oifNot(n.Bridge)}
			in := []frag{oif(n.Bridge), iifNot(n.Bridge)}
			if n.Uplink != "" {
				out = append(out, oifNot(n.Uplink))
				in = append(in, iifNot(n.Uplink))
			}
			rules = append(rules,
				newRule(chainIsolation, "internal net "+id, append(out, verdict(expr.VerdictDrop))...),
				newRule(chainIsolation, "internal net "+id, append(in, verdict(expr.VerdictDrop))...))
		}
	}
	drop := verdict(expr.VerdictDrop)
	rules = append(rules, newRule(chainIsolation, "published ports", ctStatusDNAT(), verdict(expr.VerdictReturn)))
	for _, n := range nets {
		rules = append(rules, newRule(chainIsolation, "isolate net "+dockerid.Short(n.ID),
			iif(n.Bridge), oif(prefix+"*"), oifNot(n.Bridge), drop))
	}
	for _, br := range dockerBridges {
		rules = append(rules,
			newRule(chainIsolation, "podnet and Docker bridges apart", iif(prefix+"*"), oif(br), drop),
			newRule(chainIsolation, "podnet and Docker bridges apart", iif(br), oif(prefix+"*"), drop))
	}
	for _, n := range nets {
		if n.Uplink != "" || n.LAN || n.Internal {
			continue
		}
		// Replies to the containers' own connections are established;
		// their neighbours are bridged (in = out = the bridge).
		rules = append(rules, newRule(chainIsolation, "no direct access net "+dockerid.Short(n.ID),
			oif(n.Bridge), iifNot(n.Bridge), ctStateNew(), drop))
	}
	return rules
}
