package dockerwatch

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/events"
	"github.com/podnet/podnet/internal/testutil"
	"github.com/podnet/podnet/store"
	"github.com/podnet/podnet/store/storetest"
)

type recordedHints struct {
	mu       sync.Mutex
	connects []string // network/container/label app
	observed []string // endpoint/label app
	gone     []string
}

func (r *recordedHints) Connected(_ context.Context, network, ctr string, labels map[string]string, _ time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	app := "?"
	if labels != nil {
		app = labels["app"]
	}
	r.connects = append(r.connects, network+"/"+ctr[:4]+"/"+app)
}

func (r *recordedHints) Disconnected(network, ctr string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.gone = append(r.gone, network+"/"+ctr[:4])
}

func (r *recordedHints) Observe(_ context.Context, m store.EndpointMeta) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.observed = append(r.observed, m.Endpoint+"/"+m.Labels["app"])
}

func (r *recordedHints) has(list *[]string, s string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, x := range *list {
		if x == s {
			return true
		}
	}
	return false
}

// The watcher tells the policy agent, in process, which container
// connects to which network with the labels its create event carried,
// before it inspects the container, and then what the inspect said.
func TestWatcherHints(t *testing.T) {
	f := newFakeDocker()
	st := storetest.New(t)
	putEndpoint(t, st, "h1", "ep-web", netPod)
	h := &recordedHints{}
	w := New(Config{Host: "h1", Store: st, Docker: f, IsPodnet: func(id string) bool { return id == netPod },
		Logger: storetest.Logger(t), Hints: h})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); w.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	x := &watcherFix{st: st, f: f}
	s := x.f.latest(t)

	web := ctr{id: containerID("web"), name: "web", state: "running", labels: map[string]string{"app": "web"},
		nets: []netEP{{net: netPod, ep: "ep-web", ip: "10.1.0.7"}}}
	s.send(t, events.Message{Type: events.ContainerEventType, Action: events.ActionCreate,
		Actor: events.Actor{ID: web.id, Attributes: map[string]string{"app": "web", "name": "web", "image": "busybox"}}})
	f.set(web)
	s.send(t, networkEvent(netPod, web.id, events.ActionConnect))
	s.send(t, networkEvent(netOther, web.id, events.ActionConnect))
	testutil.Until(t, 10*time.Second, "connect hint with the create event's labels", func() bool {
		return h.has(&h.connects, netPod+"/"+web.id[:4]+"/web")
	})
	testutil.Until(t, 10*time.Second, "the inspect's metadata observed", func() bool { return h.has(&h.observed, "ep-web/web") })
	if h.has(&h.connects, netOther+"/"+web.id[:4]+"/web") {
		t.Fatal("a connect to a network podnet does not own was hinted")
	}
	s.send(t, networkEvent(netPod, web.id, events.ActionDisconnect))
	testutil.Until(t, 10*time.Second, "disconnect hint", func() bool { return h.has(&h.gone, netPod+"/"+web.id[:4]) })
}
