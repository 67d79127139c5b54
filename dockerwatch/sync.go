package dockerwatch

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/podnet/podnet/internal/dockerid"
	"github.com/podnet/podnet/internal/metrics"
	"github.com/podnet/podnet/store"
)

// resync rebuilds epmeta/<host>/ from a full listing of Docker: it writes
// the metadata of every endpoint on a podnet network whose endpoint record
// exists, deletes metadata whose endpoint record is gone (orphans) or that
// no running container accounts for any more, and reseeds the cache from
// etcd. An error means the round was incomplete; what could be done was.
func (w *Watcher) resync(ctx context.Context) (err error) {
	defer func() { metrics.DockerWatcherResyncs.WithLabelValues(metrics.Outcome(err)).Inc() }()
	if err := w.seedLabels(ctx); err != nil {
		return fmt.Errorf("list Docker containers: %w", err)
	}
	lctx, cancel := context.WithTimeout(ctx, listTimeout)
	list, err := w.cfg.Docker.ContainerList(lctx, container.ListOptions{})
	cancel()
	if err != nil {
		return fmt.Errorf("list Docker containers: %w", err)
	}
	var errs []error
	// seen holds every endpoint a running container has, on any network:
	// metadata of those is never deleted as stale, even when an inspect
	// failed or IsPodnet no longer claims the network.
	seen := map[string]bool{}
	want := map[string]store.EndpointMeta{}
	// Host- and container-mode containers (ctrmeta), and those whose
	// inspect failed (their records stay).
	ctrWant, ctrKeep := map[string]store.ContainerMeta{}, map[string]bool{}
	for _, s := range list {
		if !w.summaryEndpoints(s, seen) && otherMode(s.HostConfig.NetworkMode) == "" {
			continue
		}
		c, err := w.inspect(ctx, s.ID)
		if cerrdefs.IsNotFound(err) {
			w.forgetSummary(s, seen)
			continue
		}
		if err != nil {
			errs = append(errs, err)
			ctrKeep[s.ID] = true
			continue
		}
		if m, ok, err := w.ctrMetaOf(ctx, c); err != nil {
			errs = append(errs, err)
			ctrKeep[s.ID] = true
		} else if ok {
			ctrWant[c.ID] = m
		}
		cm := metasOf(c, w.cfg.IsPodnet)
		for id, m := range cm.want {
			want[id] = m
		}
		for id := range cm.has {
			seen[id] = true
		}
	}

	w.observe(ctx, want)
	if err := w.resyncCtrMetas(ctx, ctrWant, ctrKeep); err != nil {
		errs = append(errs, err)
	}
	exists, current, err := w.listOwn(ctx)
	if err != nil {
		return errors.Join(append(errs, err)...)
	}
	w.cache = map[string]store.EndpointMeta{}
	var written, deleted int
	for id, m := range want {
		if !exists[id] {
			w.log.Debug("endpoint record absent; metadata not written", "endpoint", dockerid.Short(id), "container", m.Name)
			continue
		}
		if cur, ok := current[id]; ok && sameMeta(cur, m) {
			w.cache[id] = cur
			continue
		}
		ok, err := w.write(ctx, m)
		if err != nil {
			errs = append(errs, err)
		} else if ok {
			written++
		}
	}
	for id, cur := range current {
		if _, ok := want[id]; ok || cur.Runtime != "" && exists[id] {
			continue // another runtime's (a CNI attachment's) are not Docker's to judge
		}
		switch {
		case !exists[id]:
			err = w.deleteOrphan(ctx, id)
		case cur.Endpoint == "":
			err = w.deleteMeta(ctx, id, "undecodable")
		case !seen[id]:
			err = w.deleteMeta(ctx, id, "no running container has the endpoint")
		default:
			w.cache[id] = cur
			continue
		}
		if err != nil {
			errs = append(errs, err)
		} else {
			deleted++
		}
	}
	msg := "resync with Docker done"
	if written+deleted > 0 {
		w.log.Info(msg, "containers", len(list), "written", written, "deleted", deleted)
	} else {
		w.log.Debug(msg, "containers", len(list), "endpoints", len(w.cache))
	}
	return errors.Join(errs...)
}

// summaryEndpoints adds the endpoints of a listed container to seen and
// reports whether any of them is on a podnet network (worth an inspect).
func (w *Watcher) summaryEndpoints(s container.Summary, seen map[string]bool) bool {
	if s.NetworkSettings == nil {
		return false
	}
	podnet := false
	for _, es := range s.NetworkSettings.Networks {
		if es == nil || es.EndpointID == "" {
			continue
		}
		seen[es.EndpointID] = true
		if w.cfg.IsPodnet == nil || w.cfg.IsPodnet(es.NetworkID) {
			podnet = true
		}
	}
	return podnet
}

// forgetSummary removes the endpoints of a container that vanished between
// the listing and its inspect.
func (w *Watcher) forgetSummary(s container.Summary, seen map[string]bool) {
	for _, es := range s.NetworkSettings.Networks {
		if es != nil {
			delete(seen, es.EndpointID)
		}
	}
}

