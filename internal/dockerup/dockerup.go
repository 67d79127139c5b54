// Package dockerup is podnetd's one notion of whether the local Docker
// daemon answers. The Docker watcher, the garbage collector and the network
// fan-out all call the same daemon; each reports the outcome of its calls
// here, and the Tracker logs one warning when Docker becomes unreachable
// and one line when it answers again, instead of every agent logging every
// retry.
//
// # Design notes
//
//   - Why. dockerd ≥ 28 closes its API as soon as it starts shutting down,
//     then spends up to the containers' stop timeouts stopping them; every
//     agent that retries in that window used to log each attempt (about a
//     dozen warnings per dockerd stop). What an operator needs is the
//     transition: "Docker is unreachable" and "Docker is reachable again,
//     after 12s".
//   - What counts as unreachable: an error the Docker client classifies as
//     a connection failure (dial refused, socket missing, a timeout while
//     connecting), an event stream cut short (EOF), and a call that ran out
//     of its own deadline while the caller's context is still alive (a
//     daemon that accepts connections but no longer answers). Every other
//     error (404, a refused request) is an answer: Docker is reachable and
//     the caller logs its error as before.
//   - Any answer from any agent marks Docker reachable; unreachable errors
//     from any agent for Settle (1 s) in a row mark it unreachable. The
//     delay is not cosmetic: a stopping dockerd refuses new connections
//     while it still answers on open ones, so its first second flaps
//     between the two. Agents ask Observe whether an error was "only"
//     unreachability, and then log it at debug level.
package dockerup

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/docker/docker/client"
	"github.com/podnet/podnet/internal/metrics"
)

// Tracker records whether Docker answers, and logs transitions.
type Tracker struct {
	log  *slog.Logger
	host string

	mu sync.Mutex
	// down is set once unreachable errors lasted Settle; failing is when
	// the current run of them began (zero: the last call was answered).
	down    bool
	failing time.Time
	now     func() time.Time
}

// Settle is how long calls must keep failing before Docker counts as
// unreachable.
const Settle = time.Second

// New returns a Tracker that assumes Docker is reachable until a call says
// otherwise. host names the daemon in log lines (e.g. unix:///var/run/docker.sock).
func New(log *slog.Logger, host string) *Tracker {
	if log == nil {
		log = slog.Default()
	}
	return &Tracker{log: log, host: host, now: time.Now}
}

// Unreachable reports whether err (returned by a Docker API call made
// under ctx) means the daemon could not be reached, as opposed to an
// answer. A nil err is false.
func Unreachable(ctx context.Context, err error) bool {
	switch {
	case err == nil:
		return false
	case client.IsErrConnectionFailed(err):
		return true
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return true
	case errors.Is(err, context.DeadlineExceeded):
		// The call's own timeout, not the caller giving up.
		return ctx.Err() == nil
	}
	return false
}

// Observe records the outcome of a Docker call made under ctx: nil marks
// Docker reachable; an unreachable error (see Unreachable) marks it
// unreachable and returns true, so the caller can stay quiet about it.
// Errors of a caller whose ctx is done (podnetd stopping) change nothing.
func (t *Tracker) Observe(ctx context.Context, err error) bool {
	if err != nil && ctx.Err() != nil {
		return false
	}
	if err == nil {
		t.set(false, nil)
		return false
	}
	if !Unreachable(ctx, err) {
		// An answer, even an error one, means the daemon is there.
		t.set(false, nil)
		return false
	}
	t.set(true, err)
	return true
}

// Reachable reports the last known state.
func (t *Tracker) Reachable() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return !t.down
}

func (t *Tracker) set(failed bool, err error) {
	t.mu.Lock()
	now := t.now()
	if failed {
		if t.failing.IsZero() {
			t.failing = now
		}
		logDown := !t.down && now.Sub(t.failing) >= Settle
		t.down = t.down || logDown
		since := t.failing
		t.mu.Unlock()
		if logDown {
			metrics.DockerReachable.Set(0)
			t.log.Warn("Docker is unreachable; container names, garbage collection and network fan-out wait for it",
				"docker", t.host, "since", since.Format(time.RFC3339), "err", err)
		}
		return
	}
	wasDown, since := t.down, t.failing
	t.down, t.failing = false, time.Time{}
	t.mu.Unlock()
	if wasDown {
		metrics.DockerReachable.Set(1)
		t.log.Info("Docker is reachable again", "docker", t.host, "after", now.Sub(since).Round(time.Second).String())
	}
}
