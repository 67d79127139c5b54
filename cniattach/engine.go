package cniattach

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/filters"
	"github.com/podnet/podnet/dockerwatch"
	"github.com/podnet/podnet/internal/dockerid"
	"github.com/podnet/podnet/store"
)

// Engine is the Docker-compatible API of a CNI runtime's engine (podman
// system service), as the Docker client speaks it.
type Engine interface {
	Events(ctx context.Context, options events.ListOptions) (<-chan events.Message, <-chan error)
	ContainerList(ctx context.Context, options container.ListOptions) ([]container.Summary, error)
	ContainerInspect(ctx context.Context, id string) (container.InspectResponse, error)
}

// MetaStore reads and conditionally writes the metadata records.
type MetaStore interface {
	Get(ctx context.Context, key string, v any) (int64, error)
	Txn(ctx context.Context, cmps []store.Cmp, ops []store.Op) (bool, int64, error)
}

// selectedOp writes or deletes the attachment's selection index key
// (store's selindex.go) as Selects says (every one without it).
func (f *Follower) selectedOp(ep string, m store.EndpointMeta) store.Op {
	if f.cfg.Selects == nil || f.cfg.Selects(m.Labels) {
		return store.Put(store.SelectedEndpointKey(f.cfg.Host, ep), m)
	}
	return store.Delete(store.SelectedEndpointKey(f.cfg.Host, ep))
}

// FollowerConfig wires a Follower.
type FollowerConfig struct {
	// Selects says whether a service or policy selects a container with
	// these labels; nil selects every one.
	Selects store.Selection
	Host    string
	Engine  Engine
	Store   MetaStore
	// Attachments lists this host's CNI endpoints (the driver's).
	Attachments func() []store.Endpoint
	Logger      *slog.Logger
	// Name is the engine's name in log lines (podman) and Addr where it
	// listens.
	Name, Addr string
	// ResyncInterval is the period of the full resync (default 1 min).
	ResyncInterval time.Duration
}

// Follower keeps the labels and readiness of CNI attachments' metadata
// in line with what the engine says of their containers. CNI passes no
// labels; podman's API has them.
type Follower struct {
	cfg FollowerConfig
	log *slog.Logger
}

// NewFollower builds a Follower.
func NewFollower(cfg FollowerConfig) *Follower {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.ResyncInterval <= 0 {
		cfg.ResyncInterval = time.Minute
	}
	return &Follower{cfg: cfg, log: cfg.Logger}
}

// Run follows the engine until ctx ends, reconnecting with backoff. An
// engine that is not running is normal (podman's API is socket-activated,
// or not used at all): that is logged once, not per retry.
func (f *Follower) Run(ctx context.Context) {
	backoff, reported := time.Second, false
	for ctx.Err() == nil {
		err := f.session(ctx)
		if ctx.Err() != nil {
			return
		}
		if !reported {
			f.log.Info("container engine not followed; CNI attachments get its labels once it answers", "engine", f.cfg.Name, "addr", f.cfg.Addr, "err", err)
			reported = true
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 30*time.Second)
	}
}

// session subscribes to container events, resyncs, and applies events
// until the stream fails.
func (f *Follower) session(ctx context.Context) error {
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	msgs, errs := f.cfg.Engine.Events(sctx, events.ListOptions{Filters: filters.NewArgs(filters.Arg("type", string(events.ContainerEventType)))})
	if err := f.resync(sctx); err != nil {
		return err
	}
	f.log.Info("following the container engine for CNI attachments' labels", "engine", f.cfg.Name, "addr", f.cfg.Addr)
	t := time.NewTicker(f.cfg.ResyncInterval)
	defer t.Stop()
	for {
		select {
		case <-sctx.Done():
			return sctx.Err()
		case err := <-errs:
			return fmt.Errorf("%s event stream: %w", f.cfg.Name, err)
		case m, ok := <-msgs:
			if !ok {
				return fmt.Errorf("%s event stream closed", f.cfg.Name)
			}
			if m.Actor.ID != "" && relevant(m.Action) {
				if err := f.sync(sctx, m.Actor.ID); err != nil {
					f.log.Warn("CNI attachment metadata not updated", "container", dockerid.Short(m.Actor.ID), "err", err)
				}
			}
		case <-t.C:
			if err := f.resync(sctx); err != nil {
				return err
			}
		}
	}
}

