package driver

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/go-plugins-helpers/network"
	"github.com/podnet/podnet/dataplane"
	"github.com/podnet/podnet/internal/link"
	"github.com/podnet/podnet/internal/testutil"
	"github.com/podnet/podnet/netspec"
	"github.com/podnet/podnet/store"
	"github.com/podnet/podnet/store/storetest"
)

// fakePorts records what the driver asks of the NAT engine; the engine
// itself is tested for real in package dataplane and end to end.
type fakePorts struct {
	mu        sync.Mutex
	nets      map[string]dataplane.Network
	published map[string][]dataplane.Mapping
	syncs     int
	failAdd   error
	// onUnpublish, when set, runs at the start of every Unpublish (a
	// test holds GC's teardown there).
	onUnpublish func(endpointID string)
}

func newFakePorts() *fakePorts {
	return &fakePorts{nets: map[string]dataplane.Network{}, published: map[string][]dataplane.Mapping{}}
}

func (f *fakePorts) AddNetwork(_ context.Context, n dataplane.Network) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failAdd != nil {
		return f.failAdd
	}
	f.nets[n.ID] = n
	return nil
}
func (f *fakePorts) RemoveNetwork(_ context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.nets, id)
	return nil
}
func (f *fakePorts) Publish(_ context.Context, ep, _ string, ip4, _ netip.Addr, bs []dataplane.Binding) ([]dataplane.Mapping, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var ms []dataplane.Mapping
	for _, b := range bs {
		ms = append(ms, dataplane.Mapping{Proto: b.Proto, HostIP: b.HostIP, HostPort: b.HostPort, ContainerIP: ip4, ContainerPort: b.ContainerPort})
	}
	f.published[ep] = ms
	return ms, nil
}
func (f *fakePorts) Unpublish(_ context.Context, ep string) error {
	if f.onUnpublish != nil {
		f.onUnpublish(ep)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.published, ep)
	return nil
}
func (f *fakePorts) Restore(nets []dataplane.Network, eps []dataplane.EndpointPorts) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.nets = map[string]dataplane.Network{}
	for _, n := range nets {
		f.nets[n.ID] = n
	}
	f.published = map[string][]dataplane.Mapping{}
	for _, e := range eps {
		f.published[e.EndpointID] = e.Mappings
	}
}
func (f *fakePorts) Sync(context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.syncs++
	return nil
}

type rig struct {
	t     *testing.T
	ns    *testutil.NetNS
	etcd  *storetest.Etcd
	st    *store.Store
	ports *fakePorts
	d     *Driver
	host  string
	// addrs allocates host-access shim addresses (nil: none).
	addrs HostAddresses
	// hostNets reads the host's interface networks (nil: subnets are
	// not checked against them).
	hostNets func() ([]netspec.HostNetwork, error)
}

// newRig builds a driver acting on a fresh namespace. Sysctl writes go to
// /proc/sys of the thread that makes them, so every driver call runs inside
// ns.Do (see call).
func newRig(t *testing.T, etcd *storetest.Etcd, host string) *rig {
	t.Helper()
	ns := testutil.NewNetNS(t)
	if etcd == nil {
		etcd = storetest.Start(t)
	}
	r := &rig{t: t, ns: ns, etcd: etcd, st: etcd.Client(t, ""), ports: newFakePorts(), host: host}
	r.d = r.newDriver()
	return r
}

func (r *rig) newDriver() *Driver {
	r.t.Helper()
	k := &link.Kernel{NL: r.ns.NL, ProcSys: "/proc/sys"}
	d, err := New(Config{Host: r.host, Store: r.st, Ports: r.ports, Kernel: k, Logger: storetest.Logger(r.t), HostAddresses: r.addrs,
		HostNetworks: r.hostNets})
	if err != nil {
		r.t.Fatal(err)
	}
	return d
}

func (r *rig) call(fn func() error) error {
	return r.ns.Do(fn)
}

