package dockerwatch

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/podnet/podnet/internal/dockerid"
	"github.com/podnet/podnet/store"
)

// Containers in --net host or --net container:X have no endpoint of their
// own on a podnet network, yet services select them by label too: a
// host-mode container is reached at its host's address, a container-mode
// one at X's. The watcher records them in ctrmeta/<host>/<container id>
// while they run, under the same rules as epmeta: written only when
// something changed, deleted when the container stops or goes, and swept
// at every resync (readers filter by the host's liveness).

// otherMode is the ctrmeta mode of a network mode ("" when the container
// is on networks of its own).
func otherMode(mode string) string {
	nm := container.NetworkMode(mode)
	switch {
	case nm.IsHost():
		return store.ModeHost
	case nm.IsContainer():
		return store.ModeContainer
	}
	return ""
}

// ctrMetaOf is the record of a running host- or container-mode container;
// false for any other.
func (w *Watcher) ctrMetaOf(ctx context.Context, c container.InspectResponse) (store.ContainerMeta, bool, error) {
	if c.ContainerJSONBase == nil || c.HostConfig == nil || c.State == nil || !c.State.Running {
		return store.ContainerMeta{}, false, nil
	}
	mode := otherMode(string(c.HostConfig.NetworkMode))
	if mode == "" {
		return store.ContainerMeta{}, false, nil
	}
	m := store.ContainerMeta{Container: c.ID, Name: strings.TrimPrefix(c.Name, "/"), Mode: mode, Ready: Ready(c.State)}
	if c.Config != nil {
		m.Labels = store.SelectableLabels(c.Config.Labels)
	}
	if mode == store.ModeContainer {
		// Docker may keep X's name or short ID here: the record needs X's
		// full ID, which its endpoints' records carry.
		ref := c.HostConfig.NetworkMode.ConnectedContainer()
		p, err := w.inspect(ctx, ref)
		if cerrdefs.IsNotFound(err) {
			return store.ContainerMeta{}, false, nil
		}
		if err != nil {
			return store.ContainerMeta{}, false, fmt.Errorf("container %s shares the network of %s: %w", m.Name, ref, err)
		}
		m.Parent = p.ID
	}
	return m, true, nil
}

func sameCtrMeta(a, b store.ContainerMeta) bool {
	return a.Container == b.Container && a.Name == b.Name && a.Mode == b.Mode && a.Parent == b.Parent &&
		maps.Equal(a.Labels, b.Labels) && a.Ready == b.Ready
}

// syncCtrMeta writes or deletes the record of one container after an
// event; c is nil when the container is gone.
func (w *Watcher) syncCtrMeta(ctx context.Context, id string, c *container.InspectResponse) error {
	if c != nil {
		m, ok, err := w.ctrMetaOf(ctx, *c)
		if err != nil {
			return err
		}
		if ok {
			return w.writeCtrMeta(ctx, m)
		}
	}
	if _, ok := w.ctrCache[id]; !ok {
		return nil
	}
	return w.deleteCtrMeta(ctx, id)
}

func (w *Watcher) writeCtrMeta(ctx context.Context, m store.ContainerMeta) error {
	if old, ok := w.ctrCache[m.Container]; ok && sameCtrMeta(old, m) {
		return nil
	}
	m.Updated = time.Now().UTC()
	if err := store.WriteContainerMeta(ctx, w.cfg.Store, w.cfg.Host, m.Container, &m, w.selects(m.Labels)); err != nil {
		return fmt.Errorf("write metadata of %s-mode container %s: %w", m.Mode, m.Name, err)
	}
	w.ctrCache[m.Container] = m
	w.log.Debug("container metadata written", "container", m.Name, "mode", m.Mode, "ready", m.Ready)
	if m.Parent != "" && w.selects(m.Labels) {
		// The container whose stack it shares is selected with it.
		if _, err := store.ReselectHost(ctx, w.cfg.Store, w.cfg.Host, w.selects); err != nil {
			return fmt.Errorf("select the container %s shares its stack with: %w", dockerid.Short(m.Parent), err)
		}
	}
	return nil
}

func (w *Watcher) deleteCtrMeta(ctx context.Context, id string) error {
	if err := store.WriteContainerMeta(ctx, w.cfg.Store, w.cfg.Host, id, nil, false); err != nil {
		return fmt.Errorf("delete metadata of container %s: %w", dockerid.Short(id), err)
	}
	delete(w.ctrCache, id)
	w.log.Debug("container metadata deleted", "container", dockerid.Short(id))
	return nil
}

// resyncCtrMetas makes ctrmeta/<host>/ hold exactly want, except that
// records of containers in keep (listed, but their inspect failed) stay.
func (w *Watcher) resyncCtrMetas(ctx context.Context, want map[string]store.ContainerMeta, keep map[string]bool) error {
	prefix := store.ContainerMetaPrefix(w.cfg.Host)
	kvs, _, err := w.cfg.Store.List(ctx, prefix)
	if err != nil {
		return fmt.Errorf("list container metadata of host %s: %w", w.cfg.Host, err)
	}
	w.ctrCache = map[string]store.ContainerMeta{}
	current := map[string]store.ContainerMeta{}
	for _, kv := range kvs {
		var m store.ContainerMeta
		_ = kv.Decode(&m) // undecodable: rewritten or deleted below
		current[strings.TrimPrefix(kv.Key, prefix)] = m
	}
	var errs []error
	for id, m := range want {
		if cur, ok := current[id]; ok && sameCtrMeta(cur, m) {
			w.ctrCache[id] = cur
			continue
		}
		if err := w.writeCtrMeta(ctx, m); err != nil {
			errs = append(errs, err)
		}
	}
	for id, cur := range current {
		if _, ok := want[id]; ok {
			continue
		}
		if keep[id] {
			w.ctrCache[id] = cur
			continue
		}
		if err := w.deleteCtrMeta(ctx, id); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
