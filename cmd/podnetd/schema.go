package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/podnet/podnet/store"
)

// ensureSchema brings etcd's data to the schema this podnetd writes
// (migrating older data in one transaction), or refuses to go on when the
// data is newer than this build understands. It runs before anything reads
// podnet's records, and waits while etcd is unreachable.
func ensureSchema(ctx context.Context, st *store.Store, cfg *config, log *slog.Logger) error {
	by := fmt.Sprintf("%s (podnetd %s)", cfg.HostName, version)
	backoff := 200 * time.Millisecond
	for {
		res, err := st.EnsureSchema(ctx, store.PodnetSchema, by)
		switch {
		case err == nil && len(res.Migrated) > 0:
			log.Info("etcd data migrated", "from", res.From, "to", res.To, "steps", res.Migrated)
			return nil
		case err == nil && res.Recorded:
			log.Info("etcd schema version recorded", "version", res.To)
			return nil
		case err == nil:
			log.Info("etcd schema", "version", res.To, "from", res.From)
			return nil
		case errors.Is(err, store.ErrUnavailable):
			log.Warn("etcd schema not checked yet; retrying", "err", err)
		default:
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 5*time.Second)
	}
}