// listOwn returns which endpoint records of this host exist and the
// metadata records of this host (undecodable ones as a zero value, so that
// they get rewritten or deleted).
func (w *Watcher) listOwn(ctx context.Context) (map[string]bool, map[string]store.EndpointMeta, error) {
	epPrefix, metaPrefix := store.EndpointsPrefix(w.cfg.Host), store.EndpointMetaPrefix(w.cfg.Host)
	eps, _, err := w.cfg.Store.List(ctx, epPrefix)
	if err != nil {
		return nil, nil, fmt.Errorf("list endpoint records of host %s: %w", w.cfg.Host, err)
	}
	metas, _, err := w.cfg.Store.List(ctx, metaPrefix)
	if err != nil {
		return nil, nil, fmt.Errorf("list endpoint metadata of host %s: %w", w.cfg.Host, err)
	}
	exists := make(map[string]bool, len(eps))
	for _, kv := range eps {
		exists[strings.TrimPrefix(kv.Key, epPrefix)] = true
	}
	current := make(map[string]store.EndpointMeta, len(metas))
	for _, kv := range metas {
		var m store.EndpointMeta
		if err := kv.Decode(&m); err != nil {
			w.log.Warn("undecodable endpoint metadata; replacing it", "err", err)
			m = store.EndpointMeta{}
		}
		current[strings.TrimPrefix(kv.Key, metaPrefix)] = m
	}
	return exists, current, nil
}

// syncContainers re-inspects containers after events.
func (w *Watcher) syncContainers(ctx context.Context, ids []string) error {
	var errs []error
	for _, id := range ids {
		if err := w.syncContainer(ctx, id); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// syncContainer rewrites the metadata of one container's endpoints and
// deletes the metadata of endpoints it no longer has.
func (w *Watcher) syncContainer(ctx context.Context, id string) error {
	var cm containerMetas
	var inspected *container.InspectResponse
	c, err := w.inspect(ctx, id)
	switch {
	case cerrdefs.IsNotFound(err):
		// Removed: everything of it goes.
	case err != nil:
		return err
	default:
		cm = metasOf(c, w.cfg.IsPodnet)
		inspected = &c
	}
	var errs []error
	if err := w.syncCtrMeta(ctx, id, inspected); err != nil {
		errs = append(errs, err)
	}
	for ep, m := range w.cache {
		if m.Container != id || cm.has[ep] {
			continue
		}
		if err := w.deleteMeta(ctx, ep, "container left the network or is gone"); err != nil {
			errs = append(errs, err)
		}
	}
	w.observe(ctx, cm.want)
	for _, m := range cm.want {
		if _, err := w.write(ctx, m); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (w *Watcher) inspect(ctx context.Context, id string) (container.InspectResponse, error) {
	ictx, cancel := context.WithTimeout(ctx, w.cfg.InspectTimeout)
	defer cancel()
	c, err := w.cfg.Docker.ContainerInspect(ictx, id)
	if err != nil {
		return c, fmt.Errorf("inspect container %s: %w", dockerid.Short(id), err)
	}
	return c, nil
}

// write stores m unless the cache says etcd already holds the same, and
// only if the endpoint record exists. It reports whether it wrote.
func (w *Watcher) write(ctx context.Context, m store.EndpointMeta) (bool, error) {
	if old, ok := w.cache[m.Endpoint]; ok && sameMeta(old, m) {
		return false, nil
	}
	m.Updated = time.Now().UTC()
	ok, err := store.WriteEndpointMeta(ctx, w.cfg.Store, w.cfg.Host, m.Endpoint,
		[]store.Cmp{store.Present(store.EndpointKey(w.cfg.Host, m.Endpoint))}, &m, w.selectsEndpoint(m))
	if err != nil {
		return false, fmt.Errorf("write metadata of endpoint %s (container %s): %w", dockerid.Short(m.Endpoint), m.Name, err)
	}
	if !ok {
		delete(w.cache, m.Endpoint)
		w.log.Debug("endpoint record absent; metadata not written", "endpoint", dockerid.Short(m.Endpoint), "container", m.Name)
		return false, nil
	}
	w.cache[m.Endpoint] = m
	w.log.Debug("endpoint metadata written", "endpoint", dockerid.Short(m.Endpoint), "container", m.Name,
		"ipv4", m.IPv4, "ipv6", m.IPv6, "ready", m.Ready)
	return true, nil
}

// deleteMeta removes the metadata of an endpoint Docker no longer shows.
func (w *Watcher) deleteMeta(ctx context.Context, ep, why string) error {
	if _, err := store.WriteEndpointMeta(ctx, w.cfg.Store, w.cfg.Host, ep, nil, nil, false); err != nil {
		return fmt.Errorf("delete metadata of endpoint %s: %w", dockerid.Short(ep), err)
	}
	delete(w.cache, ep)
	w.log.Debug("endpoint metadata deleted", "endpoint", dockerid.Short(ep), "reason", why)
	return nil
}

// deleteOrphan removes metadata whose endpoint record is gone, unless the
// record came back in the meantime.
func (w *Watcher) deleteOrphan(ctx context.Context, ep string) error {
	ok, err := store.WriteEndpointMeta(ctx, w.cfg.Store, w.cfg.Host, ep,
		[]store.Cmp{store.Absent(store.EndpointKey(w.cfg.Host, ep))}, nil, false)
	if err != nil {
		return fmt.Errorf("delete orphaned metadata of endpoint %s: %w", dockerid.Short(ep), err)
	}
	delete(w.cache, ep)
	if ok {
		w.log.Info("orphaned endpoint metadata deleted", "endpoint", dockerid.Short(ep))
	}
	return nil
}
