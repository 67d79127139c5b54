package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/connectivity"
)

// Every etcd call goes through call, which gives it the properties plugin
// handlers need (see doc.go, "Deadlines and retries"):
//
//   - etcd down (no endpoint connectable): the call fails after at most
//     connectWait, naming etcd. dockerd sends container starts one after
//     another, so each must cost well under a second.
//   - a leader change (an election after a member died) or one member
//     down: the call is retried, on whichever member answers, until it
//     succeeds or the call's deadline (Config.RequestTimeout) passes.
//   - the caller cancelled: the call stops at once and says so (not
//     ErrUnavailable).
const (
	// connectWait is how long a call waits for a connection when none is
	// up (after asking gRPC to retry every endpoint now).
	connectWait = 400 * time.Millisecond
	// attemptTimeout bounds each try of a call but the last (which gets
	// what is left of the deadline). A proposal sent to a member that has
	// not yet noticed its leader died (up to an election timeout, 1-2 s by
	// default) is forwarded to the dead leader and waits for the server's
	// own timeout (7 s by default); cutting it short lets the next try
	// reach a member that knows the new leader. Seen on the lab: the
	// first two tries after a leader kill -9 can both land on such
	// members, so tries stay short rather than growing.
	attemptTimeout = time.Second
	// retryPause is the first pause between attempts (doubling, at most
	// maxRetryPause): an election takes about one election timeout.
	retryPause    = 50 * time.Millisecond
	maxRetryPause = 400 * time.Millisecond
)

// call runs f, retrying transient failures within the call's deadline. f
// gets a context with the attempt's deadline that asks etcd to refuse the
// request at once when the member has no leader. It reports whether an
// attempt failed in a way that may still have applied a write, so Txn can
// check what really happened before reporting a failed condition.
func (s *Store) call(ctx context.Context, op, key string, f func(context.Context) error) (maybeApplied bool, err error) {
	cctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	deadline, _ := cctx.Deadline()
	pause := retryPause
	for n := 1; ; n++ {
		if err = s.connected(cctx); err == nil {
			attempt := attemptTimeout
			if time.Until(deadline) < 2*attemptTimeout {
				attempt = time.Until(deadline) // the last try: no time for another
			}
			actx, acancel := context.WithTimeout(clientv3.WithRequireLeader(cctx), attempt)
			err = f(actx)
			acancel()
			if err == nil {
				return maybeApplied, nil
			}
			maybeApplied = maybeApplied || !surelyNotApplied(err)
		}
		if ctx.Err() != nil || !transient(err) || errors.Is(err, errNoConnection) || cctx.Err() != nil {
			return maybeApplied, s.wrap(ctx, op, key, err)
		}
		s.log.Debug("etcd call retried", "op", op, "key", key, "attempt", n, "err", err)
		sleepCtx(cctx, pause)
		pause = min(2*pause, maxRetryPause)
	}
}

// connected returns nil when the client has a connection to at least one
// endpoint. Otherwise it asks gRPC to retry every endpoint now (instead of
// after its backoff, which grows to seconds during an outage: etcd's
// return must be noticed by the next call, not a minute later) and waits
// up to connectWait.
func (s *Store) connected(ctx context.Context) error {
	cc := s.cli.ActiveConnection()
	st := cc.GetState()
	if st == connectivity.Ready {
		return nil
	}
	cc.ResetConnectBackoff()
	cc.Connect()
	wctx, cancel := context.WithTimeout(ctx, connectWait)
	defer cancel()
	for {
		if st = cc.GetState(); st == connectivity.Ready {
			return nil
		}
		if st == connectivity.Shutdown {
			return fmt.Errorf("%w: client closed", errNoConnection)
		}
		if !cc.WaitForStateChange(wctx, st) {
			return fmt.Errorf("%w within %v (connection %s)", errNoConnection, connectWait, st)
		}
	}
}
