package catalog

import (
	"encoding/json"
	"net/netip"
	"testing"

	"github.com/podnet/podnet/store"
)

func hostKV(t *testing.T, name, underlay string) store.KV {
	t.Helper()
	b, err := json.Marshal(store.Host{Name: name, Underlay: netip.MustParseAddr(underlay)})
	if err != nil {
		t.Fatal(err)
	}
	return store.KV{Key: store.HostKey(name), Value: b}
}

// TestHostCounts: registered hosts split by their liveness key; nothing
// is reported before both prefixes are read; a host whose lease runs out
// moves to down, and back when its podnetd renews it; a removed host
// (podnetctl host rm) is no longer counted; a liveness key without a
// host record (a host registering) counts for neither.
func TestHostCounts(t *testing.T) {
	c := New("h1", false, nil)
	if _, _, loaded := c.HostCounts(); loaded {
		t.Fatal("counts reported before the view was read")
	}
	c.snapshot(store.HostsPrefix, []store.KV{hostKV(t, "h1", "10.0.0.11"), hostKV(t, "h2", "10.0.0.12"), hostKV(t, "h3", "10.0.0.13")})
	if _, _, loaded := c.HostCounts(); loaded {
		t.Fatal("counts reported before alive/ was read")
	}
	c.snapshot(store.AlivePrefix, []store.KV{{Key: store.AliveKey("h1"), Value: []byte("{}")},
		{Key: store.AliveKey("h2"), Value: []byte("{}")}, {Key: store.AliveKey("h3"), Value: []byte("{}")},
		{Key: store.AliveKey("h4"), Value: []byte("{}")}})
	check := func(what string, alive, down int) {
		t.Helper()
		a, d, loaded := c.HostCounts()
		if !loaded || a != alive || d != down {
			t.Fatalf("%s: alive %d, down %d (loaded %v); want %d, %d", what, a, d, loaded, alive, down)
		}
	}
	check("all alive", 3, 0)
	alive := catalogFollower{c: c, prefix: store.AlivePrefix}
	alive.Changes([]store.Event{{Type: store.EventDelete, Key: store.AliveKey("h3")}})
	check("h3's lease gone", 2, 1)
	alive.Changes([]store.Event{{Type: store.EventPut, Key: store.AliveKey("h3"), Value: []byte("{}")}})
	check("h3 back", 3, 0)
	alive.Changes([]store.Event{{Type: store.EventDelete, Key: store.AliveKey("h2")}})
	catalogFollower{c: c, prefix: store.HostsPrefix}.Changes([]store.Event{{Type: store.EventDelete, Key: store.HostKey("h2")}})
	check("h2 removed", 2, 0)
}
