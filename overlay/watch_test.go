package overlay

import (
	"context"
	"net/netip"
	"testing"

	dipam "github.com/docker/go-plugins-helpers/ipam"
	"github.com/podnet/podnet/ipam"
	"github.com/podnet/podnet/store"
	"github.com/podnet/podnet/store/storetest"
)

// TestFollowersReadIPAMRecords lets the real IPAM of three hosts write a
// pool, blocks, a gateway, containers and a --ip address in another host's
// block into a real etcd, feeds the listings to the followers, and checks
// the routes host "a" would program. No root needed: the kernel is not
// touched.
func TestFollowersReadIPAMRecords(t *testing.T) {
	e := storetest.Start(t)
	ctx := context.Background()
	pool := netip.MustParsePrefix("10.44.0.0/16")
	addrs := map[string][]netip.Addr{}
	var ipams = map[string]*ipam.IPAM{}
	for i, h := range []string{"a", "b", "c"} {
		st := e.Client(t, "")
		m, err := ipam.New(ipam.Config{Host: h, Store: st, Logger: storetest.Logger(t)})
		must(t, err)
		ipams[h] = m
		_, err = m.RequestPool(ctx, &dipam.RequestPoolRequest{Pool: pool.String()})
		must(t, err)
		_, err = m.RequestAddress(ctx, &dipam.RequestAddressRequest{PoolID: pool.String(),
			Options: map[string]string{"RequestAddressType": "com.docker.network.gateway"}})
		must(t, err)
		resp, err := m.RequestAddress(ctx, &dipam.RequestAddressRequest{PoolID: pool.String()})
		must(t, err)
		addrs[h] = append(addrs[h], netip.MustParsePrefix(resp.Address).Addr())
		must(t, st.Put(ctx, store.HostKey(h), store.Host{Name: h, Underlay: netip.AddrFrom4([4]byte{10, 250, 0, byte(i + 1)})}))
		must(t, st.Put(ctx, store.AliveKey(h), store.HostAlive{Name: h}))
	}
	// c takes an address inside b's block (docker run --ip, on the network
	// the driver recorded).
	must(t, e.Client(t, "").Put(ctx, store.NetworkKey("c", "net"), store.Network{ID: "net", Host: "c", IPv4: []store.Subnet{{Pool: pool}}}))
	bBlock := netip.PrefixFrom(addrs["b"][0], 26).Masked()
	inB := bBlock.Addr().Next().Next().Next().Next().Next().Next().Next()
	_, err := ipams["c"].RequestAddress(ctx, &dipam.RequestAddressRequest{PoolID: pool.String(), Address: inB.String()})
	must(t, err)

	raw := e.Client(t, "")
	o := &Overlay{host: "a", log: storetest.Logger(t), view: newView(), wake: make(chan struct{}, 1)}
	list := func(prefix string) []store.KV {
		kvs, _, err := raw.List(ctx, prefix)
		must(t, err)
		return kvs
	}
	hostsFollower{o}.Snapshot(list(store.HostsPrefix))
	aliveFollower{o}.Snapshot(list(store.AlivePrefix))
	pv := newPoolView()
	o.view.pools[pool] = pv
	(&poolFollower{o: o, pool: pool, pv: pv}).Snapshot(list(store.IPAMPrefix(pool)))
	if !pv.loaded || len(pv.refs) != 3 || len(pv.blocks) != 3 {
		t.Fatalf("pool view: loaded %v, refs %v, blocks %v", pv.loaded, pv.refs, pv.blocks)
	}
	if gw := pv.addrs[netip.MustParseAddr("10.44.0.1")]; gw.container {
		t.Fatalf("the gateway record was read as a container address: %+v", gw)
	}

	n := Network{ID: "n", VNI: 9, Bridge: "pn-n", Pools: []netip.Prefix{pool}}
	d := computeDesired(local{host: "a", underlay: under, networks: []Network{n}}, o.view, nil)
	var want []string
	for h, u := range map[string]string{"b": "10.250.0.2", "c": "10.250.0.3"} {
		want = append(want, netip.PrefixFrom(addrs[h][0], 26).Masked().String()+" via "+u+" dev pnx9 onlink")
	}
	want = append(want, inB.String()+"/32 via 10.250.0.3 dev pnx9 onlink")
	if err := diffLines(routeLines(d), want); err != nil {
		t.Fatal(err)
	}

	// Changes: b's liveness goes, c releases its borrowed address.
	must(t, raw.Delete(ctx, store.AliveKey("b")))
	aliveFollower{o}.Changes([]store.Event{{Type: store.EventDelete, Key: store.AliveKey("b")}})
	(&poolFollower{o: o, pool: pool, pv: pv}).Changes([]store.Event{{Type: store.EventDelete, Key: store.AddrKey(pool, inB)}})
	d = computeDesired(local{host: "a", underlay: under, networks: []Network{n}}, o.view, nil)
	cOnly := []string{netip.PrefixFrom(addrs["c"][0], 26).Masked().String() + " via 10.250.0.3 dev pnx9 onlink"}
	if err := diffLines(routeLines(d), cOnly); err != nil {
		t.Fatal(err)
	}
}

// TestRegisterHost writes the host record once, keeps Since, rewrites only
// on change.
func TestRegisterHost(t *testing.T) {
	st := storetest.New(t)
	ctx := context.Background()
	newOv := func(addr string) *Overlay {
		return &Overlay{host: "h1", st: st, log: storetest.Logger(t),
			underlay: Underlay{Addr: netip.MustParseAddr(addr), Dev: "eth0"}}
	}
	must(t, newOv("10.0.0.1").RegisterHost(ctx))
	var first store.Host
	rev1, err := st.Get(ctx, store.HostKey("h1"), &first)
	must(t, err)
	if first.Name != "h1" || first.Underlay.String() != "10.0.0.1" || first.Since.IsZero() {
		t.Fatalf("record %+v", first)
	}
	must(t, newOv("10.0.0.1").RegisterHost(ctx))
	if rev, _ := st.Get(ctx, store.HostKey("h1"), nil); rev != rev1 {
		t.Fatal("an unchanged record was rewritten (every host's watch would fire)")
	}
	must(t, newOv("10.0.0.2").RegisterHost(ctx))
	var second store.Host
	_, err = st.Get(ctx, store.HostKey("h1"), &second)
	must(t, err)
	if second.Underlay.String() != "10.0.0.2" || !second.Since.Equal(first.Since) {
		t.Fatalf("after a new underlay: %+v (Since was %v)", second, first.Since)
	}
}
