package store

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"sort"
	"strings"
)

// ExceptionMigration reports what MigrateExceptions did.
type ExceptionMigration struct {
	Pools     int // pools checked
	Addresses int // address and exception records checked
	Written   int // exception records created or corrected
	Deleted   int // stale exception records deleted
	Conflicts int // fixes that lost a race and were checked again
}

// maxFixesPerTxn keeps a batch within etcd's default limit of 128
// operations (and as many comparisons) per transaction.
const maxFixesPerTxn = 32

// MigrateExceptions brings every pool to IPAMLayoutExceptions: each
// address that needs an exception record (NeedsException) gets one, and
// exception records whose address is gone or has another owner are
// deleted. It is idempotent (a second run writes nothing) and safe while
// podnetds of any version run: each fix holds only if the address, the
// exception record and the block are still as read, and a pool whose fixes
// lost a race is read again (at most a few times; a pool that keeps
// changing is reported and left to the next run, or to the podnetds'
// own repair, see overlay's doc.go). It reads each pool once: run it once
// per cluster (at the schema upgrade), not at every start.
func MigrateExceptions(ctx context.Context, s *Store) (ExceptionMigration, error) {
	return MigrateExceptionsOf(ctx, s, nil)
}

// MigrateExceptionsOf is MigrateExceptions for the pools keep accepts
// (nil: every pool).
func MigrateExceptionsOf(ctx context.Context, s *Store, keep func(netip.Prefix) bool) (ExceptionMigration, error) {
	var res ExceptionMigration
	kvs, _, err := s.List(ctx, PoolsPrefix)
	if err != nil {
		return res, fmt.Errorf("migrate exception records: %w", err)
	}
	var errs []error
	for _, kv := range kvs {
		p, err := PoolOfKey(kv.Key)
		if err != nil || (keep != nil && !keep(p)) {
			continue // not a pool record podnet wrote, or not asked for
		}
		res.Pools++
		if err := migratePool(ctx, s, p, &res); err != nil {
			errs = append(errs, err)
		}
	}
	return res, errors.Join(errs...)
}

func migratePool(ctx context.Context, s *Store, p netip.Prefix, res *ExceptionMigration) error {
	for range 5 {
		kvs, _, err := s.List(ctx, IPAMPrefix(p))
		if err != nil {
			return fmt.Errorf("migrate exception records of pool %s: %w", p, err)
		}
		states := PoolExcStates(p, kvs)
		res.Addresses += len(states)
		lost, err := applyFixes(ctx, s, p, states, res)
		if err != nil {
			return err
		}
		if lost == 0 {
			return nil
		}
		res.Conflicts += lost
	}
	return fmt.Errorf("migrate exception records of pool %s: its records keep changing; run the migration again", p)
}

// applyFixes runs the fixes states call for, in batches; a batch that does
// not hold is retried fix by fix. It returns how many fixes did not hold.
func applyFixes(ctx context.Context, s *Store, p netip.Prefix, states []ExcState, res *ExceptionMigration) (int, error) {
	type fix struct {
		cmps []Cmp
		ops  []Op
	}
	var fixes []fix
	for _, st := range states {
		if cmps, ops, ok := ExceptionFix(p, st); ok {
			fixes = append(fixes, fix{cmps, ops})
		}
	}
	count := func(f fix) {
		if f.ops[0].del {
			res.Deleted++
		} else {
			res.Written++
		}
	}
	lost := 0
	for len(fixes) > 0 {
		batch := fixes[:min(maxFixesPerTxn, len(fixes))]
		fixes = fixes[len(batch):]
		var cmps []Cmp
		var ops []Op
		for _, f := range batch {
			cmps, ops = append(cmps, f.cmps...), append(ops, f.ops...)
		}
		ok, _, err := s.Txn(ctx, cmps, ops)
		if err != nil {
			return lost, fmt.Errorf("migrate exception records of pool %s: %w", p, err)
		}
		if ok {
			for _, f := range batch {
				count(f)
			}
			continue
		}
		for _, f := range batch {
			ok, _, err := s.Txn(ctx, f.cmps, f.ops)
			switch {
			case err != nil:
				return lost, fmt.Errorf("migrate exception records of pool %s: %w", p, err)
			case ok:
				count(f)
			default:
				lost++
			}
		}
	}
	return lost, nil
}

// PoolExcStates folds a listing of ipam/<pool>/ into one ExcState per
// address that has an address or an exception record, sorted by address.
func PoolExcStates(p netip.Prefix, kvs []KV) []ExcState {
	type blockRec struct {
		host string
		rev  int64
	}
	blocks := map[netip.Prefix]blockRec{}
	bits := map[int]bool{}
	states := map[netip.Addr]*ExcState{}
	state := func(a netip.Addr) *ExcState {
		if states[a] == nil {
			states[a] = &ExcState{Addr: a}
		}
		return states[a]
	}
	for _, kv := range kvs {
		rest := strings.TrimPrefix(kv.Key, IPAMPrefix(p))
		kind, name, _ := strings.Cut(rest, "/")
		switch kind {
		case "blocks":
			b, err := ParsePoolName(name)
			var rec Block
			if err != nil || json.Unmarshal(kv.Value, &rec) != nil {
				continue
			}
			blocks[b.Masked()] = blockRec{rec.Host, kv.ModRev}
			bits[b.Bits()] = true
		case "addrs", "exc":
			raw, err := hex.DecodeString(name)
			a, ok := netip.AddrFromSlice(raw)
			if err != nil || !ok {
				continue
			}
			st := state(a)
			if kind == "exc" {
				var rec Exception
				_ = json.Unmarshal(kv.Value, &rec) // undecodable: an empty owner, fixed like a wrong one
				st.ExcHost, st.ExcRev = rec.Host, kv.ModRev
				continue
			}
			var rec Address
			if json.Unmarshal(kv.Value, &rec) != nil {
				rec = Address{Kind: AddrGateway} // unreadable: never routed apart
			}
			st.Kind, st.Owner, st.AddrRev = rec.Kind, rec.Host, kv.ModRev
		}
	}
	out := make([]ExcState, 0, len(states))
	for a, st := range states {
		for b := range bits {
			if blk, err := a.Prefix(b); err == nil {
				if r, ok := blocks[blk]; ok {
					st.Block, st.Claimant, st.BlockRev = blk, r.host, r.rev
					break
				}
			}
		}
		out = append(out, *st)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Addr.Less(out[j].Addr) })
	return out
}
