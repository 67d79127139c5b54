package reconcile

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/docker/go-plugins-helpers/network"
	"github.com/podnet/podnet/dataplane"
	"github.com/podnet/podnet/driver"
	"github.com/podnet/podnet/internal/link"
	"github.com/podnet/podnet/internal/testutil"
	"github.com/podnet/podnet/store"
	"github.com/podnet/podnet/store/storetest"
)

// The real driver in a throwaway namespace, the real IPAM and NAT engine
// on etcd, and Docker's view from the test: a round removes the veth,
// record, rules and address of the endpoint Docker dropped and leaves the
// live one whole; when the network goes from Docker, everything of it
// goes; when Docker cannot be asked, nothing does.
func TestRoundWithTheRealDriver(t *testing.T) {
	ns := testutil.NewNetNS(t)
	w := newWorld(t)
	ctx := context.Background()
	eng := dataplane.New(dataplane.Options{Logger: storetest.Logger(t)})
	d, err := driver.New(driver.Config{Host: "h1", Store: w.raw, Ports: eng,
		Kernel: &link.Kernel{NL: ns.NL, ProcSys: "/proc/sys"}, Logger: storetest.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	w.rec = New(Config{Docker: w.docker, Driver: d, IPAM: w.h1, Logger: storetest.Logger(t)})
	in := func(fn func() error) {
		t.Helper()
		if err := ns.Do(fn); err != nil {
			t.Fatal(err)
		}
	}
	round := func() Report {
		t.Helper()
		var rep Report
		in(func() (err error) { rep, err = w.rec.OnceWithGrace(ctx, -time.Second); return err })
		return rep
	}

	w.pool(w.h1, poolL)
	gw := w.addr(w.h1, poolL, "", map[string]string{"RequestAddressType": "com.docker.network.gateway"})
	in(func() error {
		return d.CreateNetwork(ctx, &network.CreateNetworkRequest{NetworkID: netLive,
			Options:  map[string]any{"com.docker.network.generic": map[string]any{}},
			IPv4Data: []*network.IPAMData{{AddressSpace: "podnet-local", Pool: poolL, Gateway: gw}}})
	})
	liveID, deadID := "e1"+strings.Repeat("0", 62), "e2"+strings.Repeat("0", 62)
	addrs := map[string]string{}
	for i, id := range []string{liveID, deadID} {
		addrs[id] = w.addr(w.h1, poolL, "")
		in(func() error {
			_, err := d.CreateEndpoint(ctx, &network.CreateEndpointRequest{NetworkID: netLive, EndpointID: id,
				Interface: &network.EndpointInterface{Address: addrs[id]}})
			if err != nil {
				return err
			}
			pm := []any{map[string]any{"Proto": float64(6), "Port": float64(80), "HostPort": float64(18080 + i), "HostPortEnd": float64(18080 + i)}}
			return d.ProgramExternalConnectivity(ctx, &network.ProgramExternalConnectivityRequest{NetworkID: netLive, EndpointID: id,
				Options: map[string]any{"com.docker.network.portmap": pm}})
		})
	}
	w.docker.nets[netLive] = dockerNet(netLive, poolL, map[string]string{liveID: addrs[liveID]})
	linkOf := func(id string) bool { _, err := ns.NL.LinkByName("pnh" + id[:12]); return err == nil }
	rules := func() string { out, _ := ns.Exec("nft", "list", "map", "inet", "podnet", "pm4_any"); return out }

	rep := round()
	if len(rep.Endpoints) != 1 || rep.Endpoints[0] != deadID {
		t.Fatalf("round removed endpoints %v, want only %s", rep.Endpoints, deadID[:12])
	}
	if linkOf(deadID) || w.has(poolL, addrs[deadID]) || strings.Contains(rules(), "18081") {
		t.Fatalf("the dropped endpoint left its veth, address or published port:\n%s", rules())
	}
	if !linkOf(liveID) || !w.has(poolL, addrs[liveID]) || !strings.Contains(rules(), "18080") || !w.has(poolL, gw) {
		t.Fatalf("the live endpoint lost its veth, address, published port or gateway:\n%s", rules())
	}
	if _, err := w.raw.Get(ctx, store.EndpointKey("h1", liveID), nil); err != nil {
		t.Fatalf("the live endpoint's record: %v", err)
	}

	// Docker cannot be asked: nothing goes, not even with the network gone
	// from a (stale) view.
	w.docker.listErr = errors.New("Cannot connect to the Docker daemon")
	if err := ns.Do(func() error { _, err := w.rec.OnceWithGrace(ctx, -time.Second); return err }); err == nil {
		t.Fatal("a round without Docker reported success")
	}
	if !linkOf(liveID) || !w.has(poolL, addrs[liveID]) {
		t.Fatal("a round without Docker's view removed something")
	}

	// The network is gone from Docker: its bridge, endpoint, rules,
	// records, addresses and pool reference go.
	w.docker.listErr = nil
	delete(w.docker.nets, netLive)
	rep = round()
	if len(rep.Networks) != 1 || linkOf(liveID) || w.has(poolL, addrs[liveID]) || w.hasRef(poolL, "h1") {
		t.Fatalf("after the network left Docker: report %+v, veth=%v address=%v ref=%v", rep, linkOf(liveID), w.has(poolL, addrs[liveID]), w.hasRef(poolL, "h1"))
	}
	if _, err := ns.NL.LinkByName("pn-" + netLive[:12]); err == nil {
		t.Fatal("the bridge of a network Docker no longer has survived")
	}
	for _, prefix := range []string{store.NetworksPrefix("h1"), store.EndpointsPrefix("h1")} {
		if n, _ := w.raw.Count(ctx, prefix); n != 0 {
			t.Fatalf("%d records left under %s", n, prefix)
		}
	}
}
