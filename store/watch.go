package store

import (
	"context"
	"errors"
	"sync/atomic"
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
// changes. Snapshot is called again only when the changes since the last
// revision seen can no longer be had (etcd compacted its history past it),
// so implementations treat it as "replace everything".
type Follower interface {
	Snapshot(kvs []KV)
	Changes(evs []Event)
}

// ProgressFollower is a Follower that also hears etcd's progress
// notifications: the watch is connected and caught up, though nothing
// changed. Follow asks every watch of the store for one every
// Config.ProgressInterval, so a follower can tell a quiet prefix from a
// stale one (a watch that stopped hearing from etcd).
type ProgressFollower interface {
	Follower
	Progress()
}

// DefaultProgressInterval is how often the store asks etcd to confirm
// that its watches are caught up (etcd's own notifications come every 10
// minutes).
const DefaultProgressInterval = 5 * time.Second

// WatchStats counts how Follow kept up with etcd, for all prefixes of one
// Store.
type WatchStats struct {
	// Lists counts full listings handed to a Snapshot, and KeysListed the
	// keys they held: one per Follow at start, more only after compaction.
	Lists, KeysListed int64
	// Resumes counts watches restarted from the last revision seen after
	// an interruption (a member restarted, the leader changed).
	Resumes int64
}

type watchCounters struct{ lists, keys, resumes atomic.Int64 }

// WatchStats returns the counters of every Follow of this store so far.
func (s *Store) WatchStats() WatchStats {
	return WatchStats{Lists: s.stats.lists.Load(), KeysListed: s.stats.keys.Load(), Resumes: s.stats.resumes.Load()}
}

// Follow lists prefix, hands the snapshot to f, then watches from the
// listing's revision and hands over every batch of changes, until ctx ends.
// It never gives up. When the watch is interrupted (a member restarted, the
// leader changed, etcd was down) it resumes from the last revision it saw,
// so nothing is re-read; only when etcd compacted past that revision does
// it list the prefix again and hand f a fresh Snapshot. This is flannel's
// lease-watcher pattern. After an etcd leader change every host resumes
// its watches this way, instead of re-reading every address record at once.
func (s *Store) Follow(ctx context.Context, prefix string, f Follower) {
	s.progress.Do(s.requestProgress)
	var rev int64 // last revision whose changes f has; 0: f needs a snapshot
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		if rev == 0 {
			kvs, lrev, err := s.List(ctx, prefix)
			if err != nil {
				s.log.Warn("etcd list failed; retrying", "prefix", prefix, "err", err)
				sleepCtx(ctx, backoff)
				backoff = min(backoff*2, 5*time.Second)
				continue
			}
			s.stats.lists.Add(1)
			s.stats.keys.Add(int64(len(kvs)))
			var n int
			for _, kv := range kvs {
				n += len(kv.Key) + len(kv.Value)
			}
			countWatch(prefix, len(kvs), n)
			f.Snapshot(kvs)
			rev = lrev
		}
		last, err := s.watchFrom(ctx, prefix, rev, f)
		if ctx.Err() != nil {
			return
		}
		if last > rev {
			backoff = 100 * time.Millisecond
		}
		rev = last
		if errors.Is(err, rpctypes.ErrCompacted) {
			s.log.Info("etcd history compacted past this watch; listing again", "prefix", prefix, "revision", rev)
			metrics.EtcdWatchRestarts.WithLabelValues(prefixLabel(prefix)).Inc()
			rev = 0
			continue
		}
		if errors.Is(err, errWatchQuiet) {
			// Every few seconds while etcd is away: not worth a line each.
			s.log.Debug("etcd watch quiet; resuming", "prefix", prefix, "from", rev)
		} else {
			s.log.Info("etcd watch interrupted; resuming", "prefix", prefix, "from", rev, "reason", err)
		}
		sleepCtx(ctx, backoff)
		backoff = min(backoff*2, 5*time.Second)
		s.stats.resumes.Add(1)
		metrics.EtcdWatchRestarts.WithLabelValues(prefixLabel(prefix)).Inc()
	}
}

