package dataplane

import (
	"crypto/sha256"
	"encoding/binary"
	"maps"
	"net/netip"
	"slices"
	"strings"

	"github.com/google/nftables"
)

// Element sums: what lets a restarted podnetd's first Replace skip reading
// maps back that already hold what it wants (benchmark B14).
//
// Map svc-sums holds, for each map and set of the service section (but
// the dynamic affinity sets, and those whose name without "svc-" does not
// fit an interface name), the sum of its elements' hashes (128 bits,
// added lane by lane, so that adding or deleting an element changes the
// sum by that element's hash alone). Every transaction that changes such
// a set's elements writes its new sum in the same transaction: a full
// sync writes the sums of what it leaves, an incremental change updates
// the sums of the sets it touches (svcTable.sumDelta). So the kernel's
// sum of a set is the sum of the elements the kernel holds, unless
// something other than podnet changed them (drift, which the periodic
// Replace repairs: only an engine's first Replace trusts the sums).
//
// The first Replace compares the kernel's sum of each set with the sum of
// the elements it wants: equal, the set is right and is not listed; else
// the set is listed and compared element by element as before. Reading
// a few hundred bytes of sums instead of every element makes that Replace
// cost what building the rules costs, less than a cold load, when nothing
// changed while podnetd was down.

const setSvcSums = "svc-sums"

// elemSum is a sum of element hashes, or one hash.
type elemSum [2]uint64

func (s elemSum) plus(o elemSum) elemSum  { return elemSum{s[0] + o[0], s[1] + o[1]} }
func (s elemSum) minus(o elemSum) elemSum { return elemSum{s[0] - o[0], s[1] - o[1]} }

// hashElement hashes what the kernel keeps of el: key, interval end,
// data or verdict, comment (each length-prefixed).
func hashElement(el element) elemSum {
	var stack [192]byte
	b := stack[:0]
	field := func(f []byte) {
		b = binary.BigEndian.AppendUint32(b, uint32(len(f)))
		b = append(b, f...)
	}
	field(el.key)
	if el.keyEnd {
		field([]byte{1})
	} else {
		field(nil)
	}
	field(el.val)
	if v := el.verdict; v != nil {
		field(binary.BigEndian.AppendUint32(nil, uint32(int32(v.Kind))))
		field([]byte(v.Chain))
	} else {
		field(nil)
		field(nil)
	}
	field([]byte(el.comment))
	sum := sha256.Sum256(b)
	return elemSum{binary.BigEndian.Uint64(sum[:8]), binary.BigEndian.Uint64(sum[8:16])}
}

// sumName is set's key in svc-sums: its name without "svc-", when that
// fits an interface name.
func sumName(set string) (string, bool) {
	n := strings.TrimPrefix(set, svcPrefix)
	return n, n != set && n != strings.TrimPrefix(setSvcSums, svcPrefix) && len(n) < ifNameLen
}

// sumEligible reports whether sd gets a sum.
func sumEligible(sd setDef) bool {
	_, ok := sumName(sd.name)
	return ok && !sd.dynamic && !sd.interval
}

// sumOf is the sum of elems.
func sumOf(elems []element) elemSum {
	var s elemSum
	for _, el := range elems {
		s = s.plus(hashElement(el))
	}
	return s
}

// sumElement is set's element of svc-sums.
func sumElement(set string, s elemSum) element {
	name, _ := sumName(set)
	key := make([]byte, ifNameLen)
	copy(key, name)
	var val [16]byte
	binary.BigEndian.PutUint64(val[:8], s[0])
	binary.BigEndian.PutUint64(val[8:], s[1])
	return element{set: setSvcSums, key: key, val: val[:],
		text: `"` + name + `" : ` + netip.AddrFrom16(val).String()}
}

// sumsSetDef is svc-sums holding sums.
func sumsSetDef(sums map[string]elemSum) setDef {
	sd := setDef{name: setSvcSums, keyType: nftables.TypeIFName, dataType: nftables.TypeIP6Addr, isMap: true,
		typeText: "type ifname : ipv6_addr"}
	for _, set := range slices.Sorted(maps.Keys(sums)) {
		sd.elems = append(sd.elems, sumElement(set, sums[set]))
	}
	return sd
}

// kernelSums decodes the elements of svc-sums as listed: sum by key.
func kernelSums(elems []nftables.SetElement) map[string]elemSum {
	out := make(map[string]elemSum, len(elems))
	for _, el := range elems {
		if len(el.Val) != 16 {
			continue
		}
		out[string(el.Key)] = elemSum{binary.BigEndian.Uint64(el.Val[:8]), binary.BigEndian.Uint64(el.Val[8:])}
	}
	return out
}

// kernelHolds reports whether the kernel's sums say it holds set's
// elements as summed in want.
func kernelHolds(ksums map[string]elemSum, set string, want elemSum) bool {
	if ksums == nil {
		return false
	}
	k := sumElement(set, want)
	got, ok := ksums[string(k.key)]
	return ok && got == want
}

// sumDelta adds to d the changes of svc-sums that d's element changes
// make, and records the new sums in t (journaled, like the rest of the
// change). Sums are only kept once a full sync wrote them (t.sums set).
func (t *svcTable) sumDelta(d *tableDelta) {
	if t.sums == nil {
		return
	}
	deleted := map[string]bool{}
	for _, name := range d.delSets {
		if _, ok := t.sums[name]; ok {
			deleted[name] = true
		}
	}
	next := map[string]elemSum{}
	for _, sd := range d.addSets {
		if sumEligible(sd) && !deleted[sd.name] {
			next[sd.name] = elemSum{}
		}
	}
	cur := func(set string) (elemSum, bool) {
		if s, ok := next[set]; ok {
			return s, true
		}
		s, ok := t.sums[set]
		return s, ok && !deleted[set]
	}
	if len(d.addChains)+len(d.flushChains)+len(d.delChains) > 0 {
		next[chainsSumKey] = t.chainsSum() // chain_sums.go
	}
	for _, el := range d.delElems {
		if s, ok := cur(el.set); ok {
			next[el.set] = s.minus(hashElement(el))
		}
	}
	for _, el := range d.addElems {
		if s, ok := cur(el.set); ok {
			next[el.set] = s.plus(hashElement(el))
		}
	}
	for _, name := range slices.Sorted(maps.Keys(deleted)) {
		d.sumDel = append(d.sumDel, sumElement(name, t.sums[name]))
		drop(t, t.sums, name)
	}
	for _, name := range slices.Sorted(maps.Keys(next)) {
		s := next[name]
		if old, ok := t.sums[name]; ok {
			if old == s {
				continue
			}
			d.sumDel = append(d.sumDel, sumElement(name, old))
		}
		d.sumAdd = append(d.sumAdd, sumElement(name, s))
		put(t, t.sums, name, s)
	}
}
