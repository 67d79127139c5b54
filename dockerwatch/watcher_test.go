package dockerwatch

import (
	"context"
	"errors"
	"log/slog"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/events"
	"github.com/podnet/podnet/internal/dockerup"
	"github.com/podnet/podnet/internal/testutil"
	"github.com/podnet/podnet/store"
	"github.com/podnet/podnet/store/storetest"
)

const (
	netPod   = "net-podnet-1"
	netPod2  = "net-podnet-2"
	netOther = "net-bridge"
)

type watcherFix struct {
	st *store.Store
	f  *fakeDocker
}

// startWatcher runs a watcher for host h1 on a fresh etcd; prepare runs
// before it starts.
func startWatcher(t *testing.T, f *fakeDocker, prepare func(st *store.Store)) *watcherFix {
	t.Helper()
	st := storetest.New(t)
	if prepare != nil {
		prepare(st)
	}
	w := New(Config{
		Host: "h1", Store: st, Docker: f,
		IsPodnet: func(id string) bool { return id == netPod || id == netPod2 },
		Logger:   storetest.Logger(t),
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); w.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Errorf("watcher did not stop")
		}
	})
	return &watcherFix{st: st, f: f}
}

func putEndpoint(t *testing.T, st *store.Store, host, id, net string) {
	t.Helper()
	if err := st.Put(context.Background(), store.EndpointKey(host, id), store.Endpoint{ID: id, Network: net, Host: host}); err != nil {
		t.Fatal(err)
	}
}

func putMeta(t *testing.T, st *store.Store, host string, m store.EndpointMeta) {
	t.Helper()
	if err := st.Put(context.Background(), store.EndpointMetaKey(host, m.Endpoint), m); err != nil {
		t.Fatal(err)
	}
}

func (x *watcherFix) meta(t *testing.T, ep string) (store.EndpointMeta, bool) {
	t.Helper()
	var m store.EndpointMeta
	_, err := x.st.Get(context.Background(), store.EndpointMetaKey("h1", ep), &m)
	if errors.Is(err, store.ErrNotFound) {
		return m, false
	}
	if err != nil {
		t.Fatal(err)
	}
	return m, true
}

// waitMeta waits until ep's metadata exists and satisfies cond.
func (x *watcherFix) waitMeta(t *testing.T, what, ep string, cond func(store.EndpointMeta) bool) store.EndpointMeta {
	t.Helper()
	var m store.EndpointMeta
	testutil.Until(t, 10*time.Second, what, func() bool {
		var ok bool
		m, ok = x.meta(t, ep)
		return ok && cond(m)
	})
	return m
}

func (x *watcherFix) waitNoMeta(t *testing.T, what, ep string) {
	t.Helper()
	testutil.Until(t, 10*time.Second, what, func() bool { _, ok := x.meta(t, ep); return !ok })
}

// revision is etcd's current revision: it moves with every write.
func (x *watcherFix) revision(t *testing.T) int64 {
	t.Helper()
	_, rev, err := x.st.List(context.Background(), "revision-probe/")
	if err != nil {
		t.Fatal(err)
	}
	return rev
}

