package store

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// LeaseID names an etcd lease. Keys bound to a lease vanish when it
// expires (its holder stopped renewing it) or is revoked.
type LeaseID int64

// PutLeased writes v (JSON-encoded) at key, bound to lease.
func PutLeased(key string, v any, lease LeaseID) Op {
	return Op{key: key, value: v, lease: int64(lease)}
}

// Grant creates a lease of ttl (whole seconds, at least 2).
func (s *Store) Grant(ctx context.Context, ttl time.Duration) (LeaseID, error) {
	secs := max(int64(ttl/time.Second), 2)
	var id LeaseID
	_, err := s.call(ctx, "lease grant", "", func(c context.Context) error {
		g, err := s.cli.Grant(c, secs)
		if err == nil {
			id = LeaseID(g.ID)
		}
		return err
	})
	return id, err
}

// Revoke ends a lease now, deleting its keys. A lease that no longer
// exists is not an error.
func (s *Store) Revoke(ctx context.Context, id LeaseID) error {
	_, err := s.call(ctx, "lease revoke", leaseName(id), func(c context.Context) error {
		_, err := s.cli.Revoke(c, clientv3.LeaseID(id))
		if errors.Is(err, rpctypes.ErrLeaseNotFound) {
			return nil
		}
		return err
	})
	return err
}

// LeaseTTL returns how long the lease has left and the TTL it was granted
// with; ErrNotFound when it expired or was revoked. etcd reports whole
// seconds. A holder that renews the lease keeps left close to granted.
func (s *Store) LeaseTTL(ctx context.Context, id LeaseID) (left, granted time.Duration, err error) {
	var resp *clientv3.LeaseTimeToLiveResponse
	_, err = s.call(ctx, "lease ttl", leaseName(id), func(c context.Context) (err error) {
		resp, err = s.cli.TimeToLive(c, clientv3.LeaseID(id))
		return err
	})
	if err != nil {
		return 0, 0, err
	}
	if resp.TTL < 0 {
		return 0, 0, fmt.Errorf("lease %s: %w", leaseName(id), ErrNotFound)
	}
	return time.Duration(resp.TTL) * time.Second, time.Duration(resp.GrantedTTL) * time.Second, nil
}

// KeepLease renews the lease (every third of its TTL, as etcd's client
// does) until ctx ends, and returns nil then. It returns an error as soon
// as the lease is lost: expired (etcd unreachable for longer than the
// TTL), revoked, or not found when renewing starts.
func (s *Store) KeepLease(ctx context.Context, id LeaseID) error {
	ch, err := s.cli.KeepAlive(ctx, clientv3.LeaseID(id))
	if err != nil {
		return s.wrap(ctx, "lease keepalive", leaseName(id), err)
	}
	for range ch {
	}
	if ctx.Err() != nil {
		return nil
	}
	return fmt.Errorf("lease %s lost (expired or revoked): %w", leaseName(id), ErrNotFound)
}

func leaseName(id LeaseID) string { return strconv.FormatInt(int64(id), 16) }
