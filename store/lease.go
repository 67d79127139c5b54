package store

import (
	"context"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// KeepAlive keeps key present (holding v) for as long as ctx lives, bound to
// an etcd lease of ttl: if this process dies the key disappears ttl later.
// When the lease is lost (etcd restarted, a partition longer than ttl) it is
// granted again and the key rewritten. On return the lease is revoked so a
// clean shutdown is seen at once. up, if not nil, is called with true each
// time the key is (re)written and false each time the lease is lost.
func (s *Store) KeepAlive(ctx context.Context, key string, v any, ttl time.Duration, up func(bool)) {
	if up == nil {
		up = func(bool) {}
	}
	secs := int64(ttl / time.Second)
	if secs < 2 {
		secs = 2
	}
	backoff := 200 * time.Millisecond
	for ctx.Err() == nil {
		lease, err := s.grantAndPut(ctx, key, v, secs)
		if err != nil {
			s.log.Warn("liveness key not written; retrying", "key", key, "err", err)
			sleepCtx(ctx, backoff)
			backoff = min(backoff*2, 5*time.Second)
			continue
		}
		backoff = 200 * time.Millisecond
		up(true)
		ch, err := s.cli.KeepAlive(ctx, lease)
		if err == nil {
			for range ch {
			}
		}
		if ctx.Err() != nil {
			rctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			_, _ = s.cli.Revoke(rctx, lease)
			cancel()
			return
		}
		up(false)
		s.log.Warn("liveness lease lost; renewing", "key", key)
	}
}

func (s *Store) grantAndPut(ctx context.Context, key string, v any, secs int64) (clientv3.LeaseID, error) {
	c, cancel := s.ctx(ctx)
	defer cancel()
	g, err := s.cli.Grant(c, secs)
	if err != nil {
		return 0, s.wrap("lease grant", key, err)
	}
	op := Put(key, v)
	op.lease = int64(g.ID)
	if _, _, err := s.Txn(ctx, nil, []Op{op}); err != nil {
		return 0, err
	}
	return g.ID, nil
}