func TestWatcherResync(t *testing.T) {
	f := newFakeDocker()
	// A label no selector can match (3 MB) is not copied: the record
	// would be too big for etcd and web would never be registered.
	web := ctr{id: containerID("web"), name: "web", state: "running",
		labels: map[string]string{"app": "web", "blob": strings.Repeat("x", 3<<20)},
		nets: []netEP{
			{net: netPod, ep: "ep-web", ip: "10.1.0.2", ip6: "fd00::2", aliases: []string{containerID("web")[:12], "www", "www"}},
			{net: netOther, ep: "ep-web-bridge", ip: "172.17.0.2"},
		}}
	db := ctr{id: containerID("db"), name: "db", state: "running", nets: []netEP{{net: netPod, ep: "ep-db", ip: "10.1.0.3"}}}
	old := ctr{id: containerID("old"), name: "old", state: "exited", nets: []netEP{{net: netPod}}}
	for _, c := range []ctr{web, db, old} {
		f.set(c)
	}
	x := startWatcher(t, f, func(st *store.Store) {
		putEndpoint(t, st, "h1", "ep-web", netPod)
		putEndpoint(t, st, "h1", "ep-web-bridge", netOther) // not podnet's: never written
		// ep-db has no endpoint record: no metadata may appear for it.
		putMeta(t, st, "h1", store.EndpointMeta{Endpoint: "ep-orphan", Name: "gone", Ready: true})
		putEndpoint(t, st, "h1", "ep-stale", netPod)
		putMeta(t, st, "h1", store.EndpointMeta{Endpoint: "ep-stale", Name: "stopped", Ready: true})
		putMeta(t, st, "h2", store.EndpointMeta{Endpoint: "ep-other-host", Name: "remote", Ready: true})
		// A CNI runtime's container: Docker does not know it, and its
		// metadata is not Docker's to remove.
		putEndpoint(t, st, "h1", "ep-cni", netPod)
		putMeta(t, st, "h1", store.EndpointMeta{Endpoint: "ep-cni", Name: "podman1", Runtime: store.RuntimeCNI, Ready: true})
	})

	m := x.waitMeta(t, "web's metadata", "ep-web", func(store.EndpointMeta) bool { return true })
	want := store.EndpointMeta{Endpoint: "ep-web", Network: netPod, Container: web.id, Name: "web",
		Aliases: []string{"www"}, Labels: map[string]string{"app": "web"}, IPv4: netip.MustParseAddr("10.1.0.2"), IPv6: netip.MustParseAddr("fd00::2"), Ready: true}
	if !sameMeta(m, want) {
		t.Errorf("web's metadata = %+v, want %+v", m, want)
	}
	if m.Updated.IsZero() {
		t.Errorf("Updated not set")
	}
	x.waitNoMeta(t, "orphaned metadata removed", "ep-orphan")
	x.waitNoMeta(t, "stale metadata removed", "ep-stale")
	if m, ok := x.meta(t, "ep-cni"); !ok || m.Name != "podman1" {
		t.Errorf("a CNI attachment's metadata was removed or changed by the Docker watcher: %+v, %v", m, ok)
	}
	for _, ep := range []string{"ep-web-bridge", "ep-db"} {
		if _, ok := x.meta(t, ep); ok {
			t.Errorf("metadata written for %s", ep)
		}
	}
	if _, err := x.st.Get(context.Background(), store.EndpointMetaKey("h2", "ep-other-host"), nil); err != nil {
		t.Errorf("another host's metadata touched: %v", err)
	}
	if _, err := x.st.Get(context.Background(), store.EndpointKey("h1", "ep-stale"), nil); err != nil {
		t.Errorf("the watcher must not delete endpoint records: %v", err)
	}
}

