package store

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

var (
	// ErrNotFound is returned by Get when the key does not exist.
	ErrNotFound = errors.New("not found")
	// ErrExists is returned by Create when the key already exists.
	ErrExists = errors.New("already exists")
	// ErrConflict is returned by Update when the key changed
	// since it was read.
	ErrConflict = errors.New("changed concurrently")
	// ErrUnavailable wraps failures to reach etcd in time: no connection
	// to any endpoint, no leader, or no answer within the call's deadline.
	// A call the caller itself cancelled is not ErrUnavailable: it wraps
	// the caller's context.Canceled or context.DeadlineExceeded instead.
	ErrUnavailable = errors.New("etcd unavailable")

	// errNoConnection: no endpoint could be connected to within
	// connectWait. It ends a call at once (etcd is down, waiting longer
	// only delays the caller's error).
	errNoConnection = errors.New("no connection to any etcd endpoint")
)

// wrap turns an etcd client error into one that names the operation, the
// key and, when etcd could not serve the call, the endpoints. ctx is the
// caller's context: when it ended, the caller gave up and etcd is not
// blamed. The etcd error stays in the chain (%w) for errors.Is/As.
func (s *Store) wrap(ctx context.Context, op, key string, err error) error {
	if err == nil {
		return nil
	}
	if cerr := ctx.Err(); cerr != nil {
		return fmt.Errorf("etcd %s %q abandoned: %w", op, key, cerr)
	}
	if transient(err) {
		return fmt.Errorf("%w at %s: %s %q: %w (check that etcd is running and reachable)",
			ErrUnavailable, strings.Join(s.endpoints, ","), op, key, err)
	}
	return fmt.Errorf("etcd %s %q: %w", op, key, err)
}

// transient reports whether err says etcd could not serve the request
// right now, so the same request may succeed in a moment: gRPC
// Unavailable (connection lost, no leader, leader changed, the server's
// own request timeouts), an attempt's deadline, or etcd shedding load.
// Everything else (a compacted revision, a request too large, a full
// database, permission denied) would fail again.
func transient(err error) bool {
	var ee rpctypes.EtcdError
	switch {
	case errors.Is(err, errNoConnection), errors.Is(err, context.DeadlineExceeded),
		errors.Is(err, rpctypes.ErrTooManyRequests):
		return true
	case errors.As(err, &ee):
		return ee.Code() == codes.Unavailable
	}
	c := status.Code(err)
	return c == codes.Unavailable || c == codes.DeadlineExceeded
}

// surelyNotApplied reports whether a failed write certainly never took
// effect: it never left this process, or etcd refused it before
// proposing it (a member that knows it has no leader answers
// WithRequireLeader calls with ErrNoLeader). Any other failure of a write
// leaves its outcome unknown.
func surelyNotApplied(err error) bool {
	return errors.Is(err, errNoConnection) || errors.Is(err, rpctypes.ErrNoLeader)
}
