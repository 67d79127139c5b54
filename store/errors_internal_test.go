package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"testing"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestTransientByIdentity(t *testing.T) {
	for _, c := range []struct {
		err  error
		want bool
	}{
		{rpctypes.ErrNoLeader, true},
		{rpctypes.ErrLeaderChanged, true},
		{rpctypes.ErrTimeout, true},
		{rpctypes.ErrTimeoutDueToLeaderFail, true},
		{rpctypes.ErrTooManyRequests, true},
		{status.Error(codes.Unavailable, "connection reset"), true},
		{fmt.Errorf("attempt: %w", context.DeadlineExceeded), true},
		{errNoConnection, true},
		{rpctypes.ErrCompacted, false},
		{rpctypes.ErrRequestTooLarge, false},
		{rpctypes.ErrNoSpace, false},
		{rpctypes.ErrPermissionDenied, false},
		{status.Error(codes.Unknown, "Unavailable connection refused"), false}, // text is not identity
		{errors.New("connection refused"), false},
	} {
		if got := transient(c.err); got != c.want {
			t.Errorf("transient(%v) = %v, want %v", c.err, got, c.want)
		}
	}
}

func TestWrapKeepsTheCauseAndBlamesTheRightParty(t *testing.T) {
	s := &Store{endpoints: []string{"http://e1:2379"}}
	err := s.wrap(context.Background(), "txn", "k", rpctypes.ErrNoLeader)
	if !errors.Is(err, ErrUnavailable) || !errors.Is(err, rpctypes.ErrNoLeader) {
		t.Fatalf("no leader: %v must be ErrUnavailable and keep rpctypes.ErrNoLeader", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err = s.wrap(ctx, "txn", "k", status.Error(codes.Canceled, "context canceled"))
	if !errors.Is(err, context.Canceled) || errors.Is(err, ErrUnavailable) {
		t.Fatalf("cancelled: %v must be context.Canceled, not ErrUnavailable", err)
	}
	err = s.wrap(context.Background(), "txn", "k", rpctypes.ErrCompacted)
	if errors.Is(err, ErrUnavailable) || !errors.Is(err, rpctypes.ErrCompacted) {
		t.Fatalf("compacted: %v", err)
	}
}

// applied is how a retried transaction recognises its own earlier write.
func TestAppliedRecognisesOnlyItsOwnWrite(t *testing.T) {
	s := newInternal(t)
	ctx := context.Background()
	ws := func(ops ...Op) []write {
		var out []write
		for _, o := range ops {
			w, err := s.write(o)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, w)
		}
		return out
	}
	mine := ws(Put("a", map[string]int{"n": 1}), Put("b", map[string]int{"n": 2}), Delete("gone"))
	resp, err := s.cli.Txn(ctx).Then(mine[0].op(), mine[1].op(), mine[2].op()).Commit()
	if err != nil {
		t.Fatal(err)
	}
	if rev, ok := s.applied(ctx, "a", mine); !ok || rev != resp.Header.Revision {
		t.Fatalf("own transaction not recognised: %v rev %d, want rev %d", ok, rev, resp.Header.Revision)
	}
	if _, ok := s.applied(ctx, "a", ws(Put("a", map[string]int{"n": 9}))); ok {
		t.Fatal("another value taken for this write")
	}
	// Same values written by two transactions: not one write of both.
	if _, err := s.cli.Put(ctx, s.abs("b"), string(mine[1].value)); err != nil {
		t.Fatal(err)
	}
	if _, ok := s.applied(ctx, "a", mine); ok {
		t.Fatal("keys written at two revisions taken for one transaction")
	}
	if _, err := s.cli.Put(ctx, s.abs("gone"), "x"); err != nil {
		t.Fatal(err)
	}
	if _, ok := s.applied(ctx, "gone", ws(Delete("gone"))); ok {
		t.Fatal("a key that exists taken for deleted")
	}
	lease, err := s.cli.Grant(ctx, 60)
	if err != nil {
		t.Fatal(err)
	}
	leased := ws(PutLeased("l", 1, LeaseID(lease.ID)))
	if _, err := s.cli.Put(ctx, s.abs("l"), string(leased[0].value)); err != nil {
		t.Fatal(err)
	}
	if _, ok := s.applied(ctx, "l", leased); ok {
		t.Fatal("a key without the lease taken for a leased write")
	}
	if _, err := s.cli.Put(ctx, s.abs("l"), string(leased[0].value), clientv3.WithLease(lease.ID)); err != nil {
		t.Fatal(err)
	}
	if _, ok := s.applied(ctx, "l", leased); !ok {
		t.Fatal("leased write not recognised")
	}
}

// newInternal starts an embedded member for tests inside the package
// (storetest imports store, so it cannot be used here).
func newInternal(t *testing.T) *Store {
	t.Helper()
	port := func() int {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		return l.Addr().(*net.TCPAddr).Port
	}
	emb, err := StartEmbedded(context.Background(), EmbeddedConfig{DataDir: t.TempDir(),
		ClientURL: fmt.Sprintf("http://127.0.0.1:%d", port()), PeerURL: fmt.Sprintf("http://127.0.0.1:%d", port()),
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(emb.Close)
	s, err := Open(Config{Endpoints: emb.Endpoints(), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}