func TestWatcherEvents(t *testing.T) {
	f := newFakeDocker()
	app := ctr{id: containerID("app"), name: "app", state: "running", health: "starting",
		nets: []netEP{{net: netPod, ep: "ep-app", ip: "10.1.0.5"}}}
	f.set(app)
	x := startWatcher(t, f, func(st *store.Store) {
		putEndpoint(t, st, "h1", "ep-app", netPod)
		putEndpoint(t, st, "h1", "ep-app-2", netPod2)
	})
	x.waitMeta(t, "a starting container is not ready", "ep-app", func(m store.EndpointMeta) bool { return !m.Ready })
	s := x.f.latest(t)

	step := func(what string, change func(*ctr), ev events.Message, ready bool) {
		t.Helper()
		change(&app)
		f.set(app)
		s.send(t, ev)
		x.waitMeta(t, what, "ep-app", func(m store.EndpointMeta) bool { return m.Ready == ready })
	}
	health := func(h string) func(*ctr) { return func(c *ctr) { c.health = h } }
	state := func(st string) func(*ctr) { return func(c *ctr) { c.state = st } }
	step("healthy → ready", health("healthy"), containerEvent(app.id, events.ActionHealthStatusHealthy), true)
	step("unhealthy → not ready", health("unhealthy"), containerEvent(app.id, events.ActionHealthStatusUnhealthy), false)
	step("healthy again", health("healthy"), containerEvent(app.id, events.ActionHealthStatusHealthy), true)
	step("paused → not ready", state("paused"), containerEvent(app.id, events.ActionPause), false)
	step("unpaused → ready", state("running"), containerEvent(app.id, events.ActionUnPause), true)

	app.name = "app-renamed"
	f.set(app)
	s.send(t, containerEvent(app.id, events.ActionRename))
	x.waitMeta(t, "rename", "ep-app", func(m store.EndpointMeta) bool { return m.Name == "app-renamed" })

	app.nets = append(app.nets, netEP{net: netPod2, ep: "ep-app-2", ip: "10.2.0.5", aliases: []string{"svc"}})
	f.set(app)
	s.send(t, networkEvent(netPod2, app.id, events.ActionConnect))
	m := x.waitMeta(t, "connect", "ep-app-2", func(store.EndpointMeta) bool { return true })
	if m.Network != netPod2 || m.IPv4.String() != "10.2.0.5" || !slices.Equal(m.Aliases, []string{"svc"}) || !m.Ready {
		t.Errorf("metadata after connect = %+v", m)
	}

	app.nets = app.nets[:1]
	f.set(app)
	s.send(t, networkEvent(netPod2, app.id, events.ActionDisconnect))
	x.waitNoMeta(t, "disconnect", "ep-app-2")

	// die: Docker still shows the endpoint for a moment; then stop has
	// released it.
	step("died → not ready", state("exited"), containerEvent(app.id, events.ActionDie), false)
	app.nets = []netEP{{net: netPod}}
	f.set(app)
	s.send(t, containerEvent(app.id, events.ActionStop))
	x.waitNoMeta(t, "stopped container's metadata removed", "ep-app")
}

func TestWatcherDestroyAndLateWrite(t *testing.T) {
	f := newFakeDocker()
	a := ctr{id: containerID("a"), name: "a", state: "running", nets: []netEP{{net: netPod, ep: "ep-a", ip: "10.1.0.7"}}}
	b := ctr{id: containerID("b"), name: "b", state: "running", nets: []netEP{{net: netPod, ep: "ep-b", ip: "10.1.0.8"}}}
	f.set(a)
	x := startWatcher(t, f, func(st *store.Store) { putEndpoint(t, st, "h1", "ep-a", netPod) })
	x.waitMeta(t, "a's metadata", "ep-a", func(store.EndpointMeta) bool { return true })
	s := x.f.latest(t)

	// The driver deletes endpoint and metadata together; an event arriving
	// afterwards (container still listed by Docker) must not resurrect it.
	ctx := context.Background()
	if _, _, err := x.st.Txn(ctx, nil, []store.Op{store.Delete(store.EndpointKey("h1", "ep-a")),
		store.Delete(store.EndpointMetaKey("h1", "ep-a"))}); err != nil {
		t.Fatal(err)
	}
	a.name = "a2"
	f.set(a)
	s.send(t, containerEvent(a.id, events.ActionRename))
	// b's start is handled after a's rename: once b is there, a's turn is over.
	putEndpoint(t, x.st, "h1", "ep-b", netPod)
	f.set(b)
	s.send(t, containerEvent(b.id, events.ActionStart))
	x.waitMeta(t, "b's metadata", "ep-b", func(store.EndpointMeta) bool { return true })
	if m, ok := x.meta(t, "ep-a"); ok {
		t.Errorf("metadata written without an endpoint record: %+v", m)
	}

	f.remove(b.id)
	s.send(t, containerEvent(b.id, events.ActionDestroy))
	x.waitNoMeta(t, "destroyed container's metadata removed", "ep-b")
}

