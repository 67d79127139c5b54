package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Schema versions of podnet's data in etcd.
//
// The data under the prefix carries one version number, in SchemaKey. No
// key means version 1: the layout podnet had before it versioned its data.
// At start podnetd calls EnsureSchema: data newer than it understands is
// refused (it never guesses at a layout it does not know, and never
// downgrades); older data is migrated step by step, every step in one etcd
// transaction together with the new version number, committed only if
// nothing the migration read or writes changed meanwhile. When several
// podnetds start at once, one commits and the others see the new version
// and go on. Rules for writing a migration are in migrations.go.

// SchemaRecord is the value of SchemaKey.
type SchemaRecord struct {
	Version int `json:"version"`
	// By names the host and podnetd version that wrote it.
	By      string    `json:"by,omitempty"`
	Updated time.Time `json:"updated"`
}

// Migration moves the data from version To-1 to To. Apply reads and writes
// through tx only; it runs again from scratch if the commit finds the data
// changed, so it must not act outside tx.
type Migration struct {
	To    int
	Name  string
	Apply func(ctx context.Context, tx *MigrationTx) error
}

// Schema is a version and the migrations that lead to it from version 1.
type Schema struct {
	Current    int
	Migrations []Migration
}

// ErrSchemaTooNew is the identity of SchemaTooNewError.
var ErrSchemaTooNew = errors.New("etcd data has a newer schema than this podnetd understands")

// SchemaTooNewError says the data is of a version this build does not know.
type SchemaTooNewError struct {
	Prefix    string
	Found     int
	By        string
	Supported int
}

func (e *SchemaTooNewError) Error() string {
	by := ""
	if e.By != "" {
		by = " (written by " + e.By + ")"
	}
	return fmt.Sprintf("etcd data under %s has schema version %d%s, this podnetd understands versions up to %d: "+
		"install a podnetd of the cluster's version on this host (podnetd never downgrades data)",
		e.Prefix, e.Found, by, e.Supported)
}

func (e *SchemaTooNewError) Unwrap() error { return ErrSchemaTooNew }

// SchemaResult says what EnsureSchema found and did.
type SchemaResult struct {
	// From is the version found (1 when SchemaKey was absent), To the
	// version the data has now.
	From, To int
	// Migrated names the migrations this call committed (empty when
	// another podnetd did them, or there were none).
	Migrated []string
	// Recorded is true when this call wrote SchemaKey.
	Recorded bool
}

// maxSchemaAttempts bounds how often EnsureSchema replans after a
// conflicting write; each attempt is a few etcd round trips.
const maxSchemaAttempts = 20

// EnsureSchema brings the data under the store's prefix to sc.Current (see
// the comment at the top of this file). by is recorded in SchemaKey.
func (s *Store) EnsureSchema(ctx context.Context, sc Schema, by string) (SchemaResult, error) {
	steps, err := sc.steps()
	if err != nil {
		return SchemaResult{}, err
	}
	var lastConflict string
	for attempt := 0; attempt < maxSchemaAttempts; attempt++ {
		rec, found, schemaRev, rev, err := s.readSchema(ctx)
		if err != nil {
			return SchemaResult{}, err
		}
		res := SchemaResult{From: rec.Version, To: rec.Version}
		if rec.Version > sc.Current {
			return res, &SchemaTooNewError{Prefix: s.prefix, Found: rec.Version, By: rec.By, Supported: sc.Current}
		}
		if rec.Version == sc.Current && found {
			return res, nil
		}
		tx := &MigrationTx{s: s, rev: rev, base: map[string]int64{}, seen: map[string]int64{}, writes: map[string][]byte{}}
		for _, m := range steps[rec.Version+1:] {
			if err := m.Apply(ctx, tx); err != nil {
				if errors.Is(err, rpctypes.ErrCompacted) {
					break // the snapshot's revision is gone: plan again
				}
				return res, fmt.Errorf("schema migration to version %d (%s): %w", m.To, m.Name, err)
			}
			res.Migrated = append(res.Migrated, fmt.Sprintf("%d: %s", m.To, m.Name))
		}
		if len(res.Migrated) != sc.Current-rec.Version {
			continue
		}
		cmps, ops, err := tx.commitSet(ctx)
		if err != nil {
			if errors.Is(err, rpctypes.ErrCompacted) {
				continue
			}
			return res, err
		}
		if found {
			cmps = append(cmps, ModRevIs(SchemaKey, schemaRev))
		} else {
			cmps = append(cmps, Absent(SchemaKey))
		}
		ops = append(ops, Put(SchemaKey, SchemaRecord{Version: sc.Current, By: by, Updated: time.Now().UTC()}))
		ok, _, err := s.Txn(ctx, cmps, ops)
		if errors.Is(err, rpctypes.ErrTooManyOps) {
			return res, fmt.Errorf("schema migration to version %d writes %d keys in one transaction, more than etcd allows: "+
				"raise --max-txn-ops (default 128) on every etcd member, then start podnetd again: %w", sc.Current, len(ops), err)
		}
		if err != nil {
			return res, fmt.Errorf("commit schema version %d: %w", sc.Current, err)
		}
		if ok {
			res.To, res.Recorded = sc.Current, true
			return res, nil
		}
		// Someone else migrated, or wrote what the plan depends on: look again.
		lastConflict = strings.Join(tx.keys(), ", ")
		sleepCtx(ctx, time.Duration(attempt+1)*20*time.Millisecond)
		if ctx.Err() != nil {
			return SchemaResult{}, ctx.Err()
		}
	}
	return SchemaResult{}, fmt.Errorf("schema migration to version %d: the data kept changing under it (%d attempts; keys %s): %w",
		sc.Current, maxSchemaAttempts, lastConflict, ErrConflict)
}

