package reconcile

import (
	"context"
	"encoding/json"
	"net/netip"
	"testing"

	cerrdefs "github.com/containerd/errdefs"
	dnet "github.com/docker/docker/api/types/network"
	"github.com/podnet/podnet/store"
	"github.com/podnet/podnet/store/storetest"
)

// netDocker holds Docker networks by name.
type netDocker struct {
	nets    map[string]dnet.Inspect
	removed []string
}

func (f *netDocker) NetworkInspect(_ context.Context, name string, _ dnet.InspectOptions) (dnet.Inspect, error) {
	n, ok := f.nets[name]
	if !ok {
		return dnet.Inspect{}, cerrdefs.ErrNotFound.WithMessage("network " + name + " not found")
	}
	return n, nil
}

func (f *netDocker) NetworkCreate(_ context.Context, name string, o dnet.CreateOptions) (dnet.CreateResponse, error) {
	n := dnet.Inspect{ID: "id-" + name, Name: name, Driver: o.Driver, IPAM: *o.IPAM, Options: o.Options}
	f.nets[name] = n
	return dnet.CreateResponse{ID: n.ID}, nil
}

func (f *netDocker) NetworkRemove(_ context.Context, id string) error {
	for name, n := range f.nets {
		if n.ID == id {
			delete(f.nets, name)
			f.removed = append(f.removed, name)
			return nil
		}
	}
	return cerrdefs.ErrNotFound
}

func defKV(t *testing.T, d store.LogicalNetwork) store.KV {
	b, err := json.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	return store.KV{Key: store.LNetKey(d.Subnets[0]), Value: b}
}

// NetSync creates the Docker network of a definition, removes it when the
// definition is being deleted, and never removes a Docker network of the
// same name that is not podnet's (another driver, or another subnet).
func TestNetSyncRemovesOnlyItsOwnNetworks(t *testing.T) {
	docker := &netDocker{nets: map[string]dnet.Inspect{
		"theirs": {ID: "id-theirs", Name: "theirs", Driver: "bridge",
			IPAM: dnet.IPAM{Config: []dnet.IPAMConfig{{Subnet: "10.62.0.0/16"}}}},
		"elsewhere": {ID: "id-elsewhere", Name: "elsewhere", Driver: "podnet",
			IPAM: dnet.IPAM{Config: []dnet.IPAMConfig{{Subnet: "10.99.0.0/16"}}}},
	}}
	s := NewNetSync(NetSyncConfig{Store: storetest.New(t), Docker: docker, Driver: "podnet", Logger: storetest.Logger(t)})
	ctx := context.Background()
	pods := store.LogicalNetwork{Name: "pods", Subnets: []netip.Prefix{netip.MustParsePrefix("10.61.0.0/16")}, Mode: "vxlan", VNI: 4100}
	theirs := store.LogicalNetwork{Name: "theirs", Subnets: []netip.Prefix{netip.MustParsePrefix("10.62.0.0/16")}, Mode: "bridge"}
	elsewhere := store.LogicalNetwork{Name: "elsewhere", Subnets: []netip.Prefix{netip.MustParsePrefix("10.63.0.0/16")}, Mode: "bridge"}
	s.Snapshot([]store.KV{defKV(t, pods), defKV(t, theirs), defKV(t, elsewhere)})
	s.apply(ctx)
	got, ok := docker.nets["pods"]
	if !ok || got.Driver != "podnet" || got.IPAM.Config[0].Subnet != "10.61.0.0/16" || got.Options["podnet.vni"] != "4100" {
		t.Fatalf("Docker network of the definition: %+v (exists %v)", got, ok)
	}
	if docker.nets["theirs"].Driver != "bridge" || docker.nets["elsewhere"].IPAM.Config[0].Subnet != "10.99.0.0/16" {
		t.Fatal("a Docker network of the same name that is not this definition was replaced")
	}

	for _, d := range []*store.LogicalNetwork{&pods, &theirs, &elsewhere} {
		d.Deleting = true
	}
	s.Snapshot([]store.KV{defKV(t, pods), defKV(t, theirs), defKV(t, elsewhere)})
	s.apply(ctx)
	if _, ok := docker.nets["pods"]; ok {
		t.Fatal("the Docker network of a deleted definition survived")
	}
	if _, ok := docker.nets["theirs"]; !ok {
		t.Fatal("another driver's network of the same name was removed")
	}
	if _, ok := docker.nets["elsewhere"]; !ok {
		t.Fatal("a podnet network of the same name on another subnet was removed")
	}
	if len(docker.removed) != 1 {
		t.Fatalf("removed %v, want only pods", docker.removed)
	}
	// Removing again is harmless (the network is already gone).
	s.apply(ctx)
}

// A macvlan definition's Docker network gets this host's parent (its
// per-host one when the definition names one), and the same parent as
// --ipam-opt, so IPAM lets the network sit on that parent's LAN subnet.
func TestNetSyncGivesThisHostsParent(t *testing.T) {
	for host, want := range map[string]string{"h1": "eth0", "h2": "ens5"} {
		docker := &netDocker{nets: map[string]dnet.Inspect{}}
		s := NewNetSync(NetSyncConfig{Store: storetest.New(t), Docker: docker, Driver: "podnet", Host: host, Logger: storetest.Logger(t)})
		lan := store.LogicalNetwork{Name: "lan", Subnets: []netip.Prefix{netip.MustParsePrefix("10.64.0.0/24")}, Mode: "macvlan",
			Options: map[string]string{"parent": "eth0", "macvlan_mode": "bridge"}, Parents: map[string]string{"h2": "ens5"}}
		s.Snapshot([]store.KV{defKV(t, lan)})
		s.apply(context.Background())
		got, ok := docker.nets["lan"]
		if !ok || got.Options["parent"] != want || got.Options["macvlan_mode"] != "bridge" || got.IPAM.Options["parent"] != want {
			t.Fatalf("%s: Docker network %+v (exists %v), want parent %s as option and ipam option", host, got, ok, want)
		}
	}
}
