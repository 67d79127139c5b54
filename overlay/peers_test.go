package overlay

import (
	"fmt"
	"net/netip"
	"testing"

	"github.com/podnet/podnet/store"
	"github.com/podnet/podnet/store/storetest"
)

// TestPeersFollowHostRecords: the hosts/ follower hands the guard every
// registered host's underlay address, again only when they change.
func TestPeersFollowHostRecords(t *testing.T) {
	var calls [][]netip.Addr
	o := &Overlay{host: "a", log: storetest.Logger(t), view: newView(), wake: make(chan struct{}, 1),
		peersFn: func(p []netip.Addr) { calls = append(calls, p) }}
	rec := func(name, underlay string) store.KV {
		return store.KV{Key: store.HostKey(name), Value: fmt.Appendf(nil, `{"name":%q,"underlay":%q}`, name, underlay)}
	}
	hostsFollower{o}.Snapshot([]store.KV{rec("b", "10.250.0.2"), rec("a", "10.250.0.1"), rec("c", "")})
	ev := func(typ store.EventType, kv store.KV) []store.Event {
		return []store.Event{{Type: typ, Key: kv.Key, Value: kv.Value}}
	}
	hostsFollower{o}.Changes(ev(store.EventPut, rec("b", "10.250.0.2"))) // no change: no call
	hostsFollower{o}.Changes(ev(store.EventPut, rec("d", "10.250.0.4")))
	hostsFollower{o}.Changes(ev(store.EventDelete, store.KV{Key: store.HostKey("b")}))
	hostsFollower{o}.Changes(ev(store.EventPut, rec("e", "10.250.0.4"))) // an address already there
	hostsFollower{o}.Changes(ev(store.EventDelete, store.KV{Key: store.HostKey("e")}))
	want := []string{"[10.250.0.1 10.250.0.2]", "[10.250.0.1 10.250.0.2 10.250.0.4]", "[10.250.0.1 10.250.0.4]"}
	if len(calls) != len(want) {
		t.Fatalf("peers calls %v, want %v", calls, want)
	}
	for i := range want {
		if got := fmt.Sprint(calls[i]); got != want[i] {
			t.Fatalf("call %d: %s, want %s", i, got, want[i])
		}
	}
}
