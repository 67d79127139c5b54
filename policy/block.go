package policy

import (
	"net/netip"
	"slices"
	"strings"

	"github.com/podnet/podnet/store"
)

// BlockText is an ipBlock as the user wrote it: "10.0.0.0/8 except
// 10.1.0.0/16, 10.2.0.0/16".
func BlockText(b store.IPBlock) string {
	s := b.CIDR.String()
	if len(b.Except) > 0 {
		var ex []string
		for _, e := range b.Except {
			ex = append(ex, e.String())
		}
		s += " except " + strings.Join(ex, ", ")
	}
	return s
}

// blockRanges is the CIDR minus its excepts, as sorted disjoint ranges.
func blockRanges(b store.IPBlock) []AddrRange {
	out := []AddrRange{{First: b.CIDR.Masked().Addr(), Last: lastOf(b.CIDR)}}
	ex := slices.Clone(b.Except)
	slices.SortFunc(ex, func(x, y netip.Prefix) int { return x.Masked().Addr().Compare(y.Masked().Addr()) })
	for _, e := range ex {
		lo, hi := e.Masked().Addr(), lastOf(e)
		var next []AddrRange
		for _, r := range out {
			if hi.Less(r.First) || r.Last.Less(lo) {
				next = append(next, r)
				continue
			}
			if r.First.Less(lo) {
				next = append(next, AddrRange{First: r.First, Last: lo.Prev()})
			}
			if hi.Less(r.Last) {
				next = append(next, AddrRange{First: hi.Next(), Last: r.Last})
			}
		}
		out = next
	}
	return out
}

func rangesText(rs []AddrRange) string {
	var b strings.Builder
	for _, r := range rs {
		b.WriteString(r.First.String())
		b.WriteByte('-')
		b.WriteString(r.Last.String())
		b.WriteByte(',')
	}
	return b.String()
}

// lastOf is the last address of p.
func lastOf(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

// contains reports whether a lies in one of rs (sorted, disjoint).
func contains(rs []AddrRange, a netip.Addr) bool {
	_, found := slices.BinarySearchFunc(rs, a, func(r AddrRange, a netip.Addr) int {
		switch {
		case r.Last.Less(a):
			return -1
		case a.Less(r.First):
			return 1
		}
		return 0
	})
	return found
}