func TestWatcherSkipsUnchanged(t *testing.T) {
	f := newFakeDocker()
	c := ctr{id: containerID("c"), name: "c", state: "running", health: "healthy", labels: map[string]string{"tier": "1"},
		nets: []netEP{{net: netPod, ep: "ep-c", ip: "10.1.0.9", aliases: []string{"c-alias"}}}}
	f.set(c)
	x := startWatcher(t, f, func(st *store.Store) { putEndpoint(t, st, "h1", "ep-c", netPod) })
	before := x.waitMeta(t, "c's metadata", "ep-c", func(store.EndpointMeta) bool { return true })
	s := x.f.latest(t)
	rev := x.revision(t)

	// Health checks repeat every few seconds; nothing changed, nothing is
	// written.
	for range 3 {
		n := f.inspectCount()
		s.send(t, containerEvent(c.id, events.ActionHealthStatusHealthy))
		testutil.Until(t, 10*time.Second, "the event's inspect", func() bool { return f.inspectCount() > n })
	}
	c.labels = map[string]string{"tier": "2"}
	f.set(c)
	s.send(t, containerEvent(c.id, events.ActionHealthStatusHealthy))
	after := x.waitMeta(t, "label change", "ep-c", func(m store.EndpointMeta) bool { return m.Labels["tier"] == "2" })
	if got := x.revision(t); got != rev+1 {
		t.Errorf("etcd revision moved by %d, want 1 (only the real change)", got-rev)
	}
	if !after.Updated.After(before.Updated) {
		t.Errorf("Updated did not move on a change: %v → %v", before.Updated, after.Updated)
	}
	if !maps.Equal(after.Labels, c.labels) || !slices.Equal(after.Aliases, []string{"c-alias"}) {
		t.Errorf("metadata = %+v", after)
	}
}

func TestWatcherReconnectResyncs(t *testing.T) {
	f := newFakeDocker()
	c := ctr{id: containerID("r"), name: "r", state: "running", nets: []netEP{{net: netPod, ep: "ep-r", ip: "10.1.0.10"}}}
	f.set(c)
	x := startWatcher(t, f, func(st *store.Store) {
		putEndpoint(t, st, "h1", "ep-r", netPod)
		putEndpoint(t, st, "h1", "ep-n", netPod)
	})
	x.waitMeta(t, "r's metadata", "ep-r", func(store.EndpointMeta) bool { return true })
	s := x.f.latest(t)

	// Changes while the stream is broken, never announced by an event.
	c.name = "r-renamed"
	f.set(c)
	f.set(ctr{id: containerID("n"), name: "n", state: "running", nets: []netEP{{net: netPod, ep: "ep-n", ip: "10.1.0.11"}}})
	s.errs <- errors.New("unexpected EOF")
	testutil.Until(t, 10*time.Second, "a new event subscription", func() bool { return f.streamCount() >= 2 })
	x.waitMeta(t, "resync after reconnect (rename)", "ep-r", func(m store.EndpointMeta) bool { return m.Name == "r-renamed" })
	x.waitMeta(t, "resync after reconnect (new container)", "ep-n", func(m store.EndpointMeta) bool { return m.Name == "n" })
}

// TestWatcherResyncsWhenDockerReturns: Docker away for 4 s (long enough
// for a doubling backoff to sleep 4 s more) and back: the watcher resyncs
// within a second of Docker answering again.
func TestWatcherResyncsWhenDockerReturns(t *testing.T) {
	f := newFakeDocker()
	c := ctr{id: containerID("b"), name: "b", state: "running", nets: []netEP{{net: netPod, ep: "ep-b", ip: "10.1.0.13"}}}
	f.set(c)
	x := startWatcher(t, f, func(st *store.Store) {
		putEndpoint(t, st, "h1", "ep-b", netPod)
		putEndpoint(t, st, "h1", "ep-b2", netPod)
	})
	x.waitMeta(t, "b's metadata", "ep-b", func(store.EndpointMeta) bool { return true })
	const away = 4 * time.Second
	f.setDownFor(away)
	back := time.Now().Add(away)
	x.f.latest(t).errs <- errDockerDown
	// What dockerd's restart changed, with no event for it.
	f.set(ctr{id: containerID("b2"), name: "b2", state: "running", nets: []netEP{{net: netPod, ep: "ep-b2", ip: "10.1.0.14"}}})
	x.waitMeta(t, "resync after Docker returned", "ep-b2", func(store.EndpointMeta) bool { return true })
	if late := time.Since(back); late > time.Second {
		t.Fatalf("resync %v after Docker answered again, want within 1 s", late.Round(10*time.Millisecond))
	}
}