func relevant(a events.Action) bool {
	switch a {
	case events.ActionStart, events.ActionRestart, events.ActionDie, events.ActionStop, events.ActionPause,
		events.ActionUnPause, events.ActionRename, events.ActionKill:
		return true
	}
	return strings.HasPrefix(string(a), string(events.ActionHealthStatus))
}

// resync updates every attachment whose container the engine has.
func (f *Follower) resync(ctx context.Context) error {
	lctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	list, err := f.cfg.Engine.ContainerList(lctx, container.ListOptions{All: true})
	if err != nil {
		return fmt.Errorf("list %s containers: %w", f.cfg.Name, err)
	}
	attached := map[string]bool{}
	for _, ep := range f.cfg.Attachments() {
		attached[ep.CNI.ContainerID] = true
	}
	var errs []error
	for _, c := range list {
		if attached[c.ID] {
			errs = append(errs, f.sync(ctx, c.ID))
		}
	}
	return errors.Join(errs...)
}

// sync rewrites the labels and readiness of container id's attachments.
func (f *Follower) sync(ctx context.Context, id string) error {
	var eps []store.Endpoint
	for _, ep := range f.cfg.Attachments() {
		if ep.CNI.ContainerID == id {
			eps = append(eps, ep)
		}
	}
	if len(eps) == 0 {
		return nil
	}
	ictx, cancel := context.WithTimeout(ctx, 10*time.Second)
	c, err := f.cfg.Engine.ContainerInspect(ictx, id)
	cancel()
	if cerrdefs.IsNotFound(err) {
		return nil // removed: its DEL removes the metadata too
	}
	if err != nil {
		return fmt.Errorf("inspect %s container %s: %w", f.cfg.Name, dockerid.Short(id), err)
	}
	var labels map[string]string
	if c.Config != nil && len(c.Config.Labels) > 0 {
		labels = maps.Clone(c.Config.Labels)
	}
	rdy := dockerwatch.Ready(c.State)
	var errs []error
	for _, ep := range eps {
		errs = append(errs, f.write(ctx, ep.ID, labels, rdy))
	}
	return errors.Join(errs...)
}

// write sets the labels and readiness of one attachment's metadata, if
// they changed, conditioned on the endpoint and on the metadata being as
// read (a DEL in between wins; a new ADD's record is read again).
func (f *Follower) write(ctx context.Context, ep string, labels map[string]string, rdy bool) error {
	key := store.EndpointMetaKey(f.cfg.Host, ep)
	for range 3 {
		var m store.EndpointMeta
		rev, err := f.cfg.Store.Get(ctx, key, &m)
		if errors.Is(err, store.ErrNotFound) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read metadata of endpoint %s: %w", dockerid.Short(ep), err)
		}
		if maps.Equal(m.Labels, labels) && m.Ready == rdy {
			return nil
		}
		old := m
		m.Labels, m.Ready, m.Updated = labels, rdy, time.Now().UTC()
		ok, _, err := f.cfg.Store.Txn(ctx, []store.Cmp{store.Present(store.EndpointKey(f.cfg.Host, ep)), store.ModRevIs(key, rev)},
			append([]store.Op{store.Put(key, m), f.selectedOp(ep, m)}, store.DNSIndexOps(f.cfg.Host, ep, &old, &m)...))
		if err != nil {
			return fmt.Errorf("write metadata of endpoint %s: %w", dockerid.Short(ep), err)
		}
		if ok {
			f.log.Debug("CNI attachment metadata updated", "endpoint", dockerid.Short(ep), "container", m.Name, "ready", rdy, "labels", len(labels))
			return nil
		}
	}
	return fmt.Errorf("metadata of endpoint %s keeps changing; the next resync retries", dockerid.Short(ep))
}
