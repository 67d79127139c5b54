package store

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
)

var (
	// ErrNotFound is returned by Get when the key does not exist.
	ErrNotFound = errors.New("not found")
	// ErrExists is returned by Create when the key already exists.
	ErrExists = errors.New("already exists")
	// ErrConflict is returned by Update and DeleteIf when the key changed
	// since it was read.
	ErrConflict = errors.New("changed concurrently")
	// ErrUnavailable wraps failures to reach etcd in time.
	ErrUnavailable = errors.New("etcd unavailable")
)

// wrap turns an etcd client error into one that names the operation, the key
// and, when etcd could not be reached, the endpoints.
func (s *Store) wrap(op, key string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) ||
		errors.Is(err, rpctypes.ErrTimeout) || errors.Is(err, rpctypes.ErrNoLeader) ||
		strings.Contains(err.Error(), "connection refused") || strings.Contains(err.Error(), "Unavailable") {
		return fmt.Errorf("%w at %s: %s %q: %v (check that etcd is running and reachable)",
			ErrUnavailable, strings.Join(s.endpoints, ","), op, key, err)
	}
	return fmt.Errorf("etcd %s %q: %w", op, key, err)
}
