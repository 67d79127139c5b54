package dockerwatch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/docker/docker/api/types"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/filters"
	"github.com/podnet/podnet/internal/dockerup"
	"github.com/podnet/podnet/store"
)

// Docker is the part of the Docker API client (*client.Client) the watcher
// uses.
type Docker interface {
	Ping(ctx context.Context) (types.Ping, error)
	Events(ctx context.Context, options events.ListOptions) (<-chan events.Message, <-chan error)
	ContainerList(ctx context.Context, options container.ListOptions) ([]container.Summary, error)
	ContainerInspect(ctx context.Context, id string) (container.InspectResponse, error)
}

// Config wires a Watcher.
type Config struct {
	// Host is this host's name in the cluster (the <host> of the keys).
	Host   string
	Store  *store.Store
	Docker Docker
	// IsPodnet reports whether a Docker network ID is a podnet network on
	// this host; nil means every network (the endpoint-record condition of
	// every write then does the filtering).
	IsPodnet func(networkID string) bool
	Logger   *slog.Logger
	// ResyncInterval is the period of the safety-net full resync (default
	// 5 min); events keep the records current in between.
	ResyncInterval time.Duration
	// InspectTimeout bounds each Docker call made for one event (default
	// 10 s), so a stuck daemon delays events, never wedges the watcher.
	InspectTimeout time.Duration
	// Reach is podnetd's shared view of whether Docker answers (one log
	// line per outage instead of one per retry); nil: the watcher's own.
	Reach *dockerup.Tracker
	// Hints receives what the watcher learns in process (nil: nobody).
	Hints Hints
	// Selects says whether a service or policy selects a container with
	// these labels (its metadata then goes to the selection index,
	// store's selindex.go); nil selects every container.
	Selects store.Selection
}

// selects applies Config.Selects.
func (w *Watcher) selects(labels map[string]string) bool {
	return w.cfg.Selects == nil || w.cfg.Selects(labels)
}

// selectsEndpoint says whether an endpoint's metadata goes to the
// selection index: its container is selected, or a selected --net
// container:X container shares its stack (reached at its address).
func (w *Watcher) selectsEndpoint(m store.EndpointMeta) bool {
	if w.selects(m.Labels) {
		return true
	}
	for _, c := range w.ctrCache {
		if c.Parent == m.Container && w.selects(c.Labels) {
			return true
		}
	}
	return false
}

// Watcher keeps epmeta/<host>/ in line with what Docker says about the
// containers of this host.
type Watcher struct {
	cfg Config
	log *slog.Logger
	// cache is what etcd holds (as far as we know) per endpoint ID of this
	// host, ctrCache per host- or container-mode container ID. Only the Run
	// goroutine touches them.
	cache    map[string]store.EndpointMeta
	ctrCache map[string]store.ContainerMeta
	// labels are the labels of the host's containers (for Hints).
	labels map[string]map[string]string
}

const (
	minBackoff    = 250 * time.Millisecond
	maxBackoff    = 30 * time.Second
	listTimeout   = 30 * time.Second
	maxEventBatch = 256
	// pingEvery is how often an unreachable Docker is asked whether it
	// answers again: a ping of the local socket costs next to nothing,
	// and the watcher must resync within a second of dockerd's return
	// (its containers with restart policies are running by then).
	pingEvery = 250 * time.Millisecond
)

// New builds a Watcher.
func New(cfg Config) *Watcher {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.ResyncInterval <= 0 {
		cfg.ResyncInterval = 5 * time.Minute
	}
	if cfg.InspectTimeout <= 0 {
		cfg.InspectTimeout = 10 * time.Second
	}
	if cfg.Reach == nil {
		cfg.Reach = dockerup.New(cfg.Logger, "")
	}
	return &Watcher{cfg: cfg, log: cfg.Logger, cache: map[string]store.EndpointMeta{},
		ctrCache: map[string]store.ContainerMeta{}, labels: map[string]map[string]string{}}
}

// Run follows Docker until ctx ends. It never gives up: an unreachable
// Docker or etcd is logged and retried with backoff.
func (w *Watcher) Run(ctx context.Context) {
	w.log.Info("Docker watcher started") // podnetd's logger names the host
	defer w.log.Info("Docker watcher stopped")
	backoff := minBackoff
	for ctx.Err() == nil {
		started := time.Now()
		err := w.session(ctx)
		if ctx.Err() != nil {
			return
		}
		if time.Since(started) > time.Minute {
			backoff = minBackoff
		}
		if dockerup.Unreachable(ctx, err) {
			// Docker is gone (stopped, restarting): no growing backoff,
			// which would leave a returned dockerd's containers out of
			// their services for as long as the last sleep; reconnect as
			// soon as it answers.
			w.report(ctx, err, "Docker event stream lost; reconnecting when Docker answers")
			w.awaitDocker(ctx)
			backoff = minBackoff
			continue
		}
		w.report(ctx, err, "Docker event stream lost; reconnecting", "in", backoff)
		sleepCtx(ctx, backoff)
		backoff = min(backoff*2, maxBackoff)
	}
}

