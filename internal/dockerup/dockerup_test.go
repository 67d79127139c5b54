package dockerup

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/client"
	"github.com/podnet/podnet/internal/testutil"
)

// dockerAt is a real Docker API client for a unix socket path.
func dockerAt(t *testing.T, sock string) *client.Client {
	t.Helper()
	c, err := client.NewClientWithOpts(client.WithHost("unix://"+sock), client.WithVersion("1.41"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// serve answers on a unix socket with h until the test ends.
func serve(t *testing.T, h http.Handler) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "d.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	return sock
}

// TestUnreachableClassifiesRealClientErrors feeds the classifier what the
// real Docker client returns for a missing daemon, a daemon that cuts an
// event stream, one that hangs, and one that answers with an error.
func TestUnreachableClassifiesRealClientErrors(t *testing.T) {
	ctx := context.Background()

	_, err := dockerAt(t, filepath.Join(t.TempDir(), "absent.sock")).Ping(ctx)
	if !Unreachable(ctx, err) {
		t.Errorf("missing socket: %v not classified unreachable", err)
	}

	cut := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write([]byte(`{"Type":"container","Action":"start"}` + "\n" + `{"Type":"conta`))
	}))
	msgs, errs := dockerAt(t, cut).Events(ctx, events.ListOptions{})
	select {
	case <-msgs:
		err = <-errs
	case err = <-errs:
	case <-time.After(10 * time.Second):
		t.Fatal("no error from a cut event stream")
	}
	if !Unreachable(ctx, err) {
		t.Errorf("cut event stream: %v not classified unreachable", err)
	}

	hang := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }))
	cctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	_, err = dockerAt(t, hang).ContainerList(cctx, container.ListOptions{})
	cancel()
	if !Unreachable(ctx, err) {
		t.Errorf("hung daemon: %v not classified unreachable", err)
	}
	// The same error when the caller itself is stopping is no verdict.
	stopped, stop := context.WithCancel(ctx)
	stop()
	if Unreachable(stopped, context.DeadlineExceeded) {
		t.Error("a stopping caller's deadline classified unreachable")
	}

	answers := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusNotFound)
		_, _ = w.Write([]byte(`{"message":"No such container: x"}`))
	}))
	_, err = dockerAt(t, answers).ContainerInspect(ctx, "x")
	if err == nil || Unreachable(ctx, err) {
		t.Errorf("404 answer: %v classified unreachable (or no error)", err)
	}
}

// TestOneLinePerTransition: many agents failing many times while Docker is
// down log one warning; the first success logs one line; answers that are
// errors count as reachable.
func TestOneLinePerTransition(t *testing.T) {
	var sink testutil.LogBuffer
	tr := New(slog.New(slog.NewTextHandler(&sink, nil)), "unix:///run/d.sock")
	clock := time.Unix(1000, 0)
	tr.now = func() time.Time { return clock }
	ctx := context.Background()
	_, down := dockerAt(t, filepath.Join(t.TempDir(), "absent.sock")).Ping(ctx)

	// A stopping dockerd flaps: a refused connection, then an answer on an
	// open one. Less than Settle of failures logs nothing.
	tr.Observe(ctx, down)
	clock = clock.Add(Settle / 2)
	tr.Observe(ctx, errNotFound{})
	if !tr.Reachable() || len(sink.Lines()) != 0 {
		t.Fatalf("a flap was logged: %v", sink.Lines())
	}

	tr.Observe(ctx, down)
	clock = clock.Add(Settle)
	var wg sync.WaitGroup
	for range 3 { // watcher, reconciler, netsync
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 20 {
				if !tr.Observe(ctx, down) {
					t.Error("Observe did not report an unreachable error")
				}
			}
		}()
	}
	wg.Wait()
	if tr.Reachable() {
		t.Fatal("still reachable after connection failures")
	}
	clock = clock.Add(11 * time.Second)
	if tr.Observe(ctx, nil) {
		t.Fatal("success reported unreachable")
	}
	tr.Observe(ctx, nil)
	lines := sink.Lines()
	if len(lines) != 2 {
		t.Fatalf("want 2 log lines (down, up), got %d:\n%s", len(lines), strings.Join(lines, "\n"))
	}
	if !strings.Contains(lines[0], "level=WARN") || !strings.Contains(lines[0], "Docker is unreachable") ||
		!strings.Contains(lines[0], "Cannot connect to the Docker daemon") {
		t.Errorf("down line: %s", lines[0])
	}
	if !strings.Contains(lines[1], "Docker is reachable again") || !strings.Contains(lines[1], "after=12s") {
		t.Errorf("up line: %s", lines[1])
	}

	// An error answer is an answer: it does not take Docker down.
	if tr.Observe(ctx, errNotFound{}) || !tr.Reachable() || len(sink.Lines()) != 2 {
		t.Errorf("an error answer changed the state: %v", sink.Lines())
	}
	// A caller that is stopping changes nothing.
	stopped, stop := context.WithCancel(ctx)
	stop()
	if tr.Observe(stopped, down) || !tr.Reachable() {
		t.Error("a stopping caller's failure took Docker down")
	}
}

type errNotFound struct{}

func (errNotFound) Error() string  { return "No such container: x" }
func (errNotFound) NotFound() bool { return true }
