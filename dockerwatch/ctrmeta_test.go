package dockerwatch

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/docker/docker/api/types/events"
	"github.com/podnet/podnet/internal/testutil"
	"github.com/podnet/podnet/store"
	"github.com/podnet/podnet/store/storetest"
)

func (x *watcherFix) ctrMeta(t *testing.T, id string) (store.ContainerMeta, bool) {
	t.Helper()
	var m store.ContainerMeta
	_, err := x.st.Get(context.Background(), store.ContainerMetaKey("h1", id), &m)
	if errors.Is(err, store.ErrNotFound) {
		return m, false
	}
	if err != nil {
		t.Fatal(err)
	}
	return m, true
}

// Host- and container-mode containers get ctrmeta records: written while
// they run (with their readiness), deleted when they go, swept by resync.
func TestWatcherHostAndContainerMode(t *testing.T) {
	f := newFakeDocker()
	webC := ctr{id: containerID("web"), name: "web", state: "running", nets: []netEP{{net: netPod, ep: "ep-web", ip: "10.1.0.2"}}}
	hm := ctr{id: containerID("hm"), name: "hm", state: "running", netMode: "host", labels: map[string]string{"app": "hm"},
		health: "healthy", nets: []netEP{{net: "host-net", ep: "ep-host"}}}
	cm := ctr{id: containerID("cm"), name: "cm", state: "running", netMode: "container:web", labels: map[string]string{"app": "cm"}}
	for _, c := range []ctr{webC, hm, cm} {
		f.set(c)
	}
	x := startWatcher(t, f, func(st *store.Store) {
		putEndpoint(t, st, "h1", "ep-web", netPod)
		storetest.Put(t, st, store.ContainerMetaKey("h1", "stale"), store.ContainerMeta{Container: "stale", Mode: "host"})
	})
	testutil.Until(t, 10*time.Second, "hm's record", func() bool {
		m, ok := x.ctrMeta(t, hm.id)
		return ok && m.Mode == "host" && m.Ready && m.Labels["app"] == "hm" && m.Name == "hm"
	})
	testutil.Until(t, 10*time.Second, "cm's record, parent by full ID", func() bool {
		m, ok := x.ctrMeta(t, cm.id)
		return ok && m.Mode == "container" && m.Parent == webC.id
	})
	testutil.Until(t, 10*time.Second, "the stale record swept", func() bool { _, ok := x.ctrMeta(t, "stale"); return !ok })
	if _, ok := x.ctrMeta(t, webC.id); ok {
		t.Fatal("a container with its own podnet endpoint got a ctrmeta record")
	}

	s := f.latest(t)
	hm.health = "unhealthy"
	f.set(hm)
	s.send(t, containerEvent(hm.id, "health_status: unhealthy"))
	testutil.Until(t, 10*time.Second, "hm not ready", func() bool { m, ok := x.ctrMeta(t, hm.id); return ok && !m.Ready })
	hm.state = "exited"
	f.set(hm)
	s.send(t, containerEvent(hm.id, events.ActionDie))
	testutil.Until(t, 10*time.Second, "hm's record gone when it stops", func() bool { _, ok := x.ctrMeta(t, hm.id); return !ok })
	f.remove(cm.id)
	s.send(t, containerEvent(cm.id, events.ActionDestroy))
	testutil.Until(t, 10*time.Second, "cm's record gone with it", func() bool { _, ok := x.ctrMeta(t, cm.id); return !ok })
}