// awaitDocker returns once Docker answers a ping (or ctx ends), asking
// every pingEvery.
func (w *Watcher) awaitDocker(ctx context.Context) {
	for ctx.Err() == nil {
		pctx, cancel := context.WithTimeout(ctx, pingEvery*4)
		_, err := w.cfg.Docker.Ping(pctx)
		cancel()
		if err == nil || !dockerup.Unreachable(ctx, err) {
			return
		}
		w.report(ctx, err, "Docker does not answer yet")
		sleepCtx(ctx, pingEvery)
	}
}

// session subscribes to events, resyncs, and follows the stream until it
// fails.
func (w *Watcher) session(ctx context.Context) error {
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// Subscribe first: whatever changes during the listing is then in the
	// stream and gets replayed on top of it.
	msgs, errs := w.cfg.Docker.Events(sctx, events.ListOptions{Filters: filters.NewArgs(
		filters.Arg("type", string(events.ContainerEventType)),
		filters.Arg("type", string(events.NetworkEventType)),
	)})
	resyncErr := w.resync(sctx)
	w.report(sctx, resyncErr, "resync with Docker incomplete; retrying")
	return w.follow(sctx, msgs, errs, resyncErr != nil)
}

// follow handles events until the stream fails or ctx ends. failed says
// the last resync was incomplete, so another is due soon.
func (w *Watcher) follow(ctx context.Context, msgs <-chan events.Message, errs <-chan error, failed bool) error {
	periodic := time.NewTicker(w.cfg.ResyncInterval)
	defer periodic.Stop()
	retry := time.NewTimer(time.Hour)
	defer retry.Stop()
	retry.Stop()
	retryIn := time.Second
	arm := func(failed bool) {
		if !failed {
			retryIn = time.Second
			return
		}
		retry.Reset(retryIn)
		retryIn = min(retryIn*2, maxBackoff)
	}
	arm(failed)
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err, ok := <-errs:
			if !ok || err == nil {
				err = errors.New("stream closed")
			}
			return fmt.Errorf("Docker event stream: %w", err)
		case m, ok := <-msgs:
			if !ok {
				return errors.New("Docker event stream closed")
			}
			ids := w.collect(ctx, m, msgs)
			err := w.syncContainers(ctx, ids)
			observeLag(m, err)
			w.report(ctx, err, "container metadata not updated; resync scheduled", "in", retryIn)
			if err != nil {
				arm(true)
			}
		case <-retry.C:
			err := w.resync(ctx)
			w.report(ctx, err, "resync with Docker incomplete; retrying", "in", retryIn)
			arm(err != nil)
		case <-periodic.C:
			err := w.resync(ctx)
			w.report(ctx, err, "periodic resync with Docker incomplete; retrying", "in", retryIn)
			if err != nil {
				arm(true)
			}
		}
	}
}

// report tells the shared tracker how a round of Docker calls went and
// logs its error: at debug level when it only says Docker is unreachable
// (the tracker logs that once per outage), as a warning otherwise.
func (w *Watcher) report(ctx context.Context, err error, msg string, args ...any) {
	if w.cfg.Reach.Observe(ctx, err) {
		w.log.Debug(msg, append(args, "err", err)...)
	} else if err != nil {
		w.log.Warn(msg, append(args, "err", err)...)
	}
}

// collect turns m and whatever else is already queued (up to a bound) into
// the list of containers to re-inspect, each once, in order of arrival.
func (w *Watcher) collect(ctx context.Context, m events.Message, msgs <-chan events.Message) []string {
	var ids []string
	seen := map[string]bool{}
	add := func(m events.Message) {
		w.hint(ctx, m)
		id := w.relevant(m)
		if id != "" && !seen[id] {
			seen[id] = true
			ids = append(ids, id)
		}
	}
	add(m)
	for n := 1; n < maxEventBatch; n++ {
		select {
		case m, ok := <-msgs:
			if !ok {
				return ids
			}
			add(m)
		default:
			return ids
		}
	}
	return ids
}

// relevant returns the container an event may have changed the metadata
// of, or "".
func (w *Watcher) relevant(m events.Message) string {
	switch m.Type {
	case events.ContainerEventType:
		switch m.Action {
		case events.ActionStart, events.ActionRestart, events.ActionDie, events.ActionStop,
			events.ActionKill, events.ActionPause, events.ActionUnPause, events.ActionRename,
			events.ActionDestroy:
			return m.Actor.ID
		}
		if strings.HasPrefix(string(m.Action), string(events.ActionHealthStatus)) {
			return m.Actor.ID
		}
	case events.NetworkEventType:
		if m.Action != events.ActionConnect && m.Action != events.ActionDisconnect {
			return ""
		}
		id := m.Actor.Attributes["container"]
		if w.cfg.IsPodnet == nil || w.cfg.IsPodnet(m.Actor.ID) || w.knows(id) {
			return id
		}
	}
	return ""
}

// knows reports whether a container has metadata of ours.
func (w *Watcher) knows(containerID string) bool {
	for _, m := range w.cache {
		if m.Container == containerID {
			return true
		}
	}
	return false
}

func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
