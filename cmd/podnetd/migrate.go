package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/podnet/podnet/store"
)

// migrateIPAMLayout brings a cluster's IPAM records to the layout this
// podnetd keeps (exception records, store.IPAMLayoutExceptions) once: the
// first podnetd of the new version to start runs store.MigrateExceptions
// (idempotent; safe while podnetds of any version run) and records it at
// store.IPAMLayoutKey, so the others do not read every pool again. Writes
// that older podnetds make afterwards are repaired by the overlays of the
// newer ones (overlay's doc.go, "Key layout and upgrades"). A failure is
// logged, not fatal: the overlays derive exceptions from address records
// while the records may be incomplete, and the next start tries again.
func migrateIPAMLayout(ctx context.Context, st *store.Store, host string, log *slog.Logger) error {
	var mark store.IPAMLayoutMark
	_, err := st.Get(ctx, store.IPAMLayoutKey, &mark)
	switch {
	case err == nil && mark.Layout >= store.IPAMLayoutExceptions:
		return nil
	case err != nil && !errors.Is(err, store.ErrNotFound):
		return fmt.Errorf("read the IPAM layout mark: %w", err)
	}
	start := time.Now()
	res, err := store.MigrateExceptions(ctx, st)
	if err != nil {
		return fmt.Errorf("migrate to exception records: %w", err)
	}
	log.Info("IPAM records migrated to exception records", "pools", res.Pools, "checked", res.Addresses,
		"written", res.Written, "deleted", res.Deleted, "conflicts", res.Conflicts, "took", time.Since(start))
	mark = store.IPAMLayoutMark{Layout: store.IPAMLayoutExceptions, Migrated: time.Now().UTC(), By: host}
	if err := st.Put(ctx, store.IPAMLayoutKey, mark); err != nil {
		return fmt.Errorf("record the IPAM layout mark: %w", err)
	}
	return nil
}