// watchFrom watches prefix for changes after rev and hands them to f. It
// returns the last revision f has seen all changes up to, and why the
// watch ended.
func (s *Store) watchFrom(ctx context.Context, prefix string, rev int64, f Follower) (int64, error) {
	// WithRequireLeader: a member cut off from its leader cancels the
	// watch (instead of going silent), so it resumes on one that is not.
	// Only changes move rev forward, never progress notifications (see
	// below), so a resume of a prefix that has been quiet for longer than
	// etcd keeps its history lists it again (ErrCompacted): a listing
	// after an interruption, rather than changes lost.
	//
	// The watch starts at rev itself, not rev+1, and drops the changes of
	// rev (f has them): etcd answers a progress request only when every
	// watch of the stream starts at or below its current revision, and
	// rev+1 is above it until the next write anywhere in etcd, which on a
	// quiet cluster can be long.
	//
	// A watch that hears nothing for quietRestarts progress intervals is
	// started again from rev: the client resumes a broken stream on its
	// own, from the last revision plus one, which silences progress again
	// (above); and a watch that stalled for any other reason recovers.
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	defer cancel()
	ch := s.cli.Watch(wctx, s.abs(prefix), clientv3.WithPrefix(), clientv3.WithRev(rev), clientv3.WithProgressNotify())
	quiet := time.NewTicker(s.every)
	defer quiet.Stop()
	heard := time.Now()
	for {
		var resp clientv3.WatchResponse
		var ok bool
		select {
		case resp, ok = <-ch:
		case <-quiet.C:
			if time.Since(heard) > quietRestarts*s.every {
				return rev, errWatchQuiet
			}
			continue
		}
		if !ok {
			break
		}
		heard = time.Now()
		if err := resp.Err(); err != nil {
			return rev, err
		}
		if resp.IsProgressNotify() {
			// Heard from, but the revision is not a position: etcd before
			// 3.4.25 and 3.5.8 (Debian 12 ships 3.4.23) answers a
			// requested progress on every watch of the stream with the
			// store's current revision, also on a watch still being sent
			// older changes (etcd-io/etcd#15220); taken as f's position,
			// it made the changes that followed look already seen.
			if p, ok := f.(ProgressFollower); ok {
				p.Progress()
			}
			continue
		}
		if len(resp.Events) == 0 {
			continue
		}
		evs := make([]Event, 0, len(resp.Events))
		n := 0
		for _, e := range resp.Events {
			if e.Kv.ModRevision <= rev {
				continue
			}
			n += len(e.Kv.Key) + len(e.Kv.Value)
			ev := Event{Key: s.rel(e.Kv.Key), Value: e.Kv.Value, ModRev: e.Kv.ModRevision}
			if e.Type == clientv3.EventTypeDelete {
				ev.Type = EventDelete
			}
			evs = append(evs, ev)
		}
		if len(evs) > 0 {
			countWatch(prefix, len(evs), n)
			f.Changes(evs)
		}
		rev = max(rev, resp.Events[len(resp.Events)-1].Kv.ModRevision)
	}
	if err := ctx.Err(); err != nil {
		return rev, err
	}
	return rev, errWatchClosed
}

var (
	errWatchClosed = errors.New("watch closed by the etcd client")
	errWatchQuiet  = errors.New("no word from etcd on this watch, not even a progress notification")
)

// quietRestarts is how many progress intervals a watch may go without a
// word before it is started again.
const quietRestarts = 3

func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// requestProgress asks, every s.every until the client closes,
// for a progress notification on the watches Follow opens (they share one
// stream: the same require-leader metadata). A watch that is cut off from
// etcd gets none, which is how its followers see that they are stale.
func (s *Store) requestProgress() {
	// The stream is found by the context's metadata: exactly what Follow
	// gives its watches (the client's own context carries more).
	ctx, cancel := context.WithCancel(clientv3.WithRequireLeader(context.Background()))
	context.AfterFunc(s.cli.Ctx(), cancel)
	go func() {
		t := time.NewTicker(s.every)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				// Bounded: while etcd is away the request waits for a
				// stream that is not there.
				rctx, cancel := context.WithTimeout(ctx, s.every)
				_ = s.cli.RequestProgress(rctx)
				cancel()
			}
		}
	}()
}