func (r *rig) mustCall(fn func() error) {
	r.t.Helper()
	if err := r.call(fn); err != nil {
		r.t.Fatal(err)
	}
}

const (
	netID = "aaaaaaaaaaaa1111111111111111111111111111111111111111111111111111"
	epID  = "eeeeeeeeeeee2222222222222222222222222222222222222222222222222222"
)

func bridgeReq(id string, opts map[string]any, internal bool) *network.CreateNetworkRequest {
	r := &network.CreateNetworkRequest{NetworkID: id,
		Options:  map[string]any{labelGeneric: opts, labelIPv6: false},
		IPv4Data: []*network.IPAMData{pool("10.77.0.0/16", "10.77.0.1/16")}}
	if internal {
		r.Options[labelInternal] = true
	}
	return r
}

func TestBridgeNetworkAndEndpointLifecycle(t *testing.T) {
	r := newRig(t, nil, "h1")
	ctx := context.Background()
	r.mustCall(func() error { return r.d.CreateNetwork(ctx, bridgeReq(netID, map[string]any{"mtu": "1400"}, false)) })

	br, err := r.ns.NL.LinkByName("pn-aaaaaaaaaaaa")
	if err != nil {
		t.Fatalf("bridge not created: %v", err)
	}
	if br.Attrs().MTU != 1400 {
		t.Fatalf("bridge MTU %d", br.Attrs().MTU)
	}
	if out := r.ns.MustExec(t, "ip", "-4", "addr", "show", "pn-aaaaaaaaaaaa"); !strings.Contains(out, "10.77.0.1/16") {
		t.Fatalf("gateway address missing: %s", out)
	}
	if out := r.ns.MustExec(t, "sysctl", "-n", "net.ipv4.conf.pn-aaaaaaaaaaaa.route_localnet"); strings.TrimSpace(out) != "1" {
		t.Fatalf("route_localnet = %s", out)
	}
	if _, err := r.st.Get(ctx, store.NetworkKey("h1", netID), nil); err != nil {
		t.Fatalf("network record: %v", err)
	}
	if _, err := r.st.Get(ctx, store.LNetKey(netip.MustParsePrefix("10.77.0.0/16")), nil); err != nil {
		t.Fatalf("logical network record: %v", err)
	}
	if _, ok := r.ports.nets[netID]; !ok {
		t.Fatal("network not handed to the NAT engine")
	}

	// IPAM's RequestAddress wrote the address record before Docker calls
	// CreateEndpoint.
	if _, err := r.st.Create(ctx, store.AddrKey(netip.MustParsePrefix("10.77.0.0/16"), netip.MustParseAddr("10.77.0.5")),
		store.Address{IP: netip.MustParseAddr("10.77.0.5"), Kind: store.AddrContainer, Host: "h1"}); err != nil {
		t.Fatal(err)
	}
	var resp *network.CreateEndpointResponse
	r.mustCall(func() error {
		var err error
		resp, err = r.d.CreateEndpoint(ctx, &network.CreateEndpointRequest{NetworkID: netID, EndpointID: epID,
			Interface: &network.EndpointInterface{Address: "10.77.0.5/16"}})
		return err
	})
	if resp == nil || resp.Interface == nil || resp.Interface.MacAddress != "02:70:0a:4d:00:05" || resp.Interface.Address != "" {
		t.Fatalf("CreateEndpoint must return only the MAC Docker lacked: %+v", resp)
	}
	host, err := r.ns.NL.LinkByName("pnheeeeeeeeeeee")
	if err != nil {
		t.Fatalf("host veth: %v", err)
	}
	peer, err := r.ns.NL.LinkByName("pnceeeeeeeeeeee")
	if err != nil {
		t.Fatalf("peer veth: %v", err)
	}
	if host.Attrs().MasterIndex != br.Attrs().Index || host.Attrs().MTU != 1400 || peer.Attrs().MTU != 1400 {
		t.Fatalf("veth not attached/MTU: master=%d mtu=%d/%d", host.Attrs().MasterIndex, host.Attrs().MTU, peer.Attrs().MTU)
	}
	if out := r.ns.MustExec(t, "bridge", "-d", "link", "show", "dev", "pnheeeeeeeeeeee"); !strings.Contains(out, "hairpin on") {
		t.Fatalf("bridge port not in hairpin mode: %s", out)
	}
	if peer.Attrs().HardwareAddr.String() != "02:70:0a:4d:00:05" {
		t.Fatalf("peer MAC %s", peer.Attrs().HardwareAddr)
	}
	// The host knows the new address's MAC without ARP (a sender that tried
	// it early is not held until the next ARP retry).
	if out := r.ns.MustExec(t, "ip", "neigh", "show", "10.77.0.5", "dev", "pn-aaaaaaaaaaaa"); !strings.Contains(out, "lladdr 02:70:0a:4d:00:05") {
		t.Fatalf("no neighbor entry for the endpoint on the bridge: %q", out)
	}
	var addr store.Address
	if _, err := r.st.Get(ctx, store.AddrKey(netip.MustParsePrefix("10.77.0.0/16"), netip.MustParseAddr("10.77.0.5")), &addr); err != nil || addr.Endpoint != epID || addr.Host != "h1" {
		t.Fatalf("address owner not recorded: %v %+v", err, addr)
	}

	join, err := r.d.Join(ctx, &network.JoinRequest{NetworkID: netID, EndpointID: epID, SandboxKey: "/var/run/docker/netns/x"})
	if err != nil {
		t.Fatal(err)
	}
	if join.InterfaceName.SrcName != "pnceeeeeeeeeeee" || join.InterfaceName.DstPrefix != "eth" || join.Gateway != "10.77.0.1" || !join.DisableGatewayService {
		t.Fatalf("join: %+v", join)
	}

	pm := []any{map[string]any{"Proto": float64(6), "Port": float64(80), "HostPort": float64(8080), "HostPortEnd": float64(8080)}}
	r.mustCall(func() error {
		return r.d.ProgramExternalConnectivity(ctx, &network.ProgramExternalConnectivityRequest{NetworkID: netID, EndpointID: epID,
			Options: map[string]any{labelPortmap: pm}})
	})
	var rec store.Endpoint
	if _, err := r.st.Get(ctx, store.EndpointKey("h1", epID), &rec); err != nil || len(rec.Ports) != 1 || rec.Ports[0].HostPort != 8080 {
		t.Fatalf("published ports not recorded: %v %+v", err, rec)
	}

	r.mustCall(func() error {
		return r.d.DeleteEndpoint(ctx, &network.DeleteEndpointRequest{NetworkID: netID, EndpointID: epID})
	})
	if _, err := r.ns.NL.LinkByName("pnheeeeeeeeeeee"); err == nil {
		t.Fatal("host veth survived DeleteEndpoint")
	}
	if _, ok := r.ports.published[epID]; ok {
		t.Fatal("ports survived DeleteEndpoint")
	}
	if _, err := r.st.Get(ctx, store.EndpointKey("h1", epID), nil); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("endpoint record survived: %v", err)
	}
	// Deletes tolerate absence.
	r.mustCall(func() error {
		return r.d.DeleteEndpoint(ctx, &network.DeleteEndpointRequest{NetworkID: netID, EndpointID: epID})
	})

	r.mustCall(func() error { return r.d.DeleteNetwork(ctx, &network.DeleteNetworkRequest{NetworkID: netID}) })
	if _, err := r.ns.NL.LinkByName("pn-aaaaaaaaaaaa"); err == nil {
		t.Fatal("bridge survived DeleteNetwork")
	}
	// Only the address record stays: IPAM's ReleaseAddress removes it.
	for _, prefix := range []string{"networks/", "endpoints/", "lnets/"} {
		if n, _ := r.st.Count(ctx, prefix); n != 0 {
			t.Fatalf("%d keys left under %s after deleting everything", n, prefix)
		}
	}
	r.mustCall(func() error { return r.d.DeleteNetwork(ctx, &network.DeleteNetworkRequest{NetworkID: netID}) })
}

