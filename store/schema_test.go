package store_test

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/podnet/podnet/store"
	"github.com/podnet/podnet/store/storetest"
)

// The migrations below are the kind a real layout change would bring; they
// exist only in these tests (podnet's own list is in migrations.go).

// epIndex is a hypothetical version 2: an index from each endpoint's
// address to its record, added next to the records (expand only).
type epIndex struct {
	Host     string `json:"host"`
	Endpoint string `json:"endpoint"`
}

func epIndexKey(ip netip.Addr) string { return "epidx/" + store.AddrName(ip) }

var toV2 = store.Migration{To: 2, Name: "index endpoints by address", Apply: func(ctx context.Context, tx *store.MigrationTx) error {
	eps, err := tx.List(ctx, store.EndpointsPrefix(""))
	if err != nil {
		return err
	}
	for _, kv := range eps {
		var ep store.Endpoint
		if err := kv.Decode(&ep); err != nil {
			return err
		}
		if !ep.IPv4.IsValid() {
			return fmt.Errorf("endpoint %s has no IPv4 address", kv.Key)
		}
		if err := tx.Put(epIndexKey(ep.IPv4.Addr()), epIndex{Host: ep.Host, Endpoint: ep.ID}); err != nil {
			return err
		}
	}
	return nil
}}

// migrationRuns counts commits of version 3 through the data itself.
type migrationRuns struct {
	N int `json:"n"`
}

// toV3 is a hypothetical version 3: pools get an explicit block size, and
// a counter records how many times a version-3 migration was committed.
var toV3 = store.Migration{To: 3, Name: "explicit block size", Apply: func(ctx context.Context, tx *store.MigrationTx) error {
	pools, err := tx.List(ctx, store.PoolsPrefix)
	if err != nil {
		return err
	}
	for _, kv := range pools {
		var p store.Pool
		if err := kv.Decode(&p); err != nil {
			return err
		}
		if p.BlockBits == 0 {
			p.BlockBits = 26
			if err := tx.Put(kv.Key, p); err != nil {
				return err
			}
		}
	}
	var runs migrationRuns
	if _, err := tx.Get(ctx, "test/v3-runs", &runs); err != nil {
		return err
	}
	runs.N++
	return tx.Put("test/v3-runs", runs)
}}

var v3 = store.Schema{Current: 3, Migrations: []store.Migration{toV3, toV2}}

// seedV1 writes data as podnet wrote it before it versioned its layout:
// no schema key, a pool without a block size, three endpoints.
func seedV1(t *testing.T, s *store.Store) {
	t.Helper()
	ctx := context.Background()
	pool := netip.MustParsePrefix("10.1.0.0/16")
	if err := s.Put(ctx, store.PoolKey(pool), store.Pool{Subnet: pool}); err != nil {
		t.Fatal(err)
	}
	for i, host := range []string{"h1", "h2", "h3"} {
		id := fmt.Sprintf("ep%d", i)
		ep := store.Endpoint{ID: id, Network: "n", Host: host, IPv4: netip.MustParsePrefix(fmt.Sprintf("10.1.0.%d/16", 10+i))}
		if err := s.Put(ctx, store.EndpointKey(host, id), ep); err != nil {
			t.Fatal(err)
		}
	}
}

func schemaOf(t *testing.T, s *store.Store) (store.SchemaRecord, int64) {
	t.Helper()
	var rec store.SchemaRecord
	rev, err := s.Get(context.Background(), store.SchemaKey, &rec)
	if err != nil {
		t.Fatalf("schema key: %v", err)
	}
	return rec, rev
}

