package ipam

import (
	"encoding/binary"
	"math/big"
	"math/bits"
	"net/netip"

	"github.com/podnet/podnet/netspec"
)

// u128 is an address as a 128-bit integer, so block and subnet arithmetic
// is the same code for IPv4 and IPv6. IPv4 addresses use the low 32 bits.
type u128 struct{ hi, lo uint64 }

func toU128(a netip.Addr) u128 {
	if a.Is4() {
		b := a.As4()
		return u128{lo: uint64(binary.BigEndian.Uint32(b[:]))}
	}
	b := a.As16()
	return u128{binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])}
}

func (u u128) addr(v4 bool) netip.Addr {
	if v4 {
		var b [4]byte
		binary.BigEndian.PutUint32(b[:], uint32(u.lo))
		return netip.AddrFrom4(b)
	}
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], u.hi)
	binary.BigEndian.PutUint64(b[8:], u.lo)
	return netip.AddrFrom16(b)
}

func (u u128) add(v u128) u128 {
	lo, carry := bits.Add64(u.lo, v.lo, 0)
	hi, _ := bits.Add64(u.hi, v.hi, carry)
	return u128{hi, lo}
}

func (u u128) sub(v u128) u128 {
	lo, borrow := bits.Sub64(u.lo, v.lo, 0)
	hi, _ := bits.Sub64(u.hi, v.hi, borrow)
	return u128{hi, lo}
}

// shl shifts left by n (0..127).
func (u u128) shl(n int) u128 {
	switch {
	case n == 0:
		return u
	case n >= 64:
		return u128{hi: u.lo << (n - 64)}
	default:
		return u128{hi: u.hi<<n | u.lo>>(64-n), lo: u.lo << n}
	}
}

// shr shifts right by n (0..127).
func (u u128) shr(n int) u128 {
	switch {
	case n == 0:
		return u
	case n >= 64:
		return u128{lo: u.hi >> (n - 64)}
	default:
		return u128{hi: u.hi >> n, lo: u.lo>>n | u.hi<<(64-n)}
	}
}

// hostBits is the number of address bits a prefix leaves free.
func hostBits(p netip.Prefix) int { return p.Addr().BitLen() - p.Bits() }

// lastAddr is the highest address of p.
func lastAddr(p netip.Prefix) netip.Addr {
	ones := u128{hi: ^uint64(0), lo: ^uint64(0)}.shr(128 - hostBits(p)) // Go shifts by >= 64 give 0
	return toU128(p.Masked().Addr()).add(ones).addr(p.Addr().Is4())
}

// nthSubnet is the idx-th aligned subnet of length bits inside p.
func nthSubnet(p netip.Prefix, bits int, idx uint64) netip.Prefix {
	base := toU128(p.Masked().Addr()).add(u128{lo: idx}.shl(p.Addr().BitLen() - bits))
	return netip.PrefixFrom(base.addr(p.Addr().Is4()), bits)
}

// subnetIndex is the index (as nthSubnet counts) of the subnet of length
// bits inside p that holds a.
func subnetIndex(p netip.Prefix, bits int, a netip.Addr) uint64 {
	return toU128(a).sub(toU128(p.Masked().Addr())).shr(p.Addr().BitLen() - bits).lo
}

// firstUsable is the lowest usable host address of pool: the default
// gateway, the same on every host.
func firstUsable(pool netip.Prefix) netip.Addr { return pool.Masked().Addr().Next() }

// usableCount is how many addresses of rng (inside pool) are usable host
// addresses; a big.Int because an IPv6 range may hold 2^64 and more.
func usableCount(pool, rng netip.Prefix) *big.Int {
	n := new(big.Int).Lsh(big.NewInt(1), uint(hostBits(rng)))
	for _, a := range []netip.Addr{pool.Masked().Addr(), lastAddr(pool)} {
		if rng.Contains(a) && netspec.ReservedReason(pool, a) != "" {
			n.Sub(n, big.NewInt(1))
		}
	}
	return n
}