func TestInternalNetworkHasNoGatewayAndNoneModeNoInterface(t *testing.T) {
	r := newRig(t, nil, "h1")
	ctx := context.Background()
	r.mustCall(func() error { return r.d.CreateNetwork(ctx, bridgeReq(netID, map[string]any{}, true)) })
	r.mustCall(func() error {
		_, err := r.d.CreateEndpoint(ctx, &network.CreateEndpointRequest{NetworkID: netID, EndpointID: epID,
			Interface: &network.EndpointInterface{Address: "10.77.0.5/16", MacAddress: "02:11:22:33:44:55"}})
		return err
	})
	// IPAM holds no record of 10.77.0.5 here: the owner write must not
	// create one (it would resurrect a released address).
	if _, err := r.st.Get(ctx, store.AddrKey(netip.MustParsePrefix("10.77.0.0/16"), netip.MustParseAddr("10.77.0.5")), nil); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("owner write created an address record: %v", err)
	}
	if _, err := r.st.Get(ctx, store.EndpointKey("h1", epID), nil); err != nil {
		t.Fatalf("endpoint not recorded: %v", err)
	}
	j, err := r.d.Join(ctx, &network.JoinRequest{NetworkID: netID, EndpointID: epID})
	if err != nil || j.Gateway != "" || j.InterfaceName.SrcName == "" {
		t.Fatalf("internal join: %v %+v", err, j)
	}
	if !r.ports.nets[netID].Internal || r.ports.nets[netID].Masquerade {
		t.Fatalf("internal network must be isolated and never masqueraded: %+v", r.ports.nets[netID])
	}
	if l, _ := r.ns.NL.LinkByName("pnceeeeeeeeeeee"); l == nil || l.Attrs().HardwareAddr.String() != "02:11:22:33:44:55" {
		t.Fatal("Docker's MAC must be used")
	}

	none := "bbbbbbbbbbbb1111111111111111111111111111111111111111111111111111"
	req := &network.CreateNetworkRequest{NetworkID: none, Options: map[string]any{labelGeneric: map[string]any{"mode": "none"}},
		IPv4Data: []*network.IPAMData{pool("10.78.0.0/16", "10.78.0.1/16")}}
	r.mustCall(func() error { return r.d.CreateNetwork(ctx, req) })
	if _, err := r.ns.NL.LinkByName("pn-bbbbbbbbbbbb"); err == nil {
		t.Fatal("none mode must create no bridge")
	}
	ep2 := "ffffffffffff2222222222222222222222222222222222222222222222222222"
	r.mustCall(func() error {
		_, err := r.d.CreateEndpoint(ctx, &network.CreateEndpointRequest{NetworkID: none, EndpointID: ep2,
			Interface: &network.EndpointInterface{Address: "10.78.0.5/16"}})
		return err
	})
	j, err = r.d.Join(ctx, &network.JoinRequest{NetworkID: none, EndpointID: ep2})
	if err != nil || j.InterfaceName.SrcName != "" || j.Gateway != "" || !j.DisableGatewayService {
		t.Fatalf("none join: %v %+v", err, j)
	}
}

