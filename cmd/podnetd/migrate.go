package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
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
// A cluster migrated before overlays routed IPv6 addresses by exception
// records has its IPv6 pools checked again, once (store.IPv6ExceptionsKey).
func migrateIPAMLayout(ctx context.Context, st *store.Store, host string, log *slog.Logger) error {
	var mark store.IPAMLayoutMark
	_, err := st.Get(ctx, store.IPAMLayoutKey, &mark)
	switch {
	case err == nil && mark.Layout >= store.IPAMLayoutExceptions:
		return migrateIPv6Exceptions(ctx, st, host, log)
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
	if err := st.Put(ctx, store.IPv6ExceptionsKey, mark); err != nil {
		return fmt.Errorf("record the IPv6 exception records mark: %w", err)
	}
	return nil
}

// migrateIPv6Exceptions checks the exception records of IPv6 pools once
// per cluster: overlays before the NDP responders derived IPv6 exceptions
// from the address records, so nothing repaired what podnetds older than
// exception records wrote into IPv6 pools during that upgrade.
func migrateIPv6Exceptions(ctx context.Context, st *store.Store, host string, log *slog.Logger) error {
	if _, err := st.Get(ctx, store.IPv6ExceptionsKey, nil); err == nil {
		return nil
	} else if !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("read the IPv6 exception records mark: %w", err)
	}
	start := time.Now()
	res, err := store.MigrateExceptionsOf(ctx, st, func(p netip.Prefix) bool { return p.Addr().Is6() })
	if err != nil {
		return fmt.Errorf("check the exception records of IPv6 pools: %w", err)
	}
	log.Info("exception records of IPv6 pools checked", "pools", res.Pools, "checked", res.Addresses,
		"written", res.Written, "deleted", res.Deleted, "conflicts", res.Conflicts, "took", time.Since(start))
	mark := store.IPAMLayoutMark{Layout: store.IPAMLayoutExceptions, Migrated: time.Now().UTC(), By: host}
	if err := st.Put(ctx, store.IPv6ExceptionsKey, mark); err != nil {
		return fmt.Errorf("record the IPv6 exception records mark: %w", err)
	}
	return nil
}
