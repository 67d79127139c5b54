package cluster

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/podnet/podnet/admin"
	"github.com/podnet/podnet/internal/fault"
	"github.com/podnet/podnet/store"
	"github.com/podnet/podnet/store/storetest"
)

type fakeIPAM struct{ released []string }

func (f *fakeIPAM) ReleaseHostBlocks(_ context.Context, host string) (int, error) {
	f.released = append(f.released, host)
	return 2, nil
}

func TestCreateNetworkValidatesAndDefines(t *testing.T) {
	st := storetest.New(t)
	m := New(st, &fakeIPAM{}, nil)
	ctx := context.Background()
	for _, c := range []struct {
		spec admin.NetworkSpec
		want string
	}{
		{admin.NetworkSpec{Name: "bad name!", Subnets: []string{"10.1.0.0/16"}}, "network name"},
		{admin.NetworkSpec{Name: "n", Mode: "weird", Subnets: []string{"10.1.0.0/16"}}, `unknown mode "weird"`},
		{admin.NetworkSpec{Name: "n", Mode: "vxlan"}, "--subnet"},
		{admin.NetworkSpec{Name: "n", Mode: "vxlan", Subnets: []string{"10.1.0.0/33"}}, "10.1.0.0/33"},
		{admin.NetworkSpec{Name: "n", Mode: "vxlan", Subnets: []string{"10.1.0.0/16"}, Gateways: map[string]string{"10.1.0.0/16": "10.2.0.1"}}, "gateway"},
		{admin.NetworkSpec{Name: "n", Mode: "vxlan", Subnets: []string{"10.1.0.0/16"}, MTU: 20}, "mtu 20"},
		{admin.NetworkSpec{Name: "n", Mode: "bridge", Subnets: []string{"10.1.0.0/16"}, VNI: 9}, "vxlan only"},
	} {
		_, err := m.CreateNetwork(ctx, c.spec)
		if !errors.Is(err, fault.ErrInvalid) || !strings.Contains(err.Error(), c.want) {
			t.Fatalf("%+v: got %v, want an input error containing %q", c.spec, err, c.want)
		}
	}
	def, err := m.CreateNetwork(ctx, admin.NetworkSpec{Name: "pods", Mode: "vxlan", Subnets: []string{"10.1.0.0/16"}})
	if err != nil || def.VNI == 0 || def.Name != "pods" {
		t.Fatalf("%v %+v", err, def)
	}
	if _, err := m.CreateNetwork(ctx, admin.NetworkSpec{Name: "pods", Mode: "vxlan", Subnets: []string{"10.9.0.0/16"}}); err == nil || !strings.Contains(err.Error(), "already defined") {
		t.Fatalf("duplicate name: %v", err)
	}
	if _, err := m.CreateNetwork(ctx, admin.NetworkSpec{Name: "other", Mode: "vxlan", Subnets: []string{"10.1.2.0/24"}}); err == nil || !strings.Contains(err.Error(), "overlaps 10.1.0.0/16") {
		t.Fatalf("overlap: %v", err)
	}
}

func TestRemoveNetworkRefusesWithContainersAndThenMarks(t *testing.T) {
	st := storetest.New(t)
	m := New(st, &fakeIPAM{}, nil)
	ctx := context.Background()
	if _, err := m.CreateNetwork(ctx, admin.NetworkSpec{Name: "pods", Mode: "vxlan", Subnets: []string{"10.1.0.0/16"}}); err != nil {
		t.Fatal(err)
	}
	must(t, st.Put(ctx, store.NetworkKey("h2", "dn2"), store.Network{ID: "dn2", Host: "h2", IPv4: []store.Subnet{{Pool: netip.MustParsePrefix("10.1.0.0/16")}}}))
	must(t, st.Put(ctx, store.EndpointKey("h2", "ep1"), store.Endpoint{ID: "ep1", Network: "dn2", Host: "h2", IPv4: netip.MustParsePrefix("10.1.0.7/16")}))
	must(t, st.Put(ctx, store.EndpointMetaKey("h2", "ep1"), store.EndpointMeta{Endpoint: "ep1", Name: "web"}))
	err := m.RemoveNetwork(ctx, "pods")
	if err == nil || !strings.Contains(err.Error(), "h2: web (10.1.0.7)") {
		t.Fatalf("got %v", err)
	}
	must(t, st.Delete(ctx, store.EndpointKey("h2", "ep1")))
	must(t, m.RemoveNetwork(ctx, "pods"))
	ns, err := m.Networks(ctx)
	if err != nil || len(ns) != 1 || !ns[0].Deleting || ns[0].Hosts["h2"] != "dn2" {
		t.Fatalf("%v %+v", err, ns)
	}
	// The last host's network going releases the definition.
	must(t, st.Delete(ctx, store.NetworkKey("h2", "dn2")))
	must(t, m.RemoveNetwork(ctx, "pods")) // idempotent while deleting... and now gone
	if err := m.RemoveNetwork(ctx, "pods"); err == nil || !strings.Contains(err.Error(), `no network "pods"`) {
		t.Fatalf("got %v", err)
	}
}

func TestRemoveHost(t *testing.T) {
	e := storetest.Start(t)
	st := e.Client(t, "")
	ip := &fakeIPAM{}
	m := New(st, ip, nil)
	ctx := context.Background()
	must(t, st.Put(ctx, store.HostKey("h3"), store.Host{Name: "h3", Underlay: netip.MustParseAddr("10.0.0.3")}))
	must(t, st.Put(ctx, store.AliveKey("h3"), store.HostAlive{Name: "h3"}))
	must(t, st.Put(ctx, store.EndpointKey("h3", "e"), store.Endpoint{ID: "e"}))
	if err := m.RemoveHost(ctx, "h3"); err == nil || !strings.Contains(err.Error(), "is alive") {
		t.Fatalf("got %v", err)
	}
	must(t, st.Delete(ctx, store.AliveKey("h3")))
	hs, err := m.Hosts(ctx)
	if err != nil || len(hs) != 1 || hs[0].Alive || hs[0].Endpoints != 1 {
		t.Fatalf("%v %+v", err, hs)
	}
	must(t, m.RemoveHost(ctx, "h3"))
	if len(ip.released) != 1 {
		t.Fatal("blocks not released")
	}
	if n, _ := st.Count(ctx, ""); n != 0 {
		kvs, _, _ := st.List(ctx, "")
		t.Fatalf("keys left: %+v", kvs)
	}
	if err := m.RemoveHost(ctx, "h3"); !errors.Is(err, fault.ErrInvalid) || !strings.Contains(err.Error(), "no host h3 is known") {
		t.Fatalf("removing it again: %v, want the caller's fault naming it", err)
	}
	// etcd down: its trouble, never "no such host" (HTTP 400).
	e.Stop()
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := m.RemoveHost(cctx, "h3"); err == nil || errors.Is(err, fault.ErrInvalid) {
		t.Fatalf("with etcd down: %v, want an error that is not the caller's fault", err)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
