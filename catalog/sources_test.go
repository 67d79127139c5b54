package catalog

import (
	"context"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/podnet/podnet/feed"
	"github.com/podnet/podnet/internal/testutil"
	"github.com/podnet/podnet/store"
	"github.com/podnet/podnet/store/storetest"
)

// TestCatalogHoldsOnlySelectedContainers: the catalog follows the
// selection index, its own host whole, and hosts without the index whole
// while they live; a container nothing selects on an indexed host never
// reaches it; a new selector brings its containers once their host
// reselects; an upgraded host stops being followed whole.
func TestCatalogHoldsOnlySelectedContainers(t *testing.T) {
	st := storetest.New(t)
	ctx := context.Background()
	storetest.Put(t, st, store.AliveKey("h1"), store.HostAlive{Name: "h1", MetaLayout: store.MetaLayoutSelected})
	storetest.Put(t, st, store.AliveKey("h2"), store.HostAlive{Name: "h2", MetaLayout: store.MetaLayoutSelected})
	storetest.Put(t, st, store.AliveKey("h3"), store.HostAlive{Name: "h3"})
	storetest.Put(t, st, store.ServiceKey("web"), store.Service{Name: "web", Selector: map[string]string{"app": "web"},
		ClusterIP: netip.MustParseAddr("10.96.0.20"), Ports: []store.ServicePort{{Protocol: "TCP", Port: 80, TargetPort: 80}}})
	meta := func(ep, ip, app string) *store.EndpointMeta {
		return &store.EndpointMeta{Endpoint: ep, Container: "c" + ep, Name: "c" + ep, IPv4: netip.MustParseAddr(ip), Ready: true,
			Labels: map[string]string{"app": app}, Updated: time.Now().UTC()}
	}
	sel, err := LoadSelection(ctx, st)
	if err != nil {
		t.Fatal(err)
	}
	write := func(host string, m *store.EndpointMeta) {
		t.Helper()
		if _, err := store.WriteEndpointMeta(ctx, st, host, m.Endpoint, nil, m, sel(m.Labels)); err != nil {
			t.Fatal(err)
		}
	}
	write("h1", meta("e1x", "10.0.1.2", "other"))
	write("h2", meta("e2", "10.0.2.1", "web"))
	write("h2", meta("e2x", "10.0.2.2", "other"))
	if got := storetest.Keys(t, st, store.SelectedEndpoints); !slices.Equal(got, []string{"sel/ep/h2/e2"}) {
		t.Fatalf("selection index %v, want only the web container", got)
	}
	storetest.Put(t, st, store.EndpointMetaKey("h3", "e3"), meta("e3", "10.0.3.1", "web")) // an older podnetd
	storetest.Put(t, st, store.EndpointMetaKey("h3", "e3x"), meta("e3x", "10.0.3.2", "other"))

	hctx, cancel := context.WithCancel(ctx)
	defer cancel()
	hub := feed.Start(hctx, st, storetest.Logger(t))
	c := New("h1", false, storetest.Logger(t))
	go c.Run(hctx, hub)
	testutil.Until(t, 10*time.Second, "the catalog loaded", c.Loaded)
	endpoints := func(name string) []string {
		s, _ := c.Lookup(name)
		var out []string
		for _, e := range s.Endpoints {
			out = append(out, e.Addr.String())
		}
		return out
	}
	has := func(host, ctr string) bool {
		c.mu.RLock()
		defer c.mu.RUnlock()
		return c.members[ctrKey{host, ctr}] != nil
	}
	if got := endpoints("web"); !slices.Equal(got, []string{"10.0.2.1", "10.0.3.1"}) {
		t.Fatalf("web endpoints %v", got)
	}
	if has("h2", "ce2x") || !has("h1", "ce1x") || !has("h3", "ce3x") {
		t.Fatal("want: h2's unselected container absent; this host's and the older host's present")
	}
	var metaFeeds []string
	for _, p := range hub.Prefixes() {
		if strings.HasPrefix(p, store.EndpointMetaPrefix("")) {
			metaFeeds = append(metaFeeds, p)
		}
	}
	if !slices.Equal(metaFeeds, []string{"epmeta/h1/", "epmeta/h3/"}) {
		t.Fatalf("metadata followed: %v, want this host's and the older host's only", metaFeeds)
	}
	if !c.Selects(map[string]string{"app": "web", "x": "y"}) || c.Selects(map[string]string{"app": "other"}) {
		t.Fatal("Selects disagrees with the web service")
	}

	// A new selector: its containers come once their host reselects.
	storetest.Put(t, st, store.ServiceKey("other"), store.Service{Name: "other", Selector: map[string]string{"app": "other"},
		ClusterIP: netip.MustParseAddr("10.96.0.21"), Ports: []store.ServicePort{{Protocol: "TCP", Port: 80, TargetPort: 80}}})
	select {
	case <-c.SelectorsChanged():
	case <-time.After(10 * time.Second):
		t.Fatal("no SelectorsChanged after a new service")
	}
	testutil.Until(t, 10*time.Second, "Selects to take the new service", func() bool { return c.Selects(map[string]string{"app": "other"}) })
	if res, err := store.ReselectHost(ctx, st, "h2", c.Selects); err != nil || res.Written != 1 {
		t.Fatalf("ReselectHost(h2) = %+v, %v; want one written", res, err)
	}
	testutil.Until(t, 10*time.Second, "h2's other container in the catalog", func() bool {
		return slices.Contains(endpoints("other"), "10.0.2.2")
	})
	if res, err := store.ReselectHost(ctx, st, "h2", c.Selects); err != nil || res.Written+res.Deleted != 0 {
		t.Fatalf("ReselectHost(h2) again = %+v, %v; want nothing to do", res, err)
	}

	// h3 upgraded: indexed, then says so; no longer followed whole.
	if _, err := store.ReselectHost(ctx, st, "h3", c.Selects); err != nil {
		t.Fatal(err)
	}
	storetest.Put(t, st, store.AliveKey("h3"), store.HostAlive{Name: "h3", MetaLayout: store.MetaLayoutSelected})
	testutil.Until(t, 10*time.Second, "epmeta/h3/ no longer followed", func() bool {
		return !slices.Contains(hub.Prefixes(), store.EndpointMetaPrefix("h3"))
	})
	if got := endpoints("web"); !slices.Equal(got, []string{"10.0.2.1", "10.0.3.1"}) {
		t.Fatalf("web endpoints after h3's upgrade %v", got)
	}
	// The service goes: h2 unselects its container, which leaves.
	storetest.Delete(t, st, store.ServiceKey("other"))
	testutil.Until(t, 10*time.Second, "Selects to drop the service", func() bool { return !c.Selects(map[string]string{"app": "other"}) })
	if res, err := store.ReselectHost(ctx, st, "h2", c.Selects); err != nil || res.Deleted != 1 {
		t.Fatalf("ReselectHost(h2) = %+v, %v; want one deleted", res, err)
	}
	testutil.Until(t, 10*time.Second, "h2's other container gone", func() bool { return !has("h2", "ce2x") })
	// A deleted container leaves the index with its record.
	if _, err := store.WriteEndpointMeta(ctx, st, "h2", "e2", nil, nil, false); err != nil {
		t.Fatal(err)
	}
	testutil.Until(t, 10*time.Second, "h2's web container gone", func() bool { return !slices.Contains(endpoints("web"), "10.0.2.1") })
}