// TestSchemaAbsentIsVersion1: data without a schema key is today's layout,
// version 1: a version-1 podnetd records that and changes nothing else.
func TestSchemaAbsentIsVersion1(t *testing.T) {
	s := storetest.New(t)
	seedV1(t, s)
	ctx := context.Background()
	before, _, err := s.List(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	res, err := s.EnsureSchema(ctx, store.PodnetSchema, "h1 (podnetd test)")
	if err != nil {
		t.Fatal(err)
	}
	if res.From != 1 || res.To != 1 || !res.Recorded || len(res.Migrated) != 0 {
		t.Fatalf("result %+v, want 1 -> 1, recorded, nothing migrated", res)
	}
	if rec, _ := schemaOf(t, s); rec.Version != 1 || rec.By != "h1 (podnetd test)" {
		t.Fatalf("schema record %+v", rec)
	}
	after, _, err := s.List(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(after) != len(before)+1 {
		t.Fatalf("%d keys after, %d before: only the schema key may be added", len(after), len(before))
	}
	for i, kv := range before {
		if after[i].Key != kv.Key && after[i].Key != store.SchemaKey {
			t.Fatalf("key %s changed", kv.Key)
		}
	}
	// A second start finds it recorded and writes nothing.
	res, err = s.EnsureSchema(ctx, store.PodnetSchema, "h2")
	if err != nil || res.Recorded || res.From != 1 {
		t.Fatalf("second start: %+v %v", res, err)
	}
	// And the same data, migrated by a newer build, goes 1 -> 3.
	res, err = s.EnsureSchema(ctx, v3, "h3")
	if err != nil || res.From != 1 || res.To != 3 || len(res.Migrated) != 2 {
		t.Fatalf("1 -> 3 with a recorded version 1: %+v %v", res, err)
	}
}

// TestSchemaMigratesInOneTransaction: version 1 data goes to version 3
// through both steps, every write and the new version in one transaction.
func TestSchemaMigratesInOneTransaction(t *testing.T) {
	s := storetest.New(t)
	seedV1(t, s)
	ctx := context.Background()
	res, err := s.EnsureSchema(ctx, v3, "h1")
	if err != nil {
		t.Fatal(err)
	}
	if res.From != 1 || res.To != 3 || strings.Join(res.Migrated, ";") != "2: index endpoints by address;3: explicit block size" {
		t.Fatalf("result %+v", res)
	}
	rec, schemaRev := schemaOf(t, s)
	if rec.Version != 3 {
		t.Fatalf("schema version %d, want 3", rec.Version)
	}
	idx, _, err := s.List(ctx, "epidx/")
	if err != nil || len(idx) != 3 {
		t.Fatalf("index: %v %d keys, want 3", err, len(idx))
	}
	for _, kv := range idx {
		if kv.ModRev != schemaRev {
			t.Fatalf("%s written at revision %d, the schema at %d: not one transaction", kv.Key, kv.ModRev, schemaRev)
		}
	}
	var ix epIndex
	if _, err := s.Get(ctx, epIndexKey(netip.MustParseAddr("10.1.0.11")), &ix); err != nil || ix != (epIndex{Host: "h2", Endpoint: "ep1"}) {
		t.Fatalf("index of 10.1.0.11: %+v %v", ix, err)
	}
	var p store.Pool
	rev, err := s.Get(ctx, store.PoolKey(netip.MustParsePrefix("10.1.0.0/16")), &p)
	if err != nil || p.BlockBits != 26 || rev != schemaRev {
		t.Fatalf("pool %+v at %d (schema %d): %v", p, rev, schemaRev, err)
	}
	// Data at version 2 only takes the last step.
	s2 := storetest.New(t)
	seedV1(t, s2)
	if _, err := s2.EnsureSchema(ctx, store.Schema{Current: 2, Migrations: []store.Migration{toV2}}, "old"); err != nil {
		t.Fatal(err)
	}
	res, err = s2.EnsureSchema(ctx, v3, "new")
	if err != nil || res.From != 2 || strings.Join(res.Migrated, ";") != "3: explicit block size" {
		t.Fatalf("2 -> 3: %+v %v", res, err)
	}
}

// TestSchemaTooNewIsRefused: a podnetd never starts against data of a
// version it does not know, says which versions, and touches nothing.
func TestSchemaTooNewIsRefused(t *testing.T) {
	s := storetest.New(t)
	seedV1(t, s)
	ctx := context.Background()
	if err := s.Put(ctx, store.SchemaKey, store.SchemaRecord{Version: 5, By: "h9 (podnetd 9.0)"}); err != nil {
		t.Fatal(err)
	}
	_, rev, _ := s.List(ctx, "")
	_, err := s.EnsureSchema(ctx, v3, "h1")
	var tooNew *store.SchemaTooNewError
	if !errors.As(err, &tooNew) || !errors.Is(err, store.ErrSchemaTooNew) || tooNew.Found != 5 || tooNew.Supported != 3 {
		t.Fatalf("got %v, want a SchemaTooNewError 5 > 3", err)
	}
	for _, want := range []string{"schema version 5", "up to 3", "h9 (podnetd 9.0)", "/podnet/v1/"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if _, now, _ := s.List(ctx, ""); now != rev {
		t.Fatalf("a refused start wrote to etcd (revision %d -> %d)", rev, now)
	}
}

// TestSchemaConcurrentStarts: podnetds starting at once on version 1 data
// all end at version 3, and the migration is committed exactly once.
func TestSchemaConcurrentStarts(t *testing.T) {
	e := storetest.Start(t)
	seedV1(t, e.Client(t, ""))
	ctx := context.Background()
	const n = 8
	var committed atomic.Int32
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		s := e.Client(t, "")
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := s.EnsureSchema(ctx, v3, fmt.Sprintf("h%d", i))
			if err != nil {
				errs <- err
				return
			}
			if res.To != 3 {
				errs <- fmt.Errorf("h%d ended at version %d", i, res.To)
			}
			if res.Recorded {
				committed.Add(1)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if c := committed.Load(); c != 1 {
		t.Fatalf("%d podnetds committed the migration, want exactly 1", c)
	}
	var runs migrationRuns
	s := e.Client(t, "")
	if _, err := s.Get(ctx, "test/v3-runs", &runs); err != nil || runs.N != 1 {
		t.Fatalf("version 3 applied %d times (%v), want once", runs.N, err)
	}
	if idx, _, _ := s.List(ctx, "epidx/"); len(idx) != 3 {
		t.Fatalf("%d index keys, want 3", len(idx))
	}
}

// TestSchemaReplansOnConcurrentWrite: a record changed between the
// migration's read and its commit makes the commit fail; the migration is
// planned again and indexes what is there now.
func TestSchemaReplansOnConcurrentWrite(t *testing.T) {
	e := storetest.Start(t)
	s, other := e.Client(t, ""), e.Client(t, "")
	seedV1(t, s)
	ctx := context.Background()
	var runs atomic.Int32
	moving := store.Migration{To: 2, Name: "index endpoints by address", Apply: func(ctx context.Context, tx *store.MigrationTx) error {
		if runs.Add(1) == 1 {
			// Another host moves ep0 to a new address after the snapshot.
			ep := store.Endpoint{ID: "ep0", Network: "n", Host: "h1", IPv4: netip.MustParsePrefix("10.1.0.99/16")}
			if err := other.Put(ctx, store.EndpointKey("h1", "ep0"), ep); err != nil {
				return err
			}
		}
		return toV2.Apply(ctx, tx)
	}}
	res, err := s.EnsureSchema(ctx, store.Schema{Current: 2, Migrations: []store.Migration{moving}}, "h1")
	if err != nil || res.To != 2 {
		t.Fatalf("%+v %v", res, err)
	}
	if runs.Load() < 2 {
		t.Fatalf("the migration ran %d time(s): a conflicting write was not noticed", runs.Load())
	}
	if ok, _ := exists(s, epIndexKey(netip.MustParseAddr("10.1.0.10"))); ok {
		t.Fatal("the index holds ep0's old address")
	}
	if ok, _ := exists(s, epIndexKey(netip.MustParseAddr("10.1.0.99"))); !ok {
		t.Fatal("the index lacks ep0's new address")
	}
}

func exists(s *store.Store, key string) (bool, error) {
	_, err := s.Get(context.Background(), key, nil)
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}

// TestSchemaDefinitionChecked: a schema with a gap or a duplicate step is
// a programming error, reported before anything is read.
func TestSchemaDefinitionChecked(t *testing.T) {
	s := storetest.New(t)
	ctx := context.Background()
	for _, sc := range []store.Schema{
		{Current: 3, Migrations: []store.Migration{toV3}},
		{Current: 2, Migrations: []store.Migration{toV2, toV2}},
		{Current: 0},
	} {
		if _, err := s.EnsureSchema(ctx, sc, "h1"); err == nil || !strings.HasPrefix(err.Error(), "schema: ") {
			t.Errorf("schema %d with %d migrations: got %v", sc.Current, len(sc.Migrations), err)
		}
	}
	if ok, _ := exists(s, store.SchemaKey); ok {
		t.Fatal("an invalid schema was recorded")
	}
}
