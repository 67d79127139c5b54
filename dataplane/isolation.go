package dataplane

import (
	"github.com/google/nftables/expr"
	"github.com/podnet/podnet/internal/dockerid"
)

// forwardRules isolate networks: an Internal network talks to nothing
// beyond its bridge; other networks do not talk to each other, except
// through published ports (DNATed connections), which are meant to be
// reachable from everywhere, as Kubernetes hostPorts are.
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
				newRule(chainForward, "internal net "+id, append(out, verdict(expr.VerdictDrop))...),
				newRule(chainForward, "internal net "+id, append(in, verdict(expr.VerdictDrop))...))
		}
	}
	rules = append(rules, newRule(chainForward, "published ports", ctStatusDNAT(), verdict(expr.VerdictAccept)))
	for _, n := range nets {
		rules = append(rules, newRule(chainForward, "isolate net "+dockerid.Short(n.ID),
			iif(n.Bridge), oif(prefix+"*"), oifNot(n.Bridge), verdict(expr.VerdictDrop)))
	}
	return rules
}
