package hostid

import (
	"context"
	"errors"
	"time"

	"github.com/podnet/podnet/store"
)

// Hold keeps the host name until ctx ends, then returns nil and leaves
// the lease to run out (see the package doc: a restart takes it over at
// once, a host stopped for good is seen down a TTL later). On the way it
// renews the lease, writes back records someone else changed, and claims
// the name again after losing the lease. It returns an error only when it
// cannot go on holding the name: another running podnetd took it over
// (a *HeldError) — podnetd must then stop.
func (id *Identity) Hold(ctx context.Context) error {
	check := make(chan struct{}, 1)
	wctx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	go id.cfg.Store.Follow(wctx, id.key, keyFollower{key: id.key, check: check})
	if id.cfg.Reassert != nil {
		go id.cfg.Store.Follow(wctx, store.HostKey(id.cfg.Host), keyFollower{key: store.HostKey(id.cfg.Host), check: check})
	}
	for {
		lost := make(chan error, 1)
		lctx, stopLease := context.WithCancel(ctx)
		go func(lease store.LeaseID) { lost <- id.cfg.Store.KeepLease(lctx, lease) }(id.lease)
		err := id.holdLease(ctx, lost, check)
		stopLease()
		if ctx.Err() != nil {
			return nil
		}
		id.log.Warn("liveness lease lost; other hosts consider this host down until it is renewed", "host", id.cfg.Host, "err", err)
		if err := id.reclaim(ctx); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		id.log.Info("liveness lease renewed", "host", id.cfg.Host)
	}
}

// Release gives the host name up now: the lease is revoked and with it
// the liveness record, so other hosts see this one leave at once. It
// ignores ctx's cancellation (it runs on the way out).
func (id *Identity) Release(ctx context.Context) {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer cancel()
	if err := id.cfg.Store.Revoke(rctx, id.lease); err != nil {
		id.log.Warn("liveness lease not revoked; other hosts see this host leave when it expires", "host", id.cfg.Host, "err", err)
	}
}

// holdLease waits until the lease is lost (returning why) or ctx ends,
// checking the records whenever they change.
func (id *Identity) holdLease(ctx context.Context, lost <-chan error, check <-chan struct{}) error {
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err := <-lost:
			return err
		case <-check:
			id.reassertAlive(ctx)
			id.reassertRecord(ctx)
		}
	}
}

// reclaim claims the name again after the lease was lost, retrying while
// etcd is unreachable; it fails only on a running holder (or ctx).
func (id *Identity) reclaim(ctx context.Context) error {
	backoff := 200 * time.Millisecond
	for {
		err := id.claim(ctx)
		if err == nil || errors.Is(err, ErrHeld) || ctx.Err() != nil {
			if err != nil && errors.Is(err, ErrHeld) {
				id.log.Error("another podnetd took over this host name while this one had lost its lease; stopping", "host", id.cfg.Host, "err", err)
			}
			return err
		}
		id.log.Warn("liveness record not written; retrying", "host", id.cfg.Host, "err", err)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

// reassertAlive writes alive/<host> back when it is no longer this
// process's record on this process's lease — deleted, or overwritten by
// someone who did not claim the name (a record bound to no lease, or one
// without a holder: etcdctl, an older podnetd) — while the lease holds.
// A record another podnetd wrote by claiming the name is left alone: that
// podnetd judged this one gone and revokes its lease next, and the
// lease's loss decides (Hold claims the name again, or stops).
func (id *Identity) reassertAlive(ctx context.Context) {
	kv, err := id.cfg.Store.GetKV(ctx, id.key)
	cond := store.Absent(id.key)
	var found string
	switch {
	case errors.Is(err, store.ErrNotFound):
		found = "deleted"
	case err != nil:
		return // etcd trouble: the lease tells
	default:
		var cur store.HostAlive
		_ = kv.Decode(&cur)
		if kv.Lease == id.lease && cur.Holder != nil && cur.Holder.Instance == id.self.Instance {
			return
		}
		if kv.Lease != 0 && cur.Holder != nil && cur.Holder.Instance != "" {
			id.log.Warn("another podnetd claimed this host name", "host", id.cfg.Host, "by", describe(cur.Holder))
			return
		}
		found = "overwritten by " + describe(cur.Holder)
		cond = store.ModRevIs(id.key, kv.ModRev)
	}
	ok, _, err := id.cfg.Store.Txn(ctx, []store.Cmp{cond}, []store.Op{store.PutLeased(id.key, id.cfg.Alive, id.lease)})
	switch {
	case err != nil:
		id.log.Warn("liveness record of this host was "+found+"; writing it back failed", "host", id.cfg.Host, "err", err)
	case ok:
		id.log.Warn("liveness record of this host was "+found+"; written back: this podnetd holds the host name", "host", id.cfg.Host)
	}
	// !ok: it changed again; the watch brings the next check.
}

// reassertRecord writes hosts/<host> back when it is gone or no longer
// says what this podnetd registered (another process's underlay address
// would route this host's blocks there, another WireGuard key would
// encrypt them for someone else).
func (id *Identity) reassertRecord(ctx context.Context) {
	if id.cfg.Reassert == nil {
		return
	}
	var cur store.Host
	_, err := id.cfg.Store.Get(ctx, store.HostKey(id.cfg.Host), &cur)
	var found string
	switch {
	case errors.Is(err, store.ErrNotFound):
		found = "deleted"
	case err != nil:
		return
	case cur.Same(id.cfg.Record):
		return
	default:
		found = "changed (underlay " + cur.Underlay.String() + ", want " + id.cfg.Record.Underlay.String() + ")"
	}
	if err := id.cfg.Reassert(ctx); err != nil {
		id.log.Warn("host record of this host was "+found+"; writing it back failed", "host", id.cfg.Host, "err", err)
		return
	}
	id.log.Warn("host record of this host was "+found+"; written back", "host", id.cfg.Host)
}

// keyFollower asks for a check whenever one exact key changes (Follow
// watches a prefix: alive/h2 also matches alive/h20).
type keyFollower struct {
	key   string
	check chan<- struct{}
}

func (f keyFollower) Snapshot([]store.KV) { f.poke() }

func (f keyFollower) Changes(evs []store.Event) {
	for _, e := range evs {
		if e.Key == f.key {
			f.poke()
			return
		}
	}
}

func (f keyFollower) poke() {
	select {
	case f.check <- struct{}{}:
	default:
	}
}
