package dockerup

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/podnet/podnet/internal/metrics"
	"github.com/podnet/podnet/internal/metrics/metricstest"
)

// TestReachableGauge: podnet_docker_reachable drops to 0 when the tracker
// declares Docker unreachable and returns to 1 with the next answer.
func TestReachableGauge(t *testing.T) {
	tr := New(slog.New(slog.NewTextHandler(io.Discard, nil)), "unix:///run/d.sock")
	clock := time.Unix(1000, 0)
	tr.now = func() time.Time { return clock }
	ctx := context.Background()
	_, down := dockerAt(t, filepath.Join(t.TempDir(), "absent.sock")).Ping(ctx)
	gauge := func() float64 { return metricstest.Value(metrics.DockerReachable) }
	tr.Observe(ctx, down)
	clock = clock.Add(Settle)
	tr.Observe(ctx, down)
	if gauge() != 0 {
		t.Fatalf("podnet_docker_reachable = %v while Docker is unreachable, want 0", gauge())
	}
	tr.Observe(ctx, nil)
	if gauge() != 1 {
		t.Fatalf("podnet_docker_reachable = %v after an answer, want 1", gauge())
	}
}
