package hostid

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os/exec"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/podnet/podnet/internal/testutil"
	"github.com/podnet/podnet/store"
	"github.com/podnet/podnet/store/storetest"
)

const ttl = 3 * time.Second // renewed every second

func config(e *storetest.Etcd, t *testing.T, addr string) Config {
	self := Self(netip.MustParseAddr(addr))
	return Config{Store: e.Client(t, ""), Host: "h1", TTL: ttl, Alive: store.HostAlive{Holder: &self},
		Record: store.Host{Name: "h1", Underlay: netip.MustParseAddr(addr)}, Logger: storetest.Logger(t)}
}

func alive(t *testing.T, st *store.Store) (store.HostAlive, store.KV, bool) {
	t.Helper()
	kv, err := st.GetKV(context.Background(), store.AliveKey("h1"))
	if errors.Is(err, store.ErrNotFound) {
		return store.HostAlive{}, kv, false
	}
	if err != nil {
		t.Fatal(err)
	}
	var a store.HostAlive
	if err := kv.Decode(&a); err != nil {
		t.Fatal(err)
	}
	return a, kv, true
}

// plant writes rec at alive/h1 bound to a new lease nobody renews, as a
// podnetd that died without revoking it leaves it.
func plant(t *testing.T, st *store.Store, rec store.HostAlive, ttl time.Duration) store.LeaseID {
	t.Helper()
	ctx := context.Background()
	lease, err := st.Grant(ctx, ttl)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := st.Txn(ctx, nil, []store.Op{store.PutLeased(store.AliveKey("h1"), rec, lease)}); err != nil {
		t.Fatal(err)
	}
	return lease
}

// mustHold fails unless alive/h1 is the record of cfg's process.
func mustHold(t *testing.T, st *store.Store, cfg Config, what string) {
	t.Helper()
	if a, _, _ := alive(t, st); a.Holder == nil || a.Holder.Instance != cfg.Alive.Holder.Instance {
		t.Fatalf("%s: alive/h1 holds %+v", what, a.Holder)
	}
}

// hold runs Hold in the background; stop cancels it and returns its error.
func hold(t *testing.T, id *Identity) (stop func() error) {
	stop, _ = holdWatched(t, id)
	return stop
}

// holdWatched is hold that also returns a channel closed when Hold
// returned on its own.
func holdWatched(t *testing.T, id *Identity) (stop func() error, ended <-chan struct{}) {
	ctx, cancel := context.WithCancel(context.Background())
	var err error
	done := make(chan struct{})
	go func() { err = id.Hold(ctx); close(done) }()
	stop = func() error {
		cancel()
		<-done
		return err
	}
	t.Cleanup(func() { _ = stop() })
	return stop, done
}

func TestClaimWritesALeasedRecordAndCleanStopKeepsIt(t *testing.T) {
	e := storetest.Start(t)
	cfg := config(e, t, "10.0.0.11")
	id, err := Claim(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	a, kv, ok := alive(t, cfg.Store)
	if !ok || a.Name != "h1" || a.Holder == nil || a.Holder.Instance != cfg.Alive.Holder.Instance || kv.Lease == 0 {
		t.Fatalf("liveness record %+v (lease %x), want this process's, bound to a lease", a, kv.Lease)
	}
	stop := hold(t, id)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	// A clean stop leaves the record to its lease: the host's containers
	// still run, and the next podnetd takes the name over at once.
	if b, kv2, ok := alive(t, cfg.Store); !ok || b.Holder == nil || b.Holder.Instance != a.Holder.Instance || kv2.Lease != kv.Lease {
		t.Fatalf("liveness record after a clean stop: %+v (present %v), want the stopped holder's, on its lease", b, ok)
	}
	cfg2 := config(e, t, "10.0.0.11")
	// The next podnetd is another process: /proc finds the stopped one's
	// PID gone.
	cfg2.running = func(_, h store.Holder) (bool, bool) { return true, false }
	next, err := Claim(context.Background(), cfg2)
	if err != nil {
		t.Fatalf("the next podnetd on this machine: %v", err)
	}
	defer next.Release(context.Background())
	if b, _, ok := alive(t, cfg.Store); !ok || b.Holder.Instance != cfg2.Alive.Holder.Instance {
		t.Fatalf("liveness record after the restart: %+v, want the new holder's", b)
	}
}

// A second podnetd on the same machine (the lab's hosts share one) is
// refused at once by /proc: the holder's PID runs with its start time.
func TestSecondPodnetdOnTheSameMachineIsRefused(t *testing.T) {
	e := storetest.Start(t)
	first, err := Claim(context.Background(), config(e, t, "10.0.0.12"))
	if err != nil {
		t.Fatal(err)
	}
	hold(t, first)
	second := config(e, t, "10.0.0.99")
	_, err = Claim(context.Background(), second)
	var held *HeldError
	if !errors.Is(err, ErrHeld) || !errors.As(err, &held) {
		t.Fatalf("second claim: got %v, want ErrHeld", err)
	}
	for _, want := range []string{`"h1"`, "10.0.0.12", "--host-name"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("refusal %q does not say %s", err, want)
		}
	}
	if a, _, _ := alive(t, second.Store); a.Holder == nil || a.Holder.Addr != netip.MustParseAddr("10.0.0.12") {
		t.Fatalf("the refused podnetd changed the record: %+v", a.Holder)
	}
}

