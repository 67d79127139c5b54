package store

import (
	"net/netip"
	"time"
)

// Exception records (layout 2). An address whose owner is not the host
// that claimed its block — a borrowed address, `docker run --ip` in another
// host's block or in an unclaimed one, a tunnel address — is routed as a
// /32 (/128) to its owner by every host. Those hosts learn of it from
//
//	ipam/<pool>/exc/<hex ip>     Exception     the owner of a routed-apart address
//
// written by IPAM in the same transaction as the address record (and
// deleted with it), so that no host has to follow ipam/<pool>/addrs/, which
// every container start and stop writes. The rule that decides which
// addresses need one is NeedsException; ExceptionFix repairs records that
// disagree with it (the migration, and podnetds that were running while
// older podnetds wrote addresses without records).

// IPAMLayoutExceptions is the IPAM key layout in which every address that
// needs an exception record has one, and every write of an address keeps
// it so. A podnetd that keeps the layout says so in its liveness record
// (HostAlive.IPAMLayout); one that does not (older versions write 0) makes
// every other host derive exceptions from the address records themselves
// while it is alive.
const IPAMLayoutExceptions = 2

// Exception is the record of an address routed to its owner rather than
// to its block's claimant.
type Exception struct {
	// Host owns the address (its Address record's Host).
	Host string `json:"host"`
}

// ExcPrefix lists the exception records of a pool.
func ExcPrefix(p netip.Prefix) string { return IPAMPrefix(p) + KindExc + "/" }

// ExcKey is the exception record of one address.
func ExcKey(p netip.Prefix, a netip.Addr) string { return ExcPrefix(p) + AddrName(a) }

// NeedsException reports whether an address record of this kind and owner
// must be routed apart from its block, whose claimant is given ("" when no
// host claims it). Gateways and aux addresses (shared by the hosts that
// reserved them) and records without an owner never are; container
// addresses (aux addresses an older podnetd recorded as such included) and
// a host's tunnel address are whenever their owner is not the claimant.
func NeedsException(kind, owner, claimant string) bool {
	return (kind == AddrContainer || kind == AddrTunnel || kind == "") && owner != "" && owner != claimant
}

// ExcState is what is known of one address of a pool when checking its
// exception record: each record with the revision it was read at (0: the
// key does not exist).
type ExcState struct {
	Addr netip.Addr
	// The address record.
	Kind, Owner string
	AddrRev     int64
	// The exception record.
	ExcHost string
	ExcRev  int64
	// The claimant of the block holding Addr ("" when unclaimed), and
	// the block with its revision when the fix must also hold only if the
	// block did not change (left invalid: not compared; a block claimed
	// meanwhile can only make a written record harmless, since a block is
	// released only once it holds no container address).
	Claimant string
	Block    netip.Prefix
	BlockRev int64
}

// ExceptionFix returns the transaction that makes a's exception record
// agree with its address record and block, or ok=false when it already
// does. The transaction holds only if none of the records it decided on
// changed since they were read, so concurrent fixers (and IPAM) never
// overwrite each other's newer writes. A record whose owner is its block's
// claimant anyway is left alone: it is harmless (the claimant is where the
// block route leads) and IPAM removes it when the address is next written.
func ExceptionFix(pool netip.Prefix, s ExcState) (cmps []Cmp, ops []Op, ok bool) {
	need := s.AddrRev != 0 && NeedsException(s.Kind, s.Owner, s.Claimant)
	exc, addr := ExcKey(pool, s.Addr), AddrKey(pool, s.Addr)
	switch {
	case need && (s.ExcRev == 0 || s.ExcHost != s.Owner):
		ops = []Op{Put(exc, Exception{Host: s.Owner})}
	case !need && s.ExcRev != 0 && (s.AddrRev == 0 || s.ExcHost != s.Owner || !NeedsException(s.Kind, s.Owner, "")):
		ops = []Op{Delete(exc)}
	default:
		return nil, nil, false
	}
	cmps = []Cmp{revIs(addr, s.AddrRev), revIs(exc, s.ExcRev)}
	if s.Block.IsValid() {
		cmps = append(cmps, revIs(BlockKey(pool, s.Block), s.BlockRev))
	}
	return cmps, ops, true
}

// revIs holds when key is at rev, or absent for rev 0.
func revIs(key string, rev int64) Cmp {
	if rev == 0 {
		return Absent(key)
	}
	return ModRevIs(key, rev)
}

// IPAMLayoutKey records that MigrateExceptions ran on this cluster, so
// that podnetds starting later do not read every pool again.
const IPAMLayoutKey = "layout/ipam"

// IPv6ExceptionsKey records that the exception records of IPv6 pools were
// checked again (MigrateExceptionsOf) once overlays routed IPv6 addresses
// by them: before, overlays derived IPv6 exceptions from the address
// records, so IPv6 records that podnetds older than exception records
// left without one (during a rolling upgrade to layout 2) were never
// repaired. A migration at IPAMLayoutKey written by a podnetd that knows
// this key covers IPv6 pools too and writes both.
const IPv6ExceptionsKey = "layout/ipam6"

// IPAMLayoutMark is the record at IPAMLayoutKey (and IPv6ExceptionsKey).
type IPAMLayoutMark struct {
	Layout   int       `json:"layout"`
	Migrated time.Time `json:"migrated"`
	By       string    `json:"by"`
}
