package overlay

import (
	"context"
	"math/rand/v2"
	"net/netip"
	"time"

	"github.com/podnet/podnet/store"
)

// Repair of exception records after a rolling upgrade. While a podnetd
// older than exception records is alive, every host follows the pools'
// address records and derives exceptions from them (always right), and
// the old podnetd writes addresses without exception records and releases
// addresses without deleting theirs. When the last old podnetd is gone,
// each host compares the exception records with the address records it
// still holds, fixes what disagrees (store.ExceptionFix: conditional on
// the records as read, so concurrent fixers cannot clobber each other or
// IPAM), and stops following addresses once its view shows none left. The
// fixes start after a random delay and are recomputed from the view each
// round, which by then holds the fixes other hosts made: in a large
// cluster a few hosts write, the others only see the records change.

// repairDelay and repairJitter space the rounds of a repair.
const (
	repairDelay  = time.Second
	repairJitter = 4 * time.Second
)

// repair runs until pool p's exception records agree with its address
// records (then pv.consistent is set and Run stops following addresses),
// ctx ends, or the pool is dropped.
func (o *Overlay) repair(ctx context.Context, p netip.Prefix, pv *poolView) {
	for {
		t := time.NewTimer(repairDelay + rand.N(repairJitter))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		o.mu.Lock()
		if o.view.pools[p] != pv || o.view.legacy() {
			o.mu.Unlock()
			return
		}
		states := pv.excStates()
		o.mu.Unlock()
		fixed, failed, pending := 0, 0, 0
		for _, s := range states {
			cmps, ops, ok := store.ExceptionFix(p, s)
			if !ok {
				continue
			}
			pending++
			held, _, err := o.st.Txn(ctx, cmps, ops)
			switch {
			case err != nil:
				failed++
				o.log.Warn("exception record not repaired; retrying", "pool", p, "address", s.Addr, "err", err)
			case held:
				fixed++
			}
		}
		if pending == 0 {
			o.mu.Lock()
			if o.view.pools[p] == pv {
				pv.consistent = true
			}
			o.mu.Unlock()
			o.kick()
			return
		}
		o.log.Info("repairing exception records left by an older podnetd", "pool", p,
			"wrong", pending, "fixed", fixed, "failed", failed)
	}
}

// excStates is what the view knows of every address and exception record
// of the pool, for store.ExceptionFix. The block's revision is not kept,
// so fixes are conditioned on the address and exception records only: a
// block claimed meanwhile can only make a written record harmless (its
// owner then is the claimant), never wrong, because a block is released
// only once it holds no container address.
func (p *poolView) excStates() []store.ExcState {
	states := make(map[netip.Addr]*store.ExcState, len(p.exc))
	state := func(a netip.Addr) *store.ExcState {
		if states[a] == nil {
			states[a] = &store.ExcState{Addr: a, Claimant: p.claimant(a)}
		}
		return states[a]
	}
	for a, o := range p.addrs {
		s := state(a)
		s.Kind, s.Owner, s.AddrRev = store.AddrGateway, o.host, o.rev
		if o.container {
			s.Kind = store.AddrContainer
		}
	}
	for a, o := range p.exc {
		s := state(a)
		s.ExcHost, s.ExcRev = o.host, o.rev
	}
	out := make([]store.ExcState, 0, len(states))
	for _, s := range states {
		out = append(out, *s)
	}
	return out
}
