package dockerwatch

import (
	"context"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/events"
	"github.com/podnet/podnet/store"
)

// Hints receives, in process, what the watcher learns of this host's
// containers, before and besides what it writes to etcd: the network
// policy agent (package netpol) lifts a new container's isolation from
// it without waiting for an etcd round trip.
type Hints interface {
	// Connected: Docker announced that container joined network (an
	// event Docker sends before the container's process starts); labels
	// are the container's as the watcher knows them, nil when it does not.
	Connected(ctx context.Context, network, container string, labels map[string]string, at time.Time)
	// Disconnected: container left network.
	Disconnected(network, container string)
	// Observe: the metadata of one of this host's endpoints, from an
	// inspect of its container (what is then written to etcd).
	Observe(ctx context.Context, m store.EndpointMeta)
}

// hint passes one event to the hints, before the watcher's (blocking)
// inspect of the container: Docker's create events carry a container's
// labels (its attributes: the labels, with "name" and "image" over any
// label of those names), its connect events the container and the
// network.
func (w *Watcher) hint(ctx context.Context, m events.Message) {
	h := w.cfg.Hints
	if h == nil {
		return
	}
	id := m.Actor.Attributes["container"]
	switch {
	case m.Type == events.ContainerEventType && m.Action == events.ActionCreate:
		// The labels selectors can see, as the records will hold them.
		w.labels[m.Actor.ID] = selectable(m.Actor.Attributes)
	case m.Type == events.ContainerEventType && m.Action == events.ActionDestroy:
		delete(w.labels, m.Actor.ID)
	case m.Type == events.NetworkEventType && m.Action == events.ActionConnect && id != "":
		if w.cfg.IsPodnet == nil || w.cfg.IsPodnet(m.Actor.ID) {
			h.Connected(ctx, m.Actor.ID, id, w.labels[id], time.Unix(0, m.TimeNano))
		}
	case m.Type == events.NetworkEventType && m.Action == events.ActionDisconnect && id != "":
		h.Disconnected(m.Actor.ID, id)
	}
}

// seedLabels learns the labels of every container of the host, stopped
// ones too (a docker start of one announces its connection, not its
// labels).
func (w *Watcher) seedLabels(ctx context.Context) error {
	if w.cfg.Hints == nil {
		return nil
	}
	lctx, cancel := context.WithTimeout(ctx, listTimeout)
	defer cancel()
	list, err := w.cfg.Docker.ContainerList(lctx, container.ListOptions{All: true})
	if err != nil {
		return err
	}
	w.labels = make(map[string]map[string]string, len(list))
	for _, s := range list {
		w.labels[s.ID] = selectable(s.Labels)
	}
	return nil
}

// observe hands the metadata of this host's endpoints to the hints.
func (w *Watcher) observe(ctx context.Context, want map[string]store.EndpointMeta) {
	if w.cfg.Hints == nil {
		return
	}
	for _, m := range want {
		w.cfg.Hints.Observe(ctx, m)
	}
}

// selectable is store.SelectableLabels, never nil (known: no label).
func selectable(labels map[string]string) map[string]string {
	if out := store.SelectableLabels(labels); out != nil {
		return out
	}
	return map[string]string{}
}