func TestFailedCreateLeavesNothing(t *testing.T) {
	r := newRig(t, nil, "h1")
	ctx := context.Background()
	r.ports.failAdd = errors.New("netlink says no")
	err := r.call(func() error { return r.d.CreateNetwork(ctx, bridgeReq(netID, map[string]any{}, false)) })
	if err == nil || !strings.Contains(err.Error(), "netlink says no") {
		t.Fatalf("got %v", err)
	}
	if _, err := r.ns.NL.LinkByName("pn-aaaaaaaaaaaa"); err == nil {
		t.Fatal("bridge leaked by a failed create")
	}
	if n, _ := r.st.Count(ctx, ""); n != 0 {
		t.Fatalf("%d etcd keys leaked by a failed create", n)
	}
	// Bad options: refused before anything is touched.
	r.ports.failAdd = nil
	err = r.call(func() error { return r.d.CreateNetwork(ctx, bridgeReq(netID, map[string]any{"mtu": "9"}, false)) })
	if err == nil || !strings.Contains(err.Error(), "out of range") {
		t.Fatalf("got %v", err)
	}
	if n, _ := r.st.Count(ctx, ""); n != 0 {
		t.Fatalf("%d etcd keys leaked by a refused create", n)
	}
}

func TestMismatchedDefinitionAcrossHostsIsRefused(t *testing.T) {
	etcd := storetest.Start(t)
	h1, h2 := newRig(t, etcd, "h1"), newRig(t, etcd, "h2")
	ctx := context.Background()
	h1.mustCall(func() error { return h1.d.CreateNetwork(ctx, bridgeReq(netID, map[string]any{"mtu": "1400"}, false)) })
	other := "cccccccccccc1111111111111111111111111111111111111111111111111111"
	err := h2.call(func() error { return h2.d.CreateNetwork(ctx, bridgeReq(other, map[string]any{"mtu": "1300"}, false)) })
	if err == nil || !strings.Contains(err.Error(), "already defined in the cluster as mode bridge, mtu 1400") {
		t.Fatalf("got %v", err)
	}
	if _, err := h2.ns.NL.LinkByName("pn-cccccccccccc"); err == nil {
		t.Fatal("refused network left a bridge")
	}
	// The same definition is fine, and the definition outlives one host.
	h2.mustCall(func() error { return h2.d.CreateNetwork(ctx, bridgeReq(other, map[string]any{"mtu": "1400"}, false)) })
	h1.mustCall(func() error { return h1.d.DeleteNetwork(ctx, &network.DeleteNetworkRequest{NetworkID: netID}) })
	lkey := store.LNetKey(netip.MustParsePrefix("10.77.0.0/16"))
	if _, err := h2.st.Get(ctx, lkey, nil); err != nil {
		t.Fatalf("definition deleted while h2 still uses it: %v", err)
	}
	h2.mustCall(func() error { return h2.d.DeleteNetwork(ctx, &network.DeleteNetworkRequest{NetworkID: other}) })
	if _, err := h2.st.Get(ctx, lkey, nil); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("definition outlived the last network: %v", err)
	}
}