// steps checks that sc has exactly one migration to each version 2..Current
// and returns them indexed by version (steps[v] leads from v-1 to v).
func (sc Schema) steps() ([]Migration, error) {
	if sc.Current < 1 {
		return nil, fmt.Errorf("schema: current version %d: want ≥ 1", sc.Current)
	}
	steps := make([]Migration, sc.Current+1)
	for _, m := range sc.Migrations {
		if m.To < 2 || m.To > sc.Current || m.Apply == nil {
			return nil, fmt.Errorf("schema: migration %q to version %d: want a version in 2..%d and an Apply", m.Name, m.To, sc.Current)
		}
		if steps[m.To].Apply != nil {
			return nil, fmt.Errorf("schema: two migrations to version %d (%q, %q)", m.To, steps[m.To].Name, m.Name)
		}
		steps[m.To] = m
	}
	for v := 2; v <= sc.Current; v++ {
		if steps[v].Apply == nil {
			return nil, fmt.Errorf("schema: no migration to version %d", v)
		}
	}
	return steps, nil
}

// readSchema returns the schema record (version 1 when absent), whether it
// exists, its ModRevision and the store revision of the read.
func (s *Store) readSchema(ctx context.Context) (SchemaRecord, bool, int64, int64, error) {
	resp, err := s.rangeGet(ctx, "get", SchemaKey)
	if err != nil {
		return SchemaRecord{}, false, 0, 0, err
	}
	rev := resp.Header.Revision
	if len(resp.Kvs) == 0 {
		return SchemaRecord{Version: 1}, false, 0, rev, nil
	}
	var rec SchemaRecord
	if err := json.Unmarshal(resp.Kvs[0].Value, &rec); err != nil || rec.Version < 1 {
		return SchemaRecord{}, false, 0, 0, fmt.Errorf("schema record %s%s is unreadable (%q): fix or remove it by hand", s.prefix, SchemaKey, resp.Kvs[0].Value)
	}
	return rec, true, resp.Kvs[0].ModRevision, rev, nil
}

// MigrationTx is what a Migration sees: reads of the data as of one
// revision, overlaid with the writes of the migrations before it in this
// run and its own; writes are collected, not applied.
type MigrationTx struct {
	s   *Store
	rev int64
	// base is the ModRevision at rev (0: absent) of every key read with Get
	// or written: the commit requires each to be unchanged. seen holds the
	// ModRevisions of listed keys, and listed the prefixes: the commit
	// requires that no key under them was created or changed (a listing
	// costs one condition, not one per key: etcd limits their number).
	base   map[string]int64
	seen   map[string]int64
	listed []string
	// writes holds the pending value of every written key (nil: deleted).
	writes map[string][]byte
}

