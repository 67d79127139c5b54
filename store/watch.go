package store

import (
	"context"
	"errors"
	"time"

	"github.com/podnet/podnet/internal/metrics"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// EventType says what happened to a key.
type EventType int

const (
	// EventPut is a create or an update.
	EventPut EventType = iota
	// EventDelete is a deletion (or a lease expiry).
	EventDelete
)

// Event is one change seen by Follow. Key is relative to the store prefix.
type Event struct {
	Type   EventType
	Key    string
	Value  []byte
	ModRev int64
}

// Follower receives the state of a prefix: first a full snapshot, then the
// changes. Snapshot is called again whenever the watch had to be restarted
// from scratch (etcd compacted past our revision, or the connection was
// lost), so implementations treat it as "replace everything".
type Follower interface {
	Snapshot(kvs []KV)
	Changes(evs []Event)
}

// Follow lists prefix, hands the snapshot to f, then watches from the
// listing's revision and hands over every batch of changes, until ctx ends.
// It never gives up: on any failure it waits (backoff up to 5 s) and
// re-lists. This is flannel's lease-watcher pattern: a revision-resumed
// watch with a full relist on compaction.
func (s *Store) Follow(ctx context.Context, prefix string, f Follower) {
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		kvs, rev, err := s.List(ctx, prefix)
		if err != nil {
			s.log.Warn("etcd list failed; retrying", "prefix", prefix, "err", err)
			sleepCtx(ctx, backoff)
			backoff = min(backoff*2, 5*time.Second)
			continue
		}
		backoff = 100 * time.Millisecond
		f.Snapshot(kvs)
		if err := s.watchFrom(ctx, prefix, rev+1, f); err != nil && ctx.Err() == nil {
			s.log.Info("etcd watch restarted", "prefix", prefix, "reason", err)
			metrics.EtcdWatchRestarts.WithLabelValues(prefixLabel(prefix)).Inc()
			sleepCtx(ctx, backoff)
		}
	}
}

func (s *Store) watchFrom(ctx context.Context, prefix string, rev int64, f Follower) error {
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	defer cancel()
	ch := s.cli.Watch(wctx, s.abs(prefix), clientv3.WithPrefix(), clientv3.WithRev(rev))
	for resp := range ch {
		if err := resp.Err(); err != nil {
			return err
		}
		if resp.Canceled {
			return errors.New("watch canceled")
		}
		if len(resp.Events) == 0 {
			continue
		}
		evs := make([]Event, 0, len(resp.Events))
		for _, e := range resp.Events {
			ev := Event{Key: s.rel(e.Kv.Key), Value: e.Kv.Value, ModRev: e.Kv.ModRevision}
			if e.Type == clientv3.EventTypeDelete {
				ev.Type = EventDelete
			}
			evs = append(evs, ev)
		}
		f.Changes(evs)
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return rpctypes.ErrNoLeader
}

func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