// A podnetd killed with -9 leaves its record until the lease expires; its
// restart on the same machine takes it over at once (the old PID is gone)
// and revokes the old lease.
func TestRestartAfterKillTakesOverAtOnce(t *testing.T) {
	// The killed holder's PID is gone (reaped), or still a zombie its
	// parent has not reaped yet (what lab.sh's kill -9 leaves for a moment).
	for _, c := range []struct {
		name string
		pid  func(t *testing.T) (int, uint64)
	}{
		{"reaped", func(t *testing.T) (int, uint64) {
			dead := exec.Command("true")
			if err := dead.Run(); err != nil {
				t.Fatal(err)
			}
			return dead.Process.Pid, 1
		}},
		{"zombie", func(t *testing.T) (int, uint64) {
			z := exec.Command("sleep", "60")
			if err := z.Start(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = z.Wait() })
			st, err := procStat(strconv.Itoa(z.Process.Pid))
			if err != nil {
				t.Fatal(err)
			}
			if err := z.Process.Kill(); err != nil {
				t.Fatal(err)
			}
			testutil.Until(t, 10*time.Second, "the killed holder to be a zombie", func() bool {
				st, err := procStat(strconv.Itoa(z.Process.Pid))
				return err == nil && st.state == "Z"
			})
			return z.Process.Pid, st.start
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := storetest.Start(t)
			st := e.Client(t, "")
			ctx := context.Background()
			old := Self(netip.MustParseAddr("10.0.0.11"))
			old.PID, old.PIDStart = c.pid(t)
			oldLease := plant(t, st, store.HostAlive{Name: "h1", Holder: &old}, time.Minute)
			cfg := config(e, t, "10.0.0.11")
			start := time.Now()
			if _, err := Claim(ctx, cfg); err != nil {
				t.Fatalf("restart after kill -9 refused: %v", err)
			}
			t.Logf("took over in %v", time.Since(start).Round(time.Millisecond))
			mustHold(t, st, cfg, "after the restart")
			if _, _, err := st.LeaseTTL(ctx, oldLease); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("the dead holder's lease was not revoked: %v", err)
			}
		})
	}
}

// On another machine /proc cannot tell; the lease does. A holder that
// renews it is refused; one whose lease runs down is taken over.
func TestHolderElsewhereIsJudgedByItsLease(t *testing.T) {
	e := storetest.Start(t)
	ctx := context.Background()
	elsewhere := func(addr string) Config {
		c := config(e, t, addr)
		c.Alive.Holder.Boot = "boot-of-" + addr
		return c
	}
	first, err := Claim(ctx, elsewhere("10.0.0.13"))
	if err != nil {
		t.Fatal(err)
	}
	stop := hold(t, first)
	if _, err := Claim(ctx, elsewhere("10.0.0.99")); !errors.Is(err, ErrHeld) || !strings.Contains(err.Error(), "10.0.0.13") {
		t.Fatalf("claim against a renewing holder elsewhere: got %v, want ErrHeld naming 10.0.0.13", err)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}

	// A holder elsewhere that died without revoking (kill -9, power
	// loss): its record and lease stay, nobody renews the lease.
	st := e.Client(t, "")
	plant(t, st, elsewhere("10.0.0.15").Alive, ttl)
	third := elsewhere("10.0.0.14")
	if _, err := Claim(ctx, third); err != nil {
		t.Fatalf("claim against a holder whose lease runs down: %v", err)
	}
	mustHold(t, st, third, "after the holder elsewhere died")
}

