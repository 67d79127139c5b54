package dataplane

import (
	"crypto/sha256"
	"encoding/binary"
	"hash"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
)

// Chain sums: what lets an engine's first Replace (a restarted podnetd's)
// leave every chain alone that already holds what it wants (benchmark
// B14). Rewriting a chain costs little to build but makes the kernel's
// commit wait for an RCU grace period (about 10 ms on this kind of
// machine, against 2 ms for a batch that flushes no chain), which made a
// restart's first Replace, where nothing else changes, as slow as a cold
// load of 1000 services.
//
// Two kinds of chains, two kinds of knowledge:
//
//   - the service section's chains were written by the previous podnetd.
//     svc-sums holds, beside the element sums, one sum over all of them
//     ("chains": each chain's name, header and rules, bytecode included,
//     summed like elements), written in the same transaction as the
//     chains: by every full sync of the section, and by every incremental
//     change that adds, rewrites or deletes a service chain (computed
//     again from the table in memory, without elements), so a kernel sum
//     equal to the wanted one says the kernel's service chains are the
//     wanted ones;
//   - every other chain was written moments before by this engine (its
//     first Sync, or SetPolicy): the engine remembers the sum of what its
//     full syncs wrote per chain (Engine.written) and forgets a policy
//     chain when a policy delta changes the section.
//
// Like the element sums, this is trusted only by an engine's first
// Replace: later ones rewrite every chain, repairing drift.

// chainsSumKey is the pseudo-set whose entry in svc-sums is the sum of the
// service section's chains (no set has this name).
const chainsSumKey = svcPrefix + "chains"

// chainSum hashes a chain: its name and header, and each rule's text,
// comment, expressions (as sent to the kernel, lookups without the set
// names the batch assigns) and anonymous sets' elements.
func chainSum(cd chainDef, rules []ruleDef) elemSum {
	h := sha256.New()
	field := func(b []byte) {
		_ = binary.Write(h, binary.BigEndian, uint32(len(b)))
		h.Write(b)
	}
	field([]byte(cd.name))
	field([]byte(cd.header))
	for _, r := range rules {
		field([]byte(r.text))
		field([]byte(r.comment))
		hashExprs(h, field, r)
	}
	var sum [sha256.Size]byte
	h.Sum(sum[:0])
	return elemSum{binary.BigEndian.Uint64(sum[:8]), binary.BigEndian.Uint64(sum[8:16])}
}

func hashExprs(h hash.Hash, field func([]byte), r ruleDef) {
	for _, e := range r.exprs {
		if l, ok := e.(*expr.Lookup); ok {
			c := *l
			c.SetName, c.SetID = "", 0
			e = &c
		}
		b, err := expr.Marshal(byte(nftables.TableFamilyINet), e)
		if err != nil {
			b = []byte(err.Error())
		}
		field(b)
	}
	for _, a := range r.anon {
		for _, el := range a.def.elems {
			s := hashElement(el)
			_ = binary.Write(h, binary.BigEndian, s)
		}
	}
}

// chainSums are the sums of chains, each with its rules.
func chainSums(chains []chainDef, rules []ruleDef) map[string]elemSum {
	by := map[string][]ruleDef{}
	for _, r := range rules {
		by[r.chain] = append(by[r.chain], r)
	}
	out := make(map[string]elemSum, len(chains))
	for _, cd := range chains {
		out[cd.name] = chainSum(cd, by[cd.name])
	}
	return out
}

// chainsTotal is the sum of sums.
func chainsTotal(sums map[string]elemSum) elemSum {
	var t elemSum
	for _, s := range sums {
		t = t.plus(s)
	}
	return t
}

// noteWritten records the sums of the chains a successful full sync
// wrote (those it rewrites; the service section's are in svc-sums).
func (e *Engine) noteWritten(sums map[string]elemSum, rewrite func(string) bool) {
	if e.written == nil {
		e.written = map[string]elemSum{}
	}
	for name, s := range sums {
		if rewrite(name) {
			e.written[name] = s
		} else {
			delete(e.written, name)
		}
	}
}

// forgetWritten forgets the chains of the policy section, which a policy
// delta changes without a full sync.
func (e *Engine) forgetWritten() {
	for name := range e.written {
		if isPolicyObject(name) {
			delete(e.written, name)
		}
	}
}

// engineChainSums are the sums of rs's chains outside the service section.
func engineChainSums(rs *ruleset) map[string]elemSum {
	var chains []chainDef
	for _, cd := range rs.chains {
		if !isServiceObject(cd.name) {
			chains = append(chains, cd)
		}
	}
	return chainSums(chains, rs.rules)
}

// chainsSum is the sum of the service section's chains in t: the
// skeleton's, the shared ones in use, every service's own.
func (t *svcTable) chainsSum() elemSum {
	_, chains, rules := serviceSkeleton()
	for id := range t.refs {
		_, c, r := sharedObjects(id)
		chains, rules = append(chains, c...), append(rules, r...)
	}
	for _, o := range t.objs {
		chains, rules = append(chains, o.chains...), append(rules, o.rules...)
	}
	return chainsTotal(chainSums(chains, rules))
}
