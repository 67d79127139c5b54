package store_test

import (
	"context"
	"slices"
	"testing"

	"github.com/podnet/podnet/store"
	"github.com/podnet/podnet/store/storetest"
)

// TestReselectHost: the selection index holds exactly the selected
// records of the host (and the endpoints a selected --net container:X
// container is reached through), copies them as they are, and drops keys
// without a record; a second run has nothing to do.
func TestReselectHost(t *testing.T) {
	st := storetest.New(t)
	ctx := context.Background()
	web := map[string]string{"app": "web"}
	selects := func(l map[string]string) bool { return l["app"] == "web" }
	storetest.Put(t, st, store.EndpointMetaKey("h1", "e1"), store.EndpointMeta{Endpoint: "e1", Container: "c1", Labels: web})
	storetest.Put(t, st, store.EndpointMetaKey("h1", "e2"), store.EndpointMeta{Endpoint: "e2", Container: "c2"})
	storetest.Put(t, st, store.EndpointMetaKey("h1", "e3"), store.EndpointMeta{Endpoint: "e3", Container: "pod"})
	storetest.Put(t, st, store.ContainerMetaKey("h1", "c4"), store.ContainerMeta{Container: "c4", Mode: store.ModeContainer, Parent: "pod", Labels: web})
	storetest.Put(t, st, store.EndpointMetaKey("h2", "x"), store.EndpointMeta{Endpoint: "x", Container: "cx", Labels: web})
	storetest.Put(t, st, store.SelectedEndpointKey("h1", "e2"), store.EndpointMeta{Endpoint: "e2"})     // no longer selected
	storetest.Put(t, st, store.SelectedEndpointKey("h1", "gone"), store.EndpointMeta{Endpoint: "gone"}) // no record
	res, err := store.ReselectHost(ctx, st, "h1", selects)
	if err != nil || res.Written != 3 || res.Deleted != 2 {
		t.Fatalf("ReselectHost = %+v, %v; want 3 written (e1, e3 for c4, c4), 2 deleted", res, err)
	}
	want := []string{"sel/ctr/h1/c4", "sel/ep/h1/e1", "sel/ep/h1/e3"}
	if got := append(storetest.Keys(t, st, store.SelectedContainers), storetest.Keys(t, st, store.SelectedEndpoints)...); !slices.Equal(got, want) {
		t.Fatalf("selection index %v, want %v (and nothing of h2)", got, want)
	}
	a, _ := st.GetKV(ctx, store.EndpointMetaKey("h1", "e1"))
	b, _ := st.GetKV(ctx, store.SelectedEndpointKey("h1", "e1"))
	if string(a.Value) != string(b.Value) {
		t.Fatalf("the copy differs: %s vs %s", b.Value, a.Value)
	}
	if res, err := store.ReselectHost(ctx, st, "h1", selects); err != nil || res.Written+res.Deleted != 0 {
		t.Fatalf("second ReselectHost = %+v, %v; want nothing to do", res, err)
	}
	if err := store.WriteContainerMeta(ctx, st, "h1", "c4", nil, false); err != nil {
		t.Fatal(err)
	}
	if _, err := store.ReselectHost(ctx, st, "h1", selects); err != nil {
		t.Fatal(err)
	}
	if got := append(storetest.Keys(t, st, store.SelectedContainers), storetest.Keys(t, st, store.SelectedEndpoints)...); !slices.Equal(got, []string{"sel/ep/h1/e1"}) {
		t.Fatalf("after c4 went: %v", got)
	}
}