// Records someone else overwrote or deleted while this podnetd holds the
// name are written back, the host record through Reassert.
func TestOverwrittenRecordsAreWrittenBack(t *testing.T) {
	e := storetest.Start(t)
	cfg := config(e, t, "10.0.0.11")
	var reasserts atomic.Int32
	cfg.Reassert = func(ctx context.Context) error {
		reasserts.Add(1)
		return cfg.Store.Put(ctx, store.HostKey("h1"), cfg.Record)
	}
	ctx := context.Background()
	if err := cfg.Store.Put(ctx, store.HostKey("h1"), cfg.Record); err != nil {
		t.Fatal(err)
	}
	id, err := Claim(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	hold(t, id)
	st := e.Client(t, "")
	ours := func() error {
		a, kv, ok := alive(t, st)
		if !ok {
			return errors.New("no liveness record")
		}
		if a.Holder == nil || a.Holder.Instance != cfg.Alive.Holder.Instance || kv.Lease != id.lease {
			return errors.New("liveness record is someone else's")
		}
		return nil
	}
	// etcdctl put: bound to no lease.
	impostor := Self(netip.MustParseAddr("10.0.0.66"))
	if err := st.Put(ctx, store.AliveKey("h1"), store.HostAlive{Name: "h1", Holder: &impostor}); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 10*time.Second, "overwritten liveness record written back", ours)
	// A podnetd of a version without host identity: its own lease, no
	// holder.
	plant(t, st, store.HostAlive{Name: "h1"}, time.Minute)
	testutil.Eventually(t, 10*time.Second, "liveness record of an older podnetd written back", ours)
	if err := st.Delete(ctx, store.AliveKey("h1")); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 10*time.Second, "deleted liveness record written back", ours)

	if err := st.Put(ctx, store.HostKey("h1"), store.Host{Name: "h1", Underlay: netip.MustParseAddr("10.0.0.66")}); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 10*time.Second, "host record written back", func() error {
		var h store.Host
		if _, err := st.Get(ctx, store.HostKey("h1"), &h); err != nil {
			return err
		}
		if h.Underlay != netip.MustParseAddr("10.0.0.11") {
			return fmt.Errorf("underlay %s", h.Underlay)
		}
		return nil
	})
	if reasserts.Load() == 0 {
		t.Fatal("Reassert never called")
	}
}

// A podnetd that lost its lease claims the name again; if another running
// podnetd holds it by then, Hold stops with that podnetd's ErrHeld rather
// than fight over the name.
func TestLostLeaseIsReclaimedOrHoldStops(t *testing.T) {
	e := storetest.Start(t)
	ctx := context.Background()
	a := config(e, t, "10.0.0.11")
	idA, err := Claim(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	stopA, endedA := holdWatched(t, idA)
	st := e.Client(t, "")

	// Lease lost (say etcd was unreachable longer than the TTL): claimed
	// again, with a new lease.
	first := idA.lease
	if err := st.Revoke(ctx, first); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 15*time.Second, "liveness reclaimed with a new lease", func() error {
		h, kv, ok := alive(t, st)
		if !ok || kv.Lease == first || h.Holder == nil || h.Holder.Instance != a.Alive.Holder.Instance {
			return fmt.Errorf("record %+v lease %x", h.Holder, kv.Lease)
		}
		return nil
	})

	// B takes the name over, judging A gone (a partition would make it
	// look so), which revokes A's lease. A finds B running and stops.
	b := config(e, t, "10.0.0.12")
	b.running = func(_, h store.Holder) (bool, bool) { return true, false }
	if _, err := Claim(ctx, b); err != nil {
		t.Fatal(err)
	}
	testutil.Until(t, 15*time.Second, "A's Hold to stop on its own", func() bool {
		select {
		case <-endedA:
			return true
		default:
			return false
		}
	})
	err = stopA()
	if !errors.Is(err, ErrHeld) || !strings.Contains(err.Error(), "10.0.0.12") {
		t.Fatalf("A's Hold after B took over: got %v, want ErrHeld naming 10.0.0.12", err)
	}
	mustHold(t, st, b, "after A stopped")
}

// A lease whose first write fails is revoked, not left to expire.
func TestLeaseOfAFailedFirstWriteIsRevoked(t *testing.T) {
	e := storetest.Start(t)
	cfg := config(e, t, "10.0.0.11")
	cfg.Alive.Version = strings.Repeat("x", 1700*1024) // over etcd's request limit
	if _, err := Claim(context.Background(), cfg); err == nil {
		t.Fatal("claim with an oversized record succeeded")
	}
	if ls := storetest.Leases(t, e.Endpoints); len(ls) != 0 {
		t.Fatalf("leases left after a failed first write: %x", ls)
	}
}
