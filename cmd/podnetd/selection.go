package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/podnet/podnet/catalog"
	"github.com/podnet/podnet/store"
)

// reselectEvery is the safety net of the selection index: a fix that
// lost a race with a writer is redone at the latest then.
const reselectEvery = 5 * time.Minute

// indexHostMeta writes the indexes of this host's container metadata
// that an older podnetd did not keep — the cluster DNS's name index and
// the selection index (store's dnsindex.go and selindex.go) — and returns
// the layout the host then announces in its liveness record: other hosts
// read a host's metadata whole until it says the indexes are complete.
func indexHostMeta(ctx context.Context, st *store.Store, host string, log *slog.Logger) int {
	start := time.Now()
	n, err := store.IndexHostNames(ctx, st, host)
	if err != nil {
		log.Warn("cluster DNS name index not written; other hosts read this host's endpoint metadata until the next start", "err", err)
		return 0
	}
	sel, err := catalog.LoadSelection(ctx, st)
	var res store.ReselectResult
	if err == nil {
		res, err = store.ReselectHost(ctx, st, host, sel)
	}
	if err != nil {
		log.Warn("selection index not written; other hosts read this host's container metadata until the next start", "err", err)
		return store.MetaLayoutNames
	}
	if n > 0 || res.Written+res.Deleted > 0 {
		log.Info("container metadata indexes written", "names", n, "selected", res.Written, "unselected", res.Deleted, "took", time.Since(start))
	}
	return store.MetaLayoutSelected
}

// reselectLoop keeps this host's selection index in line with the
// services' and policies' selectors as they change, until ctx ends.
func reselectLoop(ctx context.Context, st *store.Store, host string, cat *catalog.Catalog, log *slog.Logger) {
	t := time.NewTicker(reselectEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-cat.SelectorsChanged():
			// Changes in a burst (a file of services applied) are
			// taken together.
			select {
			case <-ctx.Done():
				return
			case <-time.After(200 * time.Millisecond):
			}
		case <-t.C:
		}
		if !cat.SelectorsLoaded() {
			continue
		}
		res, err := store.ReselectHost(ctx, st, host, cat.Selects)
		switch {
		case err != nil:
			log.Warn("selection index not brought in line with the selectors; retrying", "err", err)
		case res.Written+res.Deleted > 0:
			log.Info("selection index brought in line with the selectors", "checked", res.Checked, "selected", res.Written, "unselected", res.Deleted)
		}
	}
}
