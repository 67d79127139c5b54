// Package storetest starts a real, embedded single-member etcd for tests.
// It needs no root and no external process: each call gets its own member
// in a temporary directory on free loopback ports, stopped by t.Cleanup.
package storetest

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/podnet/podnet/internal/testutil"
	"github.com/podnet/podnet/store"
)

// Etcd is a running test member.
type Etcd struct {
	Endpoints []string
	cfg       store.EmbeddedConfig
	emb       *store.Embedded // nil while stopped
}

// Start starts an embedded etcd that lives until the test ends.
func Start(t testing.TB) *Etcd {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cp, pp := testutil.FreePort(t), testutil.FreePort(t)
	// A TCP client port (a unix socket path under t.TempDir may not fit
	// 107 bytes); the peer port is TLS as in podnetd.
	cfg := store.EmbeddedConfig{
		DataDir:   t.TempDir(),
		ClientURL: fmt.Sprintf("http://127.0.0.1:%d", cp),
		PeerURL:   fmt.Sprintf("https://127.0.0.1:%d", pp),
		Logger:    Logger(t),
	}
	emb, err := store.StartEmbedded(ctx, cfg)
	if err != nil {
		t.Fatalf("start embedded etcd: %v", err)
	}
	e := &Etcd{Endpoints: emb.Endpoints(), cfg: cfg, emb: emb}
	t.Cleanup(e.Stop)
	return e
}

// Stop stops the member (etcd down); Restart brings it back with its data.
func (e *Etcd) Stop() {
	if e.emb != nil {
		e.emb.Close()
		e.emb = nil
	}
}

// Restart starts the stopped member again on the same ports and data.
func (e *Etcd) Restart(t testing.TB) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	emb, err := store.StartEmbedded(ctx, e.cfg)
	if err != nil {
		t.Fatalf("restart embedded etcd: %v", err)
	}
	e.emb = emb
}

// Client opens a new store client on e with its own connection (as another
// host would have) and the given prefix ("" for the default).
func (e *Etcd) Client(t testing.TB, prefix string) *store.Store {
	t.Helper()
	s, err := store.Open(store.Config{Endpoints: e.Endpoints, Prefix: prefix, Logger: Logger(t)})
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// New is Start(t).Client(t, "").
func New(t testing.TB) *store.Store {
	t.Helper()
	return Start(t).Client(t, "")
}

// Logger logs to stderr at warn level unless PODNET_TEST_DEBUG is set.
func Logger(t testing.TB) *slog.Logger {
	lvl := slog.LevelWarn
	if os.Getenv("PODNET_TEST_DEBUG") != "" {
		lvl = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lvl})).With("test", t.Name())
}

// Put writes v at key, failing the test on error.
func Put(t testing.TB, st *store.Store, key string, v any) {
	t.Helper()
	if err := st.Put(context.Background(), key, v); err != nil {
		t.Fatal(err)
	}
}

// Delete deletes key, failing the test on error.
func Delete(t testing.TB, st *store.Store, key string) {
	t.Helper()
	if err := st.Delete(context.Background(), key); err != nil {
		t.Fatal(err)
	}
}

// Keys lists every key under prefix, failing the test on error.
func Keys(t testing.TB, st *store.Store, prefix string) []string {
	t.Helper()
	kvs, _, err := st.List(context.Background(), prefix)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, kv := range kvs {
		out = append(out, kv.Key)
	}
	return out
}
