package ipam

import (
	"math/bits"
	"net/netip"
	"slices"
	"sort"

	"github.com/podnet/podnet/netspec"
)

// bitmap is a fixed-size set of small integers (address offsets in a block).
type bitmap []uint64

func newBitmap(n int) bitmap { return make(bitmap, (n+63)/64) }

func (b bitmap) set(i int)      { b[i>>6] |= 1 << (i & 63) }
func (b bitmap) clear(i int)    { b[i>>6] &^= 1 << (i & 63) }
func (b bitmap) has(i int) bool { return b[i>>6]&(1<<(i&63)) != 0 }

// nextClear returns the first clear bit in [from, to), or -1.
func (b bitmap) nextClear(from, to int) int {
	if from >= to {
		return -1
	}
	for w := from >> 6; w < len(b); w++ {
		x := ^b[w]
		if w == from>>6 {
			x &^= (1 << (from & 63)) - 1
		}
		if x != 0 {
			if i := w<<6 + bits.TrailingZeros64(x); i < to {
				return i
			}
			return -1
		}
	}
	return -1
}

func (b bitmap) count() int {
	n := 0
	for _, w := range b {
		n += bits.OnesCount64(w)
	}
	return n
}

// block is one of this host's blocks as kept in memory: which of its
// addresses may not be handed out dynamically. Blocks hold at most 2^16
// addresses (Config validation), so a bitmap is small.
type block struct {
	cidr netip.Prefix
	size int
	// fixed marks what is never handed out dynamically: the pool's
	// reserved addresses and everything outside the pool's ip-range.
	fixed bitmap
	// used is fixed plus every address known to be allocated (from etcd,
	// by this host, or in flight).
	used bitmap
}

// newBlock prepares block cidr of pool; dynamic allocation stays in rng.
func newBlock(cidr, pool, rng netip.Prefix) *block {
	size := 1 << hostBits(cidr)
	b := &block{cidr: cidr, size: size, fixed: newBitmap(size)}
	lo, hi := 0, size-1 // inclusive offsets of rng ∩ cidr
	switch {
	case rng.Bits() <= cidr.Bits() && rng.Contains(cidr.Addr()):
	case cidr.Bits() <= rng.Bits() && cidr.Contains(rng.Addr()):
		lo = b.index(rng.Addr())
		hi = b.index(lastAddr(rng))
	default:
		lo, hi = size, -1
	}
	for i := 0; i < size; i++ {
		if i < lo || i > hi || netspec.ReservedReason(pool, b.addr(i)) != "" {
			b.fixed.set(i)
		}
	}
	b.used = slices.Clone(b.fixed)
	return b
}

func (b *block) addr(i int) netip.Addr {
	return toU128(b.cidr.Addr()).add(u128{lo: uint64(i)}).addr(b.cidr.Addr().Is4())
}

// index is a's offset in the block (a must lie inside it).
func (b *block) index(a netip.Addr) int {
	return int(toU128(a).sub(toU128(b.cidr.Addr())).lo)
}

func (b *block) markUsed(a netip.Addr) { b.used.set(b.index(a)) }

func (b *block) markFree(a netip.Addr) {
	if i := b.index(a); !b.fixed.has(i) {
		b.used.clear(i)
	}
}

// free is how many addresses could still be handed out dynamically.
func (b *block) free() int { return b.size - b.used.count() }

// blockSet is this host's blocks of one pool, sorted by address.
type blockSet []*block

func (s blockSet) find(a netip.Addr) *block {
	i := sort.Search(len(s), func(i int) bool { return lastAddr(s[i].cidr).Compare(a) >= 0 })
	if i < len(s) && s[i].cidr.Contains(a) {
		return s[i]
	}
	return nil
}

func (s blockSet) insert(b *block) blockSet {
	i := sort.Search(len(s), func(i int) bool { return s[i].cidr.Addr().Compare(b.cidr.Addr()) >= 0 })
	if i < len(s) && s[i].cidr == b.cidr {
		s[i] = b
		return s
	}
	return slices.Insert(s, i, b)
}

// next returns the first free address after last, walking the blocks in
// address order and wrapping around once — round-robin like CNI's
// host-local, so an address just released is the last to be reused
// (a restarted container must not inherit a stale ARP entry or a
// connection meant for the previous holder).
func (s blockSet) next(last netip.Addr) (netip.Addr, *block, bool) {
	n := len(s)
	if n == 0 {
		return netip.Addr{}, nil, false
	}
	start, from := 0, 0
	if last.IsValid() {
		start = sort.Search(n, func(i int) bool { return lastAddr(s[i].cidr).Compare(last) >= 0 })
		switch {
		case start == n:
			start = 0
		case s[start].cidr.Contains(last):
			from = s[start].index(last) + 1
		}
	}
	for i := 0; i <= n; i++ {
		b := s[(start+i)%n]
		lo, hi := 0, b.size
		switch {
		case i == 0:
			lo = from
		case i == n: // back at the first block: the part before last
			hi = from
		}
		if j := b.used.nextClear(lo, hi); j >= 0 {
			return b.addr(j), b, true
		}
	}
	return netip.Addr{}, nil, false
}