// Get reads key into v; false when it does not exist.
func (tx *MigrationTx) Get(ctx context.Context, key string, v any) (bool, error) {
	b, ok, err := tx.value(ctx, key)
	if err != nil || !ok {
		return false, err
	}
	if v != nil {
		if err := json.Unmarshal(b, v); err != nil {
			return false, fmt.Errorf("decode %q: %w", key, err)
		}
	}
	return true, nil
}

// List returns every key under prefix, sorted by key.
func (tx *MigrationTx) List(ctx context.Context, prefix string) ([]KV, error) {
	resp, err := tx.s.rangeGet(ctx, "list", prefix, clientv3.WithPrefix(), clientv3.WithRev(tx.rev))
	if err != nil {
		return nil, err
	}
	tx.listed = append(tx.listed, prefix)
	merged := map[string]KV{}
	for _, kv := range resp.Kvs {
		k := tx.s.rel(kv.Key)
		tx.seen[k] = kv.ModRevision
		merged[k] = KV{Key: k, Value: kv.Value, ModRev: kv.ModRevision}
	}
	for k, b := range tx.writes {
		if !strings.HasPrefix(k, prefix) {
			continue
		}
		if b == nil {
			delete(merged, k)
		} else {
			merged[k] = KV{Key: k, Value: b}
		}
	}
	out := make([]KV, 0, len(merged))
	for _, kv := range merged {
		out = append(out, kv)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, nil
}

// Put writes v (JSON) at key when the migration commits.
func (tx *MigrationTx) Put(key string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode %q: %w", key, err)
	}
	tx.writes[key] = b
	return nil
}

// Delete removes key when the migration commits.
func (tx *MigrationTx) Delete(key string) { tx.writes[key] = nil }

// value is key's pending value, or its value at the snapshot revision.
func (tx *MigrationTx) value(ctx context.Context, key string) ([]byte, bool, error) {
	if b, ok := tx.writes[key]; ok {
		return b, b != nil, nil
	}
	resp, err := tx.s.rangeGet(ctx, "get", key, clientv3.WithRev(tx.rev))
	if err != nil {
		return nil, false, err
	}
	if len(resp.Kvs) == 0 {
		tx.base[key] = 0
		return nil, false, nil
	}
	tx.base[key] = resp.Kvs[0].ModRevision
	return resp.Kvs[0].Value, true, nil
}

// commitSet turns the run into the transaction's conditions and writes:
// every key read or written is as it was at the snapshot revision, no key
// was created or changed under a listed prefix, and the pending writes.
func (tx *MigrationTx) commitSet(ctx context.Context) ([]Cmp, []Op, error) {
	for k := range tx.writes {
		if _, ok := tx.base[k]; ok {
			continue
		}
		if mr, ok := tx.seen[k]; ok {
			tx.base[k] = mr
		} else if _, _, err := tx.valueAtRev(ctx, k); err != nil {
			return nil, nil, err
		}
	}
	var cmps []Cmp
	for _, p := range tx.listed {
		cmps = append(cmps, PrefixUnchangedSince(p, tx.rev))
	}
	for _, k := range tx.keys() {
		if mr := tx.base[k]; mr == 0 {
			cmps = append(cmps, Absent(k))
		} else {
			cmps = append(cmps, ModRevIs(k, mr))
		}
	}
	var ops []Op
	for _, k := range tx.keys() {
		b, ok := tx.writes[k]
		switch {
		case !ok:
		case b == nil && tx.base[k] == 0:
			// Created and deleted within the run: nothing to write.
		case b == nil:
			ops = append(ops, Delete(k))
		default:
			ops = append(ops, PutRaw(k, b))
		}
	}
	return cmps, ops, nil
}

// valueAtRev records key's ModRevision at the snapshot revision (for a key
// written without being read).
func (tx *MigrationTx) valueAtRev(ctx context.Context, key string) ([]byte, bool, error) {
	saved, had := tx.writes[key]
	delete(tx.writes, key)
	b, ok, err := tx.value(ctx, key)
	if had {
		tx.writes[key] = saved
	}
	return b, ok, err
}

// keys lists every key the run read or wrote, sorted.
func (tx *MigrationTx) keys() []string {
	ks := make([]string, 0, len(tx.base))
	for k := range tx.base {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}