func TestRestoreAfterRestartKeepsEndpointsAndPorts(t *testing.T) {
	r := newRig(t, nil, "h1")
	ctx := context.Background()
	r.mustCall(func() error { return r.d.CreateNetwork(ctx, bridgeReq(netID, map[string]any{}, false)) })
	r.mustCall(func() error {
		_, err := r.d.CreateEndpoint(ctx, &network.CreateEndpointRequest{NetworkID: netID, EndpointID: epID,
			Interface: &network.EndpointInterface{Address: "10.77.0.5/16"}})
		return err
	})
	pm := []any{map[string]any{"Proto": float64(17), "Port": float64(53), "HostPort": float64(5353), "HostPortEnd": float64(5353)}}
	r.mustCall(func() error {
		return r.d.ProgramExternalConnectivity(ctx, &network.ProgramExternalConnectivityRequest{NetworkID: netID, EndpointID: epID,
			Options: map[string]any{labelPortmap: pm}})
	})
	// Simulate kill -9: a new driver and an empty NAT engine; someone also
	// detached the veth from the bridge meanwhile.
	host, _ := r.ns.NL.LinkByName("pnheeeeeeeeeeee")
	_ = r.ns.NL.LinkSetNoMaster(host)
	r.ports = newFakePorts()
	r.d = r.newDriver()
	r.mustCall(func() error { return r.d.Restore(ctx) })
	if _, err := r.d.Join(ctx, &network.JoinRequest{NetworkID: netID, EndpointID: epID}); err != nil {
		t.Fatalf("endpoint unknown after restore: %v", err)
	}
	if ms := r.ports.published[epID]; len(ms) != 1 || ms[0].HostPort != 5353 || ms[0].Proto != "udp" {
		t.Fatalf("ports not restored: %+v", r.ports.published)
	}
	if _, ok := r.ports.nets[netID]; !ok || r.ports.syncs != 1 {
		t.Fatalf("NAT state not restored in one sync: %+v syncs=%d", r.ports.nets, r.ports.syncs)
	}
	br, _ := r.ns.NL.LinkByName("pn-aaaaaaaaaaaa")
	host, _ = r.ns.NL.LinkByName("pnheeeeeeeeeeee")
	if host.Attrs().MasterIndex != br.Attrs().Index {
		t.Fatal("restore did not re-attach the veth")
	}
}

