package dataplane

import (
	"github.com/google/nftables"
	"github.com/google/nftables/expr"
)

// The filter hooks. podnet's filter rules at the input and forward hooks
// live in one base chain per hook, whose rules jump to a regular chain
// per concern (a section):
//
//	chain input    ct state established,related accept
//	               jump guard_input         the guard
//	               jump np-input            network policy
//	chain forward  jump isolation           isolation between networks
//	               ct state established,related accept
//	               jump guard_forward       the guard
//	               jump np-forward          network policy
//
// Why one base chain: every base chain is a hook function the kernel
// calls (an indirect call, costly with this kind of machine's
// mitigations) for every packet, and most packets are established
// traffic, which every section used to accept at its first rule, once per
// section. One chain accepts it once. The sections compose as separate
// base chains did: a drop is final anywhere; a section that passes a
// packet returns (an accept in a jumped-to chain would end the whole
// hook, skipping the sections after it), except the policy section,
// which is last, so that its accepts are the chain's verdict. Isolation
// comes before the established check because some of its drops (internal
// networks, networks apart) hold for established traffic too, as they did
// in their own base chain. The policy section used to run at filter + 10,
// after Docker's FORWARD chain (filter): a drop anywhere is final and the
// sections have no other effect than their counters and log, so the
// order matters only to which chain counts a packet more than one drops.
//
// guard_pre, at prerouting (mangle), stays a base chain of its own: it is
// the only filter chain podnet has at that hook.
//
// A table of an older podnetd has guard_input, guard_forward, np-input and
// np-forward as base chains; the sync replaces them with the regular
// chains in the same batch (nft_sync.go: a chain whose kind changed is
// flushed, deleted and added again), so the guard and the policy are never
// missing, and conntrack, which no batch touches, keeps established flows.

// filterHookChains are the input and forward base chains.
func filterHookChains() []chainDef {
	return []chainDef{
		{name: chainInput, hook: nftables.ChainHookInput, priority: nftables.ChainPriorityFilter,
			kind: nftables.ChainTypeFilter, header: "type filter hook input priority filter; policy accept;"},
		{name: chainForward, hook: nftables.ChainHookForward, priority: nftables.ChainPriorityFilter,
			kind: nftables.ChainTypeFilter, header: "type filter hook forward priority filter; policy accept;"},
	}
}

// filterHookRules are the base chains' rules: the established check and
// the jumps to the sections.
func filterHookRules() []ruleDef {
	accept := verdict(expr.VerdictAccept)
	return []ruleDef{
		newRule(chainInput, "", ctStateEstRel(), accept),
		newRule(chainInput, "", jump(chainGuardInput)),
		newRule(chainInput, "", jump(chainPolInput)),
		newRule(chainForward, "", jump(chainIsolation)),
		newRule(chainForward, "", ctStateEstRel(), accept),
		newRule(chainForward, "", jump(chainGuardForward)),
		newRule(chainForward, "", jump(chainPolForward)),
	}
}
