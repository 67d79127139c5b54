package main

import (
	"bytes"
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/podnet/podnet/registry"
	"github.com/podnet/podnet/store"
	"github.com/podnet/podnet/store/storetest"
)

// TestServicesFile: the file the lab benchmarks apply is one podnetd's
// parser takes, and its services select what fill labels.
func TestServicesFile(t *testing.T) {
	var b bytes.Buffer
	if err := servicesFile(&b, 3); err != nil {
		t.Fatal(err)
	}
	svcs, err := registry.ParseFile("services.yaml", b.Bytes())
	if err != nil {
		t.Fatalf("%v\n%s", err, b.String())
	}
	if len(svcs) != 3 {
		t.Fatalf("%d services", len(svcs))
	}
	s := svcs[2].Service
	if s.Name != "s2" || len(s.Selector) != 1 || s.Selector[labelKey] != "s2" || len(s.Ports) != 1 ||
		s.Ports[0].Port != 80 || s.Ports[0].TargetPort != 8080 {
		t.Fatalf("s2: %+v", s)
	}
}

func list(t *testing.T, st *store.Store, prefix string) []store.KV {
	t.Helper()
	kvs, _, err := st.List(context.Background(), prefix)
	if err != nil {
		t.Fatal(err)
	}
	return kvs
}

// TestFill: fake endpoints are ready records selected by their service's
// label, on fake hosts whose liveness keys are on a lease; unfill removes
// them.
func TestFill(t *testing.T) {
	st := storetest.New(t)
	ctx := context.Background()
	o := fillOptions{n: 3, eps: 2, hosts: 2, prefix: "fk", ttl: time.Minute}
	if err := fill(ctx, st, o); err != nil {
		t.Fatal(err)
	}
	eps := list(t, st, store.EndpointMetaPrefix(""))
	if len(eps) != 6 {
		t.Fatalf("%d endpoint records, want 6", len(eps))
	}
	seen := map[netip.Addr]bool{}
	for _, kv := range eps {
		var m store.EndpointMeta
		if err := kv.Decode(&m); err != nil || !m.Ready || m.Labels[labelKey] == "" || !m.IPv4.IsValid() || seen[m.IPv4] {
			t.Fatalf("%s: %+v %v", kv.Key, m, err)
		}
		seen[m.IPv4] = true
	}
	alive := list(t, st, store.AlivePrefix)
	if len(alive) != 2 || alive[0].Key != store.AliveKey("fk00000") || alive[0].Lease == 0 {
		t.Fatalf("liveness keys: %+v", alive)
	}
	if err := unfill(ctx, st, o); err != nil {
		t.Fatal(err)
	}
	if n := len(list(t, st, store.EndpointMetaPrefix(""))) + len(list(t, st, store.AlivePrefix)); n != 0 {
		t.Fatalf("%d keys left", n)
	}
}

func putJSON(t *testing.T, st *store.Store, key string, v any) {
	t.Helper()
	if err := st.Put(context.Background(), key, v); err != nil {
		t.Fatal(err)
	}
}

func readyOf(t *testing.T, st *store.Store, key string) bool {
	t.Helper()
	var m store.EndpointMeta
	if _, err := st.Get(context.Background(), key, &m); err != nil {
		t.Fatal(err)
	}
	return m.Ready
}

// TestEndpointChanger: state b makes b ready and a not, in one write;
// restore puts the records back; a record someone else rewrote stops
// the benchmark instead of being overwritten.
func TestEndpointChanger(t *testing.T) {
	st := storetest.New(t)
	ctx := context.Background()
	ka, kb := store.EndpointMetaKey("h1", "ea"), store.EndpointMetaKey("h2", "eb")
	putJSON(t, st, ka, store.EndpointMeta{Endpoint: "ea", Container: "ca", Name: "b8-a", Ready: true})
	putJSON(t, st, kb, store.EndpointMeta{Endpoint: "eb", Container: "cb", Name: "b8-b", Ready: true})
	c, err := newEndpointChanger(st, "b8-a", "b8-b")
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range []bool{true, false, true} {
		if err := c.change(ctx, b); err != nil {
			t.Fatal(err)
		}
		if readyOf(t, st, ka) == b || readyOf(t, st, kb) != b {
			t.Fatalf("state b=%v: a ready %v, b ready %v", b, readyOf(t, st, ka), readyOf(t, st, kb))
		}
	}
	if err := c.restore(ctx); err != nil || !readyOf(t, st, ka) || !readyOf(t, st, kb) {
		t.Fatalf("restore: %v", err)
	}
	putJSON(t, st, kb, store.EndpointMeta{Endpoint: "eb", Container: "cb", Name: "b8-b", Ready: false})
	if err := c.change(ctx, false); err == nil {
		t.Fatal("a record rewritten meanwhile was overwritten")
	}
	if _, err := newEndpointChanger(st, "b8-a", "nope"); err == nil {
		t.Fatal("a container without records accepted")
	}
}

// TestServiceChanger: the selector flips, the VIP and ports stay, and
// restore puts the original selector back.
func TestServiceChanger(t *testing.T) {
	st := storetest.New(t)
	ctx := context.Background()
	vip := netip.MustParseAddr("10.96.0.7")
	putJSON(t, st, store.ServiceKey("b8s"), store.Service{Name: "b8s", Selector: map[string]string{"b8": "a"}, ClusterIP: vip,
		Ports: []store.ServicePort{{Protocol: "TCP", Port: 80, TargetPort: 8080}}})
	c, err := newServiceChanger(st, "b8s", "b8=a", "b8=b")
	if err != nil {
		t.Fatal(err)
	}
	get := func() store.Service {
		var s store.Service
		if _, err := st.Get(ctx, store.ServiceKey("b8s"), &s); err != nil {
			t.Fatal(err)
		}
		return s
	}
	if err := c.change(ctx, true); err != nil {
		t.Fatal(err)
	}
	if s := get(); s.Selector["b8"] != "b" || len(s.Selector) != 1 || s.ClusterIP != vip || len(s.Ports) != 1 || s.Updated.IsZero() {
		t.Fatalf("state b: %+v", s)
	}
	if err := c.restore(ctx); err != nil {
		t.Fatal(err)
	}
	if s := get(); s.Selector["b8"] != "a" {
		t.Fatalf("restored: %+v", s)
	}
	if _, err := newServiceChanger(st, "b8s", "b8", "b8=b"); err == nil {
		t.Fatal("a selector term without = accepted")
	}
}
