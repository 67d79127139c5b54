package dataplane

import (
	"fmt"
	"slices"
	"strings"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// The building blocks of network policy rules (see nft_expr.go for the
// scheme): each is something nft parses and prints the same way, so the
// kernel test compares our bytecode with nft's.

// Conntrack states, as ct state matches them.
const (
	ctStateEstablished = 0x2
	ctStateRelated     = 0x4
)

// ctStateEstRel is `ct state established,related`.
func ctStateEstRel() frag {
	return frag{text: "ct state established,related", exprs: []expr.Any{
		&expr.Ct{Key: expr.CtKeySTATE, Register: reg1},
		&expr.Bitwise{SourceRegister: reg1, DestRegister: reg1, Len: 4,
			Mask: binaryutil.NativeEndian.PutUint32(ctStateEstablished | ctStateRelated), Xor: make([]byte, 4)},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: reg1, Data: make([]byte, 4)},
	}}
}

// addrVmap is `ip saddr vmap @set` (or daddr, or ip6): one hash lookup
// that jumps to the chain the address maps to.
func addrVmap(f family, a addrField, set string) frag {
	return frag{text: fmt.Sprintf("%s vmap @%s", addrKeyword(f, a), set), dep: f, exprs: []expr.Any{
		loadAddr(f, a), &expr.Lookup{SourceRegister: reg1, SetName: set, DestRegister: 0, IsDestRegSet: true},
	}}
}

// portsMatch is what a rule's ports of one protocol become: `meta
// l4proto tcp` (every port), `tcp dport 80`, `tcp dport 8000-8080` or
// `tcp dport { 80, 8000-8080 }`. ranges are sorted and disjoint.
func portsMatch(p Proto, ranges []PolicyPorts) frag {
	l4 := []expr.Any{
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: reg1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: reg1, Data: []byte{protoNumber(p)}},
	}
	if len(ranges) == 1 && ranges[0].First == 0 && ranges[0].Last == 65535 {
		return l4protoIs(p)
	}
	exprs := append(l4, &expr.Payload{OperationType: expr.PayloadLoad, DestRegister: reg1,
		Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2})
	kw := string(p) + " dport "
	if len(ranges) == 1 {
		r := ranges[0]
		if r.First == r.Last {
			return frag{text: kw + portText(r), exprs: append(exprs, &expr.Cmp{Op: expr.CmpOpEq, Register: reg1, Data: portBytes(r.First)})}
		}
		return frag{text: kw + portText(r), exprs: append(exprs,
			&expr.Cmp{Op: expr.CmpOpGte, Register: reg1, Data: portBytes(r.First)},
			&expr.Cmp{Op: expr.CmpOpLte, Register: reg1, Data: portBytes(r.Last)})}
	}
	l := &expr.Lookup{SourceRegister: reg1}
	// Like nft: an interval set only when some element is a range.
	def := setDef{keyType: nftables.TypeInetService}
	if slices.ContainsFunc(ranges, func(r PolicyPorts) bool { return r.First != r.Last }) {
		def.interval, def.elems = true, portElements(ranges)
	} else {
		for _, r := range ranges {
			def.elems = append(def.elems, element{key: portBytes(r.First), text: portText(r)})
		}
	}
	texts := make([]string, len(ranges))
	for i, r := range ranges {
		texts[i] = portText(r)
	}
	return frag{text: kw + "{ " + strings.Join(texts, ", ") + " }", exprs: append(exprs, l),
		anon: []anonSet{{def: def, lookup: l}}}
}

func portText(r PolicyPorts) string {
	if r.First == r.Last {
		return fmt.Sprint(r.First)
	}
	return fmt.Sprintf("%d-%d", r.First, r.Last)
}

// portElements are interval-set elements for port ranges, as nft builds
// them: an end marker at 0 first (unless a range starts there), then each
// range's start and an end marker just after it.
func portElements(ranges []PolicyPorts) []element {
	var out []element
	if ranges[0].First != 0 {
		out = append(out, element{key: portBytes(0), keyEnd: true})
	}
	for _, r := range ranges {
		out = append(out, element{key: portBytes(r.First), text: portText(r)})
		if r.Last < 65535 {
			out = append(out, element{key: portBytes(r.Last + 1), keyEnd: true})
		}
	}
	return out
}

// icmpv6ND is `icmpv6 type { nd-router-solicit, nd-neighbor-solicit,
// nd-neighbor-advert }`: neighbor discovery a container needs to reach its
// gateway at all, whatever its egress policy.
func icmpv6ND() frag {
	l := &expr.Lookup{SourceRegister: reg1}
	def := setDef{keyType: nftables.TypeICMP6Type}
	for _, t := range []byte{133, 135, 136} {
		def.elems = append(def.elems, element{key: []byte{t}})
	}
	return frag{text: "icmpv6 type { nd-router-solicit, nd-neighbor-solicit, nd-neighbor-advert }", dep: ipv6,
		exprs: []expr.Any{
			&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: reg1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: reg1, Data: []byte{unix.IPPROTO_ICMPV6}},
			&expr.Payload{OperationType: expr.PayloadLoad, DestRegister: reg1, Base: expr.PayloadBaseTransportHeader, Offset: 0, Len: 1},
			l,
		}, anon: []anonSet{{def: def, lookup: l}}}
}

// counterRefs is `counter name "a" counter name "b"`: each named counter
// counts the packet.
func counterRefs(names []string) frag {
	f := frag{}
	var texts []string
	for _, n := range names {
		texts = append(texts, fmt.Sprintf("counter name %q", n))
		f.exprs = append(f.exprs, &expr.Objref{Type: int(nftables.ObjTypeCounter), Name: n})
	}
	f.text = strings.Join(texts, " ")
	return f
}

// logDenied is `limit rate N/second burst 2N packets log prefix "P "
// group G`: at most N packets a second reach the policy log.
func logDenied(prefix string) frag {
	p := prefix + " "
	return frag{
		text: fmt.Sprintf("limit rate %d/second burst %d packets log prefix %q group %d", PolicyLogRate, 2*PolicyLogRate, p, PolicyLogGroup),
		exprs: []expr.Any{
			&expr.Limit{Type: expr.LimitTypePkts, Rate: PolicyLogRate, Unit: expr.LimitTimeSecond, Burst: 2 * PolicyLogRate},
			&expr.Log{Key: 1<<unix.NFTA_LOG_GROUP | 1<<unix.NFTA_LOG_PREFIX, Group: PolicyLogGroup, Data: []byte(p)},
		},
	}
}

// sortedPorts merges a rule's port ranges per protocol: sorted, overlaps
// and neighbours joined (an interval set refuses overlapping elements).
func sortedPorts(in []PolicyPorts) map[Proto][]PolicyPorts {
	out := map[Proto][]PolicyPorts{}
	for _, p := range in {
		out[p.Proto] = append(out[p.Proto], p)
	}
	for proto, rs := range out {
		slices.SortFunc(rs, func(a, b PolicyPorts) int { return int(a.First) - int(b.First) })
		merged := rs[:1]
		for _, r := range rs[1:] {
			last := &merged[len(merged)-1]
			if uint32(r.First) <= uint32(last.Last)+1 {
				last.Last = max(last.Last, r.Last)
				continue
			}
			merged = append(merged, r)
		}
		out[proto] = merged
	}
	return out
}