func TestWatcherDockerDown(t *testing.T) {
	f := newFakeDocker()
	f.setDown(3)
	f.set(ctr{id: containerID("d"), name: "d", state: "running", nets: []netEP{{net: netPod, ep: "ep-d", ip: "10.1.0.12"}}})
	x := startWatcher(t, f, func(st *store.Store) { putEndpoint(t, st, "h1", "ep-d", netPod) })
	x.waitMeta(t, "metadata once Docker answers", "ep-d", func(store.EndpointMeta) bool { return true })
	if n := f.streamCount(); n < 4 {
		t.Errorf("event subscriptions = %d, want a retry per failure (≥ 4)", n)
	}
}

func TestReady(t *testing.T) {
	for _, tc := range []struct {
		state, health string
		want          bool
	}{
		{"running", "", true},
		{"running", "none", true},
		{"running", "healthy", true},
		{"running", "starting", false},
		{"running", "unhealthy", false},
		{"paused", "", false},
		{"exited", "", false},
		{"exited", "healthy", false},
	} {
		c := ctr{state: tc.state, health: tc.health}
		if got := Ready(c.inspect().State); got != tc.want {
			t.Errorf("ready(%s, health %q) = %v, want %v", tc.state, tc.health, got, tc.want)
		}
	}
}

func TestAliases(t *testing.T) {
	id := containerID("x")
	got := Aliases(id, []string{id[:12], "", "web", id, "web", "abc", id[:3]})
	// A short user alias that happens to prefix the ID is kept.
	if want := []string{"web", "abc", id[:3]}; !slices.Equal(got, want) {
		t.Errorf("aliases = %q, want %q", got, want)
	}
}

// TestWatcherDockerDownLogsOnce: an outage in which every call fails logs
// one warning (from the shared tracker) and one line when Docker answers
// again, not one per retry.
func TestWatcherDockerDownLogsOnce(t *testing.T) {
	f := newFakeDocker()
	// Longer than dockerup.Settle: an outage worth one warning, counted
	// from the watcher's first call (not from here: setup may be slow).
	f.setDownFromFirstCall(2 * dockerup.Settle)
	f.set(ctr{id: containerID("o"), name: "o", state: "running", nets: []netEP{{net: netPod, ep: "ep-o", ip: "10.1.0.13"}}})
	var logs testutil.LogBuffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	st := storetest.New(t)
	putEndpoint(t, st, "h1", "ep-o", netPod)
	w := New(Config{Host: "h1", Store: st, Docker: f, Logger: log,
		Reach: dockerup.New(log, "unix:///var/run/docker.sock")})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); w.Run(ctx) }()
	defer func() { cancel(); <-done }()
	x := &watcherFix{st: st, f: f}
	x.waitMeta(t, "metadata once Docker answers", "ep-o", func(store.EndpointMeta) bool { return true })
	if n := f.streamCount(); n < 2 {
		t.Fatalf("event subscriptions = %d: the outage was not retried", n)
	}
	warns, back := 0, 0
	for _, l := range strings.Split(logs.String(), "\n") {
		if strings.Contains(l, "level=WARN") {
			warns++
			if !strings.Contains(l, "Docker is unreachable") {
				t.Errorf("unexpected warning: %s", l)
			}
		}
		if strings.Contains(l, "Docker is reachable again") {
			back++
		}
	}
	if warns != 1 || back != 1 {
		t.Fatalf("want 1 warning and 1 recovery line, got %d and %d:\n%s", warns, back, logs.String())
	}
}
