package catalog

import (
	"encoding/json"
	"log/slog"
	"net/netip"
	"slices"
	"testing"

	"github.com/podnet/podnet/store"
)

func kv(t *testing.T, key string, v any) store.KV {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return store.KV{Key: key, Value: b}
}

func addrs(ss ...string) []netip.Addr {
	var out []netip.Addr
	for _, s := range ss {
		out = append(out, netip.MustParseAddr(s))
	}
	return out
}

// Selections follow containers through the label index: a change marks
// only the selections its labels anchor (and those without an anchor),
// and each carries the addresses of every container it selects.
func TestPolicySelections(t *testing.T) {
	c := New("h1", false, slog.New(slog.DiscardHandler))
	web := &store.LabelSelector{MatchLabels: map[string]string{"app": "web"}}
	db := store.NetworkPolicy{Name: "db", PodSelector: store.LabelSelector{MatchLabels: map[string]string{"app": "db"}},
		PolicyTypes: []string{store.PolicyIngress}, Ingress: []store.PolicyRule{{Peers: []store.PolicyPeer{{PodSelector: web}}}}}
	all := store.NetworkPolicy{Name: "all", PolicyTypes: []string{store.PolicyIngress}}
	meta := func(ep, ctr, ip string, labels map[string]string) store.EndpointMeta {
		return store.EndpointMeta{Endpoint: ep, Container: ctr, Name: ctr, IPv4: netip.MustParseAddr(ip), Labels: labels}
	}
	c.snapshot(store.PoliciesPrefix, []store.KV{kv(t, store.PolicyKey("db"), db), kv(t, store.PolicyKey("all"), all)})
	// Its own host's records whole, the others' through the selection
	// index.
	c.snapshot(store.EndpointMetaPrefix("h1"), []store.KV{
		kv(t, store.EndpointMetaKey("h1", "e1"), meta("e1", "c1", "10.0.0.1", map[string]string{"app": "web"}))})
	c.snapshot(store.ContainerMetaPrefix("h1"), nil)
	c.snapshot(store.SelectedEndpoints, []store.KV{
		kv(t, store.SelectedEndpointKey("h2", "e2"), meta("e2", "c2", "10.0.0.2", map[string]string{"app": "db"})),
	})
	c.snapshot(store.SelectedContainers, []store.KV{kv(t, store.SelectedContainerKey("h2", "c5"),
		store.ContainerMeta{Container: "c5", Mode: store.ModeHost, Labels: map[string]string{"app": "web"}})})
	if !c.PoliciesLoaded() {
		t.Fatal("not loaded after the three listings")
	}
	d := c.TakePolicyDelta(false)
	if !d.Full || len(d.Policies) != 2 {
		t.Fatalf("first delta: full %v, %d policies", d.Full, len(d.Policies))
	}
	want := map[string][]netip.Addr{"app=db": addrs("10.0.0.2"), "app=web": addrs("10.0.0.1"), "": addrs("10.0.0.1", "10.0.0.2")}
	for k, w := range want {
		if !slices.Equal(d.Selections[k], w) {
			t.Errorf("selection %q = %v, want %v (a --net host container has no address of its own)", k, d.Selections[k], w)
		}
	}
	if d = c.TakePolicyDelta(false); d.Full || len(d.Selections)+len(d.Policies) != 0 {
		t.Fatalf("nothing changed, delta %+v", d)
	}

	// A new web container: app=web and the universal selection, not app=db.
	c.applyLocked(store.SelectedEndpoints, kv(t, store.SelectedEndpointKey("h3", "e3"), meta("e3", "c3", "10.0.0.3", map[string]string{"app": "web"})), false)
	d = c.TakePolicyDelta(false)
	if len(d.Selections) != 2 || !slices.Equal(d.Selections["app=web"], addrs("10.0.0.1", "10.0.0.3")) || d.Policies != nil {
		t.Fatalf("after a web container: %+v", d)
	}
	if _, ok := d.Selections["app=db"]; ok {
		t.Fatalf("app=db marked by a container it cannot select: %+v", d)
	}

	// The policy goes: its selections are gone, the policies listed again.
	c.applyLocked(store.PoliciesPrefix, store.KV{Key: store.PolicyKey("db")}, true)
	d = c.TakePolicyDelta(false)
	if len(d.Policies) != 1 || d.Selections["app=db"] != nil || d.Selections["app=web"] != nil || len(d.Selections) != 2 {
		t.Fatalf("after removing db: %+v", d)
	}
	if got := c.SelectedMembers(store.LabelSelector{}); len(got) != 4 {
		t.Fatalf("{} selects %d containers, want 4 (views list every mode)", len(got))
	}
}