func TestGCRemovesWhatDockerForgot(t *testing.T) {
	r := newRig(t, nil, "h1")
	ctx := context.Background()
	r.mustCall(func() error { return r.d.CreateNetwork(ctx, bridgeReq(netID, map[string]any{}, false)) })
	keep := "dddddddddddd2222222222222222222222222222222222222222222222222222"
	for _, id := range []string{epID, keep} {
		ip := "10.77.0.5/16"
		if id == keep {
			ip = "10.77.0.6/16"
		}
		r.mustCall(func() error {
			_, err := r.d.CreateEndpoint(ctx, &network.CreateEndpointRequest{NetworkID: netID, EndpointID: id,
				Interface: &network.EndpointInterface{Address: ip}})
			return err
		})
	}
	// A veth no record explains (crash between kernel and etcd).
	r.mustCall(func() error {
		return r.d.k.AddVeth(link.VethConfig{Host: "pnhorphan00000", Peer: "pncorphan00000", MTU: 1500})
	})
	live := Live{Networks: map[string]bool{netID: true}, Endpoints: map[string]bool{keep: true}}
	// Within the grace period nothing (but the orphan link) goes.
	var res GCResult
	r.mustCall(func() error { var err error; res, err = r.d.GC(ctx, live, time.Hour); return err })
	if len(res.Endpoints) != 0 || len(res.Links) != 1 {
		t.Fatalf("grace ignored or orphan kept: %+v", res)
	}
	r.mustCall(func() error { var err error; res, err = r.d.GC(ctx, live, -time.Second); return err })
	if len(res.Endpoints) != 1 || res.Endpoints[0] != epID {
		t.Fatalf("GC result: %+v", res)
	}
	if _, err := r.ns.NL.LinkByName("pnheeeeeeeeeeee"); err == nil {
		t.Fatal("dead endpoint's veth survived GC")
	}
	if _, err := r.ns.NL.LinkByName("pnhdddddddddddd"); err != nil {
		t.Fatal("live endpoint's veth removed by GC")
	}
	// The Docker network disappears: GC removes it entirely.
	r.mustCall(func() error { var err error; res, err = r.d.GC(ctx, Live{}, -time.Second); return err })
	if len(res.Networks) != 1 {
		t.Fatalf("GC result: %+v", res)
	}
	if _, err := r.ns.NL.LinkByName("pn-aaaaaaaaaaaa"); err == nil {
		t.Fatal("bridge of a vanished network survived GC")
	}
	if n, _ := r.st.Count(ctx, store.EndpointsPrefix("h1")); n != 0 {
		t.Fatalf("%d endpoint records survived", n)
	}
}

func TestMain(m *testing.M) {
	os.Exit(m.Run())
}
