package hostid

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/podnet/podnet/store"
)

// ErrHeld says another running podnetd holds the host name.
var ErrHeld = errors.New("host name in use")

// HeldError is ErrHeld with the holder found.
type HeldError struct {
	Host   string
	Holder *store.Holder
	Since  time.Time
}

func (e *HeldError) Error() string {
	since := ""
	if !e.Since.IsZero() {
		since = ", running since " + e.Since.UTC().Format(time.RFC3339)
	}
	return fmt.Sprintf("host name %q is held by a running podnetd at %s%s: every host needs its own --host-name "+
		"(a cloned machine or a copied configuration?); if that podnetd is really gone, wait for its liveness lease to expire and start again",
		e.Host, describe(e.Holder), since)
}

func (e *HeldError) Unwrap() error { return ErrHeld }

// Config says which host name to claim and for whom.
type Config struct {
	Store *store.Store
	Host  string
	// TTL of the liveness lease: how soon other hosts notice this one is
	// gone when it dies without revoking it.
	TTL time.Duration
	// Alive is the record to keep at alive/<host>; Claim fills in its
	// Name, and its Holder with Self when nil.
	Alive store.HostAlive
	// Record is this host's persistent record as podnetd registers it
	// (compared with store.Host.Same); Reassert writes it again. Hold
	// watches hosts/<host> only when Reassert is set.
	Record   store.Host
	Reassert func(context.Context) error
	Logger   *slog.Logger

	// running replaces the /proc check in tests.
	running func(self, holder store.Holder) (known, alive bool)
}

// Identity is a claimed host name.
type Identity struct {
	cfg   Config
	self  store.Holder
	key   string
	lease store.LeaseID
	log   *slog.Logger
}

// claimAttempts bounds the compare-and-swap races Claim retries.
const claimAttempts = 5

// Claim makes this process the holder of cfg.Host, or fails with a
// *HeldError (errors.Is ErrHeld) when another running podnetd holds it.
func Claim(ctx context.Context, cfg Config) (*Identity, error) {
	if cfg.Store == nil || cfg.Host == "" {
		return nil, errors.New("hostid: Store and Host are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.running == nil {
		cfg.running = running
	}
	cfg.Alive.Name = cfg.Host
	if cfg.Alive.Holder == nil {
		self := Self(cfg.Record.Underlay)
		cfg.Alive.Holder = &self
	}
	id := &Identity{cfg: cfg, self: *cfg.Alive.Holder, key: store.AliveKey(cfg.Host), log: cfg.Logger}
	if err := id.claim(ctx); err != nil {
		return nil, err
	}
	return id, nil
}

// claim writes alive/<host> bound to a new lease, taking over the record
// of a holder that is gone, and refusing a running one.
func (id *Identity) claim(ctx context.Context) error {
	for range claimAttempts {
		kv, err := id.cfg.Store.GetKV(ctx, id.key)
		found := err == nil
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("read liveness record of %s: %w", id.cfg.Host, err)
		}
		cond := store.Absent(id.key)
		if found {
			var cur store.HostAlive
			_ = kv.Decode(&cur) // undecodable: a holder we know nothing of
			if cur.Holder == nil || cur.Holder.Instance != id.self.Instance {
				gone, err := id.holderGone(ctx, kv, cur)
				if err != nil {
					return err
				}
				if !gone {
					return &HeldError{Host: id.cfg.Host, Holder: cur.Holder, Since: cur.Started}
				}
				id.log.Warn("taking over the host name from a podnetd that is gone", "host", id.cfg.Host,
					"previous", describe(cur.Holder))
			}
			cond = store.ModRevIs(id.key, kv.ModRev)
		}
		ok, err := id.write(ctx, cond)
		if err != nil {
			return err
		}
		if ok {
			if found && kv.Lease != 0 {
				_ = id.cfg.Store.Revoke(ctx, kv.Lease) // the previous holder is gone
			}
			return nil
		}
		// Someone wrote the record meanwhile: look again.
	}
	return fmt.Errorf("claim host name %s: the liveness record kept changing (%d attempts); is another podnetd starting with the same --host-name?", id.cfg.Host, claimAttempts)
}

// write puts the record bound to a new lease if cond holds. A lease whose
// write failed or did not happen is revoked at once.
func (id *Identity) write(ctx context.Context, cond store.Cmp) (bool, error) {
	lease, err := id.cfg.Store.Grant(ctx, id.cfg.TTL)
	if err != nil {
		return false, fmt.Errorf("liveness lease for %s: %w", id.cfg.Host, err)
	}
	ok, _, err := id.cfg.Store.Txn(ctx, []store.Cmp{cond}, []store.Op{store.PutLeased(id.key, id.cfg.Alive, lease)})
	if err != nil || !ok {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		if rerr := id.cfg.Store.Revoke(rctx, lease); rerr != nil {
			id.log.Warn("unused liveness lease not revoked; it expires on its own", "host", id.cfg.Host, "err", rerr)
		}
		cancel()
	}
	if err != nil {
		return false, fmt.Errorf("write liveness record of %s: %w", id.cfg.Host, err)
	}
	if ok {
		id.lease = lease
	}
	return ok, nil
}

// holderGone decides whether the podnetd that wrote kv is gone: by /proc
// when it ran on this machine, otherwise by whether its lease is renewed.
func (id *Identity) holderGone(ctx context.Context, kv store.KV, cur store.HostAlive) (bool, error) {
	if kv.Lease == 0 {
		return true, nil // written by hand, bound to nothing: no process keeps it
	}
	if cur.Holder != nil {
		if known, alive := id.cfg.running(id.self, *cur.Holder); known {
			return !alive, nil
		}
	}
	return leaseAbandoned(ctx, id.cfg.Store, kv.Lease)
}

// leaseAbandoned watches a lease for one renewal period. etcd's client
// renews a lease every third of its TTL (checking every half second), and
// etcd reports the time left in whole seconds (rounded down). A lease left
// to run down further than one period allows has nobody renewing it; so
// has one whose time left fell by the whole window, while a renewed one
// jumps back up, or (when renewals come faster than etcd's seconds show
// them) never falls by more than a second.
func leaseAbandoned(ctx context.Context, st *store.Store, lease store.LeaseID) (bool, error) {
	const margin = 2 * time.Second
	left, granted, err := st.LeaseTTL(ctx, lease)
	if errors.Is(err, store.ErrNotFound) {
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("check liveness lease %x: %w", int64(lease), err)
	}
	period := granted / 3
	floor := granted - period - margin
	window := period + margin
	first := left
	deadline := time.Now().Add(window)
	for left >= floor {
		if time.Now().After(deadline) {
			return first-left >= window-time.Second, nil
		}
		select {
		case <-ctx.Done():
			return false, ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
		prev := left
		left, _, err = st.LeaseTTL(ctx, lease)
		if errors.Is(err, store.ErrNotFound) {
			return true, nil
		}
		if err != nil {
			return false, fmt.Errorf("check liveness lease %x: %w", int64(lease), err)
		}
		if left > prev {
			return false, nil // renewed: its holder runs
		}
	}
	return true, nil
}
