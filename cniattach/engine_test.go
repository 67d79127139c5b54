package cniattach

import (
	"context"
	"maps"
	"sync"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/events"
	"github.com/podnet/podnet/internal/testutil"
	"github.com/podnet/podnet/store"
	"github.com/podnet/podnet/store/storetest"
)

// fakeEngine is podman's API as the Docker client sees it.
type fakeEngine struct {
	mu     sync.Mutex
	ctrs   map[string]container.InspectResponse
	events chan events.Message
}

func (f *fakeEngine) Events(context.Context, events.ListOptions) (<-chan events.Message, <-chan error) {
	return f.events, make(chan error)
}

func (f *fakeEngine) ContainerList(context.Context, container.ListOptions) ([]container.Summary, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []container.Summary
	for id := range f.ctrs {
		out = append(out, container.Summary{ID: id})
	}
	return out, nil
}

func (f *fakeEngine) ContainerInspect(_ context.Context, id string) (container.InspectResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, ok := f.ctrs[id]
	if !ok {
		return c, cerrdefs.ErrNotFound
	}
	return c, nil
}

func (f *fakeEngine) set(id string, labels map[string]string, paused bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ctrs[id] = container.InspectResponse{ContainerJSONBase: &container.ContainerJSONBase{ID: id,
		State: &container.State{Running: true, Paused: paused}}, Config: &container.Config{Labels: labels}}
}

// CNI passes no labels: the follower copies them, and readiness, from
// podman's API into the attachments' metadata, and leaves alone the
// attachments of containers podman does not have (another runtime's).
func TestFollowerCopiesLabelsAndReadiness(t *testing.T) {
	st := storetest.New(t)
	ctx := context.Background()
	eps := []store.Endpoint{
		{ID: "ep-podman", CNI: &store.CNIAttachment{Network: "pods", ContainerID: "c-podman", IfName: "eth0"}},
		{ID: "ep-kube", CNI: &store.CNIAttachment{Network: "pods", ContainerID: "c-kube", IfName: "eth0"}},
	}
	for _, ep := range eps {
		if err := st.Put(ctx, store.EndpointKey("h1", ep.ID), ep); err != nil {
			t.Fatal(err)
		}
		m := store.EndpointMeta{Endpoint: ep.ID, Container: ep.CNI.ContainerID, Name: ep.CNI.ContainerID, Ready: true, Runtime: store.RuntimeCNI}
		if err := st.Put(ctx, store.EndpointMetaKey("h1", ep.ID), m); err != nil {
			t.Fatal(err)
		}
	}
	eng := &fakeEngine{ctrs: map[string]container.InspectResponse{}, events: make(chan events.Message, 1)}
	eng.set("c-podman", map[string]string{"app": "web"}, false)
	f := NewFollower(FollowerConfig{Host: "h1", Engine: eng, Store: st, Attachments: func() []store.Endpoint { return eps },
		Logger: storetest.Logger(t), Name: "podman"})
	fctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); f.Run(fctx) }()
	t.Cleanup(func() { cancel(); <-done })

	meta := func(ep string) store.EndpointMeta {
		var m store.EndpointMeta
		if _, err := st.Get(ctx, store.EndpointMetaKey("h1", ep), &m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	testutil.Until(t, 10*time.Second, "podman's labels on the attachment", func() bool {
		return maps.Equal(meta("ep-podman").Labels, map[string]string{"app": "web"})
	})
	if m := meta("ep-podman"); !m.Ready || m.Name != "c-podman" || m.Runtime != store.RuntimeCNI {
		t.Fatalf("metadata %+v: labels must be added, nothing else changed", m)
	}
	eng.set("c-podman", map[string]string{"app": "web"}, true)
	eng.events <- events.Message{Type: events.ContainerEventType, Action: events.ActionPause, Actor: events.Actor{ID: "c-podman"}}
	testutil.Until(t, 10*time.Second, "a paused container not ready", func() bool { return !meta("ep-podman").Ready })
	if m := meta("ep-kube"); len(m.Labels) != 0 || !m.Ready {
		t.Fatalf("another runtime's attachment changed: %+v", m)
	}
}
