package driver

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	goipam "github.com/docker/go-plugins-helpers/ipam"
	"github.com/docker/go-plugins-helpers/network"
	"github.com/podnet/podnet/internal/link"
	"github.com/podnet/podnet/internal/testutil"
	"github.com/podnet/podnet/ipam"
	"github.com/podnet/podnet/netspec"
	"github.com/podnet/podnet/store"
	"github.com/podnet/podnet/store/storetest"
	"github.com/vishvananda/netlink"
)

// The LAN of these tests: a veth pair whose end lan0 sits in the rig's
// host namespace (the parent) and whose other end is eth0 of a "physical"
// machine's namespace at 10.77.0.1/16 (the gateway).
const (
	lanSubnet = "10.77.0.0/16"
	lanGW     = "10.77.0.1"
)

type lanRig struct {
	*rig
	phys *testutil.NetNS
	ipam *ipam.IPAM
}

func newLANRig(t *testing.T, etcd *storetest.Etcd, host string) *lanRig {
	t.Helper()
	testutil.SkipUnlessLinkType(t, "macvlan")
	r := newRig(t, etcd, host)
	m, err := ipam.New(ipam.Config{Host: host, Store: r.st, Logger: storetest.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	r.addrs = m
	r.d = r.newDriver()
	lr := &lanRig{rig: r, phys: testutil.NewNetNS(t), ipam: m}
	lr.addLAN(t, "lan0")
	return lr
}

// addLAN adds a veth name in the host namespace, its peer eth0 in phys.
func (r *lanRig) addLAN(t *testing.T, name string) {
	t.Helper()
	v := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: name, TxQLen: -1}, PeerName: "eth0", PeerNamespace: netlink.NsFd(r.phys.Handle)}
	if err := r.ns.NL.LinkAdd(v); err != nil {
		t.Fatalf("LAN veth: %v", err)
	}
	r.ns.MustExec(t, "ip", "link", "set", name, "up")
	r.phys.MustExec(t, "ip", "link", "set", "eth0", "up")
	r.phys.MustExec(t, "ip", "addr", "add", lanGW+"/16", "dev", "eth0")
}

// lanReq is a CreateNetwork request of mode on 10.77.0.0/16.
func lanReq(id, mode string, opts map[string]any, internal bool) *network.CreateNetworkRequest {
	o := map[string]any{"mode": mode}
	for k, v := range opts {
		o[k] = v
	}
	r := &network.CreateNetworkRequest{NetworkID: id, Options: map[string]any{labelGeneric: o, labelIPv6: false},
		IPv4Data: []*network.IPAMData{pool(lanSubnet, lanGW+"/16")}}
	if internal {
		r.Options[labelInternal] = true
	}
	return r
}

// createNet asks IPAM for the pool and the gateway (as Docker does before
// CreateNetwork), then creates the network.
func (r *lanRig) createNet(req *network.CreateNetworkRequest) error {
	ctx := context.Background()
	if _, err := r.ipam.RequestPool(ctx, &goipam.RequestPoolRequest{Pool: lanSubnet}); err != nil {
		return err
	}
	if _, err := r.ipam.RequestAddress(ctx, &goipam.RequestAddressRequest{PoolID: lanSubnet, Address: lanGW,
		Options: map[string]string{"RequestAddressType": "com.docker.network.gateway"}}); err != nil {
		return err
	}
	err := r.call(func() error { return r.d.CreateNetwork(ctx, req) })
	if err != nil {
		_ = r.ipam.ReleaseAddress(ctx, &goipam.ReleaseAddressRequest{PoolID: lanSubnet, Address: lanGW})
		_ = r.ipam.ReleasePool(ctx, &goipam.ReleasePoolRequest{PoolID: lanSubnet})
	}
	return err
}

func (r *lanRig) mustCreateNet(t *testing.T, req *network.CreateNetworkRequest) {
	t.Helper()
	if err := r.createNet(req); err != nil {
		t.Fatal(err)
	}
}

func (r *lanRig) deleteNet(t *testing.T, id string) {
	t.Helper()
	ctx := context.Background()
	_ = r.ipam.ReleaseAddress(ctx, &goipam.ReleaseAddressRequest{PoolID: lanSubnet, Address: lanGW})
	_ = r.ipam.ReleasePool(ctx, &goipam.ReleasePoolRequest{PoolID: lanSubnet})
	r.mustCall(func() error { return r.d.DeleteNetwork(ctx, &network.DeleteNetworkRequest{NetworkID: id}) })
}

// container is a Docker container's namespace holding an endpoint's interface.
type container struct {
	ns   *testutil.NetNS
	ip   string
	epID string
}

// run creates endpoint epID with address ip (IPAM first, as Docker), moves
// its interface into a fresh namespace as eth0, configures it as Docker
// would from Join's answer, and returns the container.
func (r *lanRig) run(t *testing.T, netID, epID, ip string, opts map[string]any) *container {
	t.Helper()
	c, err := r.tryRun(t, netID, epID, ip, opts)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func (r *lanRig) tryRun(t *testing.T, netID, epID, ip string, opts map[string]any) (*container, error) {
	t.Helper()
	ctx := context.Background()
	if _, err := r.ipam.RequestAddress(ctx, &goipam.RequestAddressRequest{PoolID: lanSubnet, Address: ip}); err != nil {
		return nil, err
	}
	err := r.call(func() error {
		_, err := r.d.CreateEndpoint(ctx, &network.CreateEndpointRequest{NetworkID: netID, EndpointID: epID,
			Interface: &network.EndpointInterface{Address: ip + "/16"}, Options: opts})
		return err
	})
	if err != nil {
		_ = r.ipam.ReleaseAddress(ctx, &goipam.ReleaseAddressRequest{PoolID: lanSubnet, Address: ip})
		return nil, err
	}
	j, err := r.d.Join(ctx, &network.JoinRequest{NetworkID: netID, EndpointID: epID})
	if err != nil {
		t.Fatal(err)
	}
	c := &container{ns: testutil.NewNetNS(t), ip: ip, epID: epID}
	l, err := r.ns.NL.LinkByName(j.InterfaceName.SrcName)
	if err != nil {
		t.Fatalf("Join's SrcName %s: %v", j.InterfaceName.SrcName, err)
	}
	if err := r.ns.NL.LinkSetNsFd(l, int(c.ns.Handle)); err != nil {
		t.Fatalf("move %s into the container: %v", j.InterfaceName.SrcName, err)
	}
	c.ns.MustExec(t, "ip", "link", "set", j.InterfaceName.SrcName, "name", "eth0")
	c.ns.MustExec(t, "ip", "addr", "add", ip+"/16", "dev", "eth0")
	c.ns.MustExec(t, "ip", "link", "set", "eth0", "up")
	if j.Gateway != "" {
		c.ns.MustExec(t, "ip", "route", "add", "default", "via", j.Gateway)
	}
	for _, sr := range j.StaticRoutes {
		if sr.RouteType == routeConnected && sr.Destination == "0.0.0.0/0" {
			c.ns.MustExec(t, "ip", "route", "add", "default", "dev", "eth0")
		}
	}
	return c, nil
}

// stop is Docker's stop: the interface returns to the host, then
// DeleteEndpoint and ReleaseAddress.
func (r *lanRig) stop(t *testing.T, netID string, c *container) {
	t.Helper()
	ctx := context.Background()
	if l, err := c.ns.NL.LinkByName("eth0"); err == nil {
		_ = c.ns.NL.LinkSetDown(l)
		_ = c.ns.NL.LinkSetName(l, lanIfName(c.epID))
		_ = c.ns.NL.LinkSetNsFd(l, int(r.ns.Handle))
	}
	r.mustCall(func() error {
		return r.d.DeleteEndpoint(ctx, &network.DeleteEndpointRequest{NetworkID: netID, EndpointID: c.epID})
	})
	_ = r.ipam.ReleaseAddress(ctx, &goipam.ReleaseAddressRequest{PoolID: lanSubnet, Address: c.ip})
}

// canPing polls until from pings addr, or fails the test at the deadline.
func canPing(t *testing.T, from *testutil.NetNS, addr string) {
	t.Helper()
	testutil.Eventually(t, 20*time.Second, from.Name+" pings "+addr, func() error {
		out, err := from.Exec("busybox", "ping", "-c1", "-W1", addr)
		if err != nil {
			return fmt.Errorf("%w: %s", err, out)
		}
		return nil
	})
}

// cannotPing checks that from gets no answer from addr (three tries).
func cannotPing(t *testing.T, from *testutil.NetNS, addr string) {
	t.Helper()
	if out, err := from.Exec("busybox", "ping", "-c3", "-W1", addr); err == nil {
		t.Fatalf("%s reaches %s, which it must not: %s", from.Name, addr, out)
	}
}

// podnetLinks lists podnet-named links left in the host namespace.
func podnetLinks(t *testing.T, r *lanRig) []string {
	t.Helper()
	ls, err := r.ns.NL.LinkList()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, l := range ls {
		if isPodnetLink(l) || l.Type() == "vlan" {
			out = append(out, l.Attrs().Name+"("+l.Type()+")")
		}
	}
	return out
}

// assertClean checks that nothing of podnet is left: links, records,
// routes through a shim.
func assertClean(t *testing.T, r *lanRig) {
	t.Helper()
	if ls := podnetLinks(t, r); len(ls) != 0 {
		t.Fatalf("links left behind: %v", ls)
	}
	ctx := context.Background()
	for _, prefix := range []string{"networks/", "endpoints/", "lnets/", "vlans/", "pools/", "ipam/"} {
		if n, _ := r.st.Count(ctx, prefix); n != 0 {
			t.Fatalf("%d keys left under %s", n, prefix)
		}
	}
	if out := r.ns.MustExec(t, "ip", "-4", "route"); strings.Contains(out, "10.77.") {
		t.Fatalf("routes left behind: %s", out)
	}
}

// lanNetTest is the common scenario: network, two containers talking to
// each other and to the physical machine, MTU from the parent, clean
// removal.
func lanNetTest(t *testing.T, mode string, opts map[string]any) {
	r := newLANRig(t, nil, "h1")
	if mode == netspec.ModeIpvlan {
		testutil.SkipUnlessLinkType(t, "ipvlan")
	}
	r.ns.MustExec(t, "ip", "link", "set", "lan0", "mtu", "1400")
	r.mustCreateNet(t, lanReq(netID, mode, opts, false))
	n, err := r.d.network(netID)
	if err != nil {
		t.Fatal(err)
	}
	if n.MTU != 1400 {
		t.Fatalf("network MTU %d, want the parent's 1400", n.MTU)
	}
	c1 := r.run(t, netID, epID, "10.77.0.5", nil)
	c2 := r.run(t, netID, "dddddddddddd2222222222222222222222222222222222222222222222222222", "10.77.0.6", nil)
	if l, err := c1.ns.NL.LinkByName("eth0"); err != nil || l.Type() != mode || l.Attrs().MTU != 1400 {
		t.Fatalf("container interface: %v %+v", err, l)
	}
	canPing(t, c1.ns, "10.77.0.6")
	canPing(t, c2.ns, "10.77.0.5")
	canPing(t, c1.ns, lanGW)
	canPing(t, r.phys, "10.77.0.6")
	r.stop(t, netID, c1)
	r.stop(t, netID, c2)
	r.deleteNet(t, netID)
	assertClean(t, r)
}

func TestMacvlanContainersReachEachOtherAndTheLAN(t *testing.T) {
	lanNetTest(t, netspec.ModeMacvlan, map[string]any{"parent": "lan0"})
}

func TestIPVlanL2ContainersReachEachOtherAndTheLAN(t *testing.T) {
	lanNetTest(t, netspec.ModeIpvlan, map[string]any{"parent": "lan0"})
}

// l3Test: ipvlan l3/l3s containers in two namespaces exchange traffic
// through their device routes; Join gives no gateway.
func l3Test(t *testing.T, mode string) {
	testutil.SkipUnlessLinkType(t, "ipvlan")
	r := newLANRig(t, nil, "h1")
	r.mustCreateNet(t, lanReq(netID, netspec.ModeIpvlan, map[string]any{"parent": "lan0", "ipvlan_mode": mode}, false))
	c1 := r.run(t, netID, epID, "10.77.0.5", nil)
	c2 := r.run(t, netID, "dddddddddddd2222222222222222222222222222222222222222222222222222", "10.77.0.6", nil)
	j, err := r.d.Join(context.Background(), &network.JoinRequest{NetworkID: netID, EndpointID: epID})
	if err != nil || j.Gateway != "" || len(j.StaticRoutes) != 1 || j.StaticRoutes[0].Destination != "0.0.0.0/0" || j.StaticRoutes[0].RouteType != routeConnected {
		t.Fatalf("ipvlan %s Join must route through the device without a gateway: %v %+v", mode, err, j)
	}
	canPing(t, c1.ns, "10.77.0.6")
	canPing(t, c2.ns, "10.77.0.5")
	l, _ := c1.ns.NL.LinkByName("eth0")
	if iv, ok := l.(*netlink.IPVlan); !ok || ipvlanKernelModes[mode] != iv.Mode {
		t.Fatalf("container interface is not ipvlan %s: %+v", mode, l)
	}
	r.stop(t, netID, c1)
	r.stop(t, netID, c2)
	r.deleteNet(t, netID)
	assertClean(t, r)
}

func TestIPVlanL3ContainersExchangeTraffic(t *testing.T)  { l3Test(t, netspec.IpvlanL3) }
func TestIPVlanL3SContainersExchangeTraffic(t *testing.T) { l3Test(t, netspec.IpvlanL3S) }

// hostAccessTest: the shim gives the host its own address from the pool
// and a route to each local container; the parent going down and up is
// survived; removal leaves no shim, route or address.
func hostAccessTest(t *testing.T, mode string) {
	r := newLANRig(t, nil, "h1")
	if mode == netspec.ModeIpvlan {
		testutil.SkipUnlessLinkType(t, "ipvlan")
	}
	r.mustCreateNet(t, lanReq(netID, mode, map[string]any{"parent": "lan0", "podnet.host-access": "true"}, false))
	n, _ := r.d.network(netID)
	if n.Bridge != "pn-aaaaaaaaaaaa" || !n.HostAccess.IsValid() {
		t.Fatalf("no shim recorded: %+v", n)
	}
	shimIP := n.HostAccess.Addr()
	var rec store.Address
	if _, err := r.st.Get(context.Background(), store.AddrKey(netip.MustParsePrefix(lanSubnet), shimIP), &rec); err != nil || rec.Host != "h1" {
		t.Fatalf("shim address %s not allocated from the pool: %v %+v", shimIP, err, rec)
	}
	if r.ports.nets[netID].Bridge != "pn-aaaaaaaaaaaa" || !r.ports.nets[netID].LAN {
		t.Fatalf("the NAT engine must know the shim: %+v", r.ports.nets[netID])
	}
	c := r.run(t, netID, epID, "10.77.0.5", nil)
	canPing(t, r.ns, "10.77.0.5") // the host reaches its own container
	canPing(t, c.ns, shimIP.String())
	canPing(t, c.ns, lanGW)

	r.ns.MustExec(t, "ip", "link", "set", "lan0", "down")
	cannotPing(t, c.ns, lanGW)
	r.ns.MustExec(t, "ip", "link", "set", "lan0", "up")
	canPing(t, c.ns, lanGW)
	canPing(t, r.ns, "10.77.0.5")

	r.stop(t, netID, c)
	if out := r.ns.MustExec(t, "ip", "-4", "route", "show", "10.77.0.5"); strings.TrimSpace(out) != "" {
		t.Fatalf("host route to a removed container left: %s", out)
	}
	r.deleteNet(t, netID)
	assertClean(t, r)
	if _, err := r.st.Get(context.Background(), store.AddrKey(netip.MustParsePrefix(lanSubnet), shimIP), nil); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("shim address %s not released: %v", shimIP, err)
	}
}

func TestMacvlanHostAccessShim(t *testing.T) { hostAccessTest(t, netspec.ModeMacvlan) }
func TestIPVlanHostAccessShim(t *testing.T)  { hostAccessTest(t, netspec.ModeIpvlan) }

func TestMacvlanWithoutHostAccessHostCannotReachContainers(t *testing.T) {
	r := newLANRig(t, nil, "h1")
	r.ns.MustExec(t, "ip", "addr", "add", "10.77.0.200/16", "dev", "lan0")
	r.mustCreateNet(t, lanReq(netID, netspec.ModeMacvlan, map[string]any{"parent": "lan0"}, false))
	c := r.run(t, netID, epID, "10.77.0.5", nil)
	canPing(t, r.phys, "10.77.0.5")
	cannotPing(t, r.ns, "10.77.0.5") // a parent never talks to its own macvlans
	// -p needs the host to reach the container: refused, nothing left.
	pm := []any{map[string]any{"Proto": float64(6), "Port": float64(80), "HostPort": float64(8080), "HostPortEnd": float64(8080)}}
	_, err := r.tryRun(t, netID, "ffffffffffff2222222222222222222222222222222222222222222222222222", "10.77.0.7", map[string]any{labelPortmap: pm})
	if err == nil || !strings.Contains(err.Error(), "podnet.host-access=true") {
		t.Fatalf("publishing without host access: got %v", err)
	}
	if _, err := r.ns.NL.LinkByName(lanIfName("ffffffffffff")); err == nil {
		t.Fatal("a refused endpoint left its interface")
	}
	r.stop(t, netID, c)
	r.deleteNet(t, netID)
	r.ns.MustExec(t, "ip", "addr", "del", "10.77.0.200/16", "dev", "lan0")
	assertClean(t, r)
}

// vlanParentTest: -o parent=lan0.42 creates the VLAN link (recorded in
// etcd), the last network using it removes it, one podnet did not create
// is never removed, and a record left by a kill -9 is collected at restore.
func vlanParentTest(t *testing.T, mode string) {
	testutil.SkipUnlessLinkType(t, "vlan")
	r := newLANRig(t, nil, "h1")
	if mode == netspec.ModeIpvlan {
		testutil.SkipUnlessLinkType(t, "ipvlan")
	}
	ctx := context.Background()
	r.phys.MustExec(t, "ip", "link", "add", "link", "eth0", "name", "eth0.42", "type", "vlan", "id", "42")
	r.phys.MustExec(t, "ip", "link", "set", "eth0.42", "up")
	r.phys.MustExec(t, "ip", "addr", "del", lanGW+"/16", "dev", "eth0")
	r.phys.MustExec(t, "ip", "addr", "add", lanGW+"/16", "dev", "eth0.42")
	r.mustCreateNet(t, lanReq(netID, mode, map[string]any{"parent": "lan0.42"}, false))
	l, err := r.ns.NL.LinkByName("lan0.42")
	if v, ok := l.(*netlink.Vlan); err != nil || !ok || v.VlanId != 42 || v.Alias != vlanAlias {
		t.Fatalf("VLAN parent not created (or not marked for podnetd cleanup): %v %+v", err, l)
	}
	if _, err := r.st.Get(ctx, store.VLANKey("h1", "lan0.42"), nil); err != nil {
		t.Fatalf("VLAN parent not recorded: %v", err)
	}
	c := r.run(t, netID, epID, "10.77.0.5", nil)
	canPing(t, c.ns, lanGW) // tagged 42 on lan0, untagged on the far side's eth0.42
	r.stop(t, netID, c)

	// A kill -9 after creating the VLAN link, before recording a network:
	// the restarted podnetd removes what only its record explains.
	r.d = r.newDriver()
	r.mustCall(func() error { return r.d.Restore(ctx) })
	if _, err := r.ns.NL.LinkByName("lan0.42"); err != nil {
		t.Fatalf("restore removed a VLAN parent still in use: %v", err)
	}
	r.deleteNet(t, netID)
	if _, err := r.ns.NL.LinkByName("lan0.42"); err == nil {
		t.Fatal("VLAN parent podnet created survived its last network")
	}
	if n, _ := r.st.Count(ctx, "vlans/"); n != 0 {
		t.Fatal("VLAN parent record survived")
	}
	if err := r.d.vlans.st.Put(ctx, store.VLANKey("h1", "lan0.77"), store.VLANLink{Name: "lan0.77", Parent: "lan0", VID: 77}); err != nil {
		t.Fatal(err)
	}
	r.ns.MustExec(t, "ip", "link", "add", "link", "lan0", "name", "lan0.77", "type", "vlan", "id", "77")
	r.d = r.newDriver()
	r.mustCall(func() error { return r.d.Restore(ctx) })
	if _, err := r.ns.NL.LinkByName("lan0.77"); err == nil {
		t.Fatal("restore kept a VLAN link only a stale record explains")
	}

	// A VLAN link the operator made is used, and kept.
	r.ns.MustExec(t, "ip", "link", "add", "link", "lan0", "name", "lan0.43", "type", "vlan", "id", "43")
	r.mustCreateNet(t, lanReq(netID, mode, map[string]any{"parent": "lan0.43"}, false))
	r.deleteNet(t, netID)
	if _, err := r.ns.NL.LinkByName("lan0.43"); err != nil {
		t.Fatalf("a VLAN link podnet did not create was removed: %v", err)
	}
	r.ns.MustExec(t, "ip", "link", "del", "lan0.43")
	assertClean(t, r)
}

func TestMacvlanVLANParentCreatedAndRemoved(t *testing.T) { vlanParentTest(t, netspec.ModeMacvlan) }
func TestIPVlanVLANParentCreatedAndRemoved(t *testing.T)  { vlanParentTest(t, netspec.ModeIpvlan) }

func TestMacvlanIsolatedSegmentWithoutParent(t *testing.T) {
	r := newLANRig(t, nil, "h1")
	r.mustCreateNet(t, lanReq(netID, netspec.ModeMacvlan, map[string]any{}, false))
	l, err := r.ns.NL.LinkByName(isolatedName(netID))
	if err != nil || (l.Type() != "dummy" && l.Type() != "veth") {
		t.Fatalf("isolated parent: %v %+v", err, l)
	}
	c1 := r.run(t, netID, epID, "10.77.0.5", nil)
	c2 := r.run(t, netID, "dddddddddddd2222222222222222222222222222222222222222222222222222", "10.77.0.6", nil)
	canPing(t, c1.ns, "10.77.0.6")
	cannotPing(t, c2.ns, lanGW) // an isolated segment reaches no LAN
	j, _ := r.d.Join(context.Background(), &network.JoinRequest{NetworkID: netID, EndpointID: epID})
	if j.Gateway != "" {
		t.Fatalf("an isolated segment has no gateway: %+v", j)
	}
	r.stop(t, netID, c1)
	r.stop(t, netID, c2)
	r.deleteNet(t, netID)
	assertClean(t, r)
}

// TestLANBadInputLeavesNothing: each refused request names the problem
// and leaves no link, key or route.
func TestLANBadInputLeavesNothing(t *testing.T) {
	r := newLANRig(t, nil, "h1")
	r.ns.MustExec(t, "ip", "link", "add", "br9", "type", "bridge")
	r.ns.MustExec(t, "ip", "link", "add", "port9", "type", "veth", "peer", "name", "port9p")
	r.ns.MustExec(t, "ip", "link", "set", "port9", "master", "br9")
	r.ns.MustExec(t, "ip", "link", "add", "pn-bbbbbbbbbbbb", "type", "bridge")
	for _, tc := range []struct {
		opts     map[string]any
		internal bool
		want     string
	}{
		{map[string]any{"parent": "eth9"}, false, "parent eth9 does not exist on host h1"},
		{map[string]any{"parent": "eth9.42"}, false, "neither does eth9"},
		{map[string]any{"parent": "lan0.4095"}, false, "VLAN id 4095 is out of range 1-4094"},
		{map[string]any{"parent": "lan0.0"}, false, "VLAN id 0 is out of range"},
		{map[string]any{"parent": ""}, false, "option parent needs a value"},
		{map[string]any{"parent": "pn-bbbbbbbbbbbb"}, false, "interface of another podnet network"},
		{map[string]any{"parent": "port9"}, false, "enslaved to bridge br9"},
		{map[string]any{"parent": "lo"}, false, "loopback"},
		{map[string]any{"parent": "lan0", "macvlan_mode": "nope"}, false, `macvlan_mode="nope" is unknown: use one of bridge, private, vepa, passthru`},
		{map[string]any{"parent": "lan0", "ipvlan_mode": "l2"}, false, `option "ipvlan_mode" does not apply to mode macvlan`},
		{map[string]any{"parent": "lan0", "macvlan_mode": "passthru", "podnet.host-access": "true"}, false, "cannot have a host-access shim"},
		{map[string]any{"parent": "lan0", "macvlan_mode": "private", "podnet.host-access": "true"}, false, "host access needs macvlan_mode=bridge"},
		{map[string]any{"parent": "lan0", "podnet.host-access": "maybe"}, false, "want true or false"},
		{map[string]any{"parent": "lan0"}, true, "--internal and -o parent=lan0 exclude each other"},
		{map[string]any{"parent": "lan0", "mtu": "9000"}, false, "mtu 9000 is larger than the MTU 1500 of parent lan0"},
	} {
		err := r.createNet(lanReq(netID, netspec.ModeMacvlan, tc.opts, tc.internal))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v internal=%v: got %v, want %q", tc.opts, tc.internal, err, tc.want)
		}
		if ls := podnetLinks(t, r); len(ls) != 1 { // pn-bbbbbbbbbbbb, the test's own
			t.Errorf("%v: links left behind: %v", tc.opts, ls)
		}
		if n, _ := r.st.Count(context.Background(), "networks/"); n != 0 {
			t.Errorf("%v: network record left", tc.opts)
		}
	}
	for _, tc := range []struct {
		opts map[string]any
		want string
	}{
		{map[string]any{"parent": "lan0", "ipvlan_mode": "l4"}, `ipvlan_mode="l4" is unknown: use one of l2, l3, l3s`},
		{map[string]any{"parent": "lan0", "ipvlan_flag": "loud"}, `ipvlan_flag="loud" is unknown: use one of bridge, private, vepa`},
	} {
		if err := r.createNet(lanReq(netID, netspec.ModeIpvlan, tc.opts, false)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: got %v, want %q", tc.opts, err, tc.want)
		}
	}
	r.ns.MustExec(t, "ip", "link", "del", "pn-bbbbbbbbbbbb")
	r.ns.MustExec(t, "ip", "link", "del", "br9")
	assertClean(t, r)
}

func TestMacvlanPassthruTakesOneContainer(t *testing.T) {
	r := newLANRig(t, nil, "h1")
	r.mustCreateNet(t, lanReq(netID, netspec.ModeMacvlan, map[string]any{"parent": "lan0", "macvlan_mode": "passthru"}, false))
	c := r.run(t, netID, epID, "10.77.0.5", nil)
	_, err := r.tryRun(t, netID, "ffffffffffff2222222222222222222222222222222222222222222222222222", "10.77.0.6", nil)
	if err == nil || !strings.Contains(err.Error(), "passthru gives the whole parent to one container") {
		t.Fatalf("second passthru container: got %v", err)
	}
	canPing(t, c.ns, lanGW)
	r.stop(t, netID, c)
	r.deleteNet(t, netID)
	assertClean(t, r)
}

// TestIPVlanParentModeConflict: the ipvlan mode belongs to the parent, so a
// second network in another mode on the same parent is refused (the
// kernel would switch the first network's mode), and so is macvlan.
func TestIPVlanParentModeConflict(t *testing.T) {
	testutil.SkipUnlessLinkType(t, "ipvlan")
	r := newLANRig(t, nil, "h1")
	r.mustCreateNet(t, lanReq(netID, netspec.ModeIpvlan, map[string]any{"parent": "lan0", "podnet.host-access": "true"}, false))
	other := "bbbbbbbbbbbb1111111111111111111111111111111111111111111111111111"
	req := lanReq(other, netspec.ModeIpvlan, map[string]any{"parent": "lan0", "ipvlan_mode": "l3"}, false)
	req.IPv4Data = []*network.IPAMData{pool("10.78.0.0/16", "10.78.0.1/16")}
	err := r.call(func() error { return r.d.CreateNetwork(context.Background(), req) })
	if err == nil || !strings.Contains(err.Error(), "already carries ipvlan interface pn-aaaaaaaaaaaa in ipvlan_mode=l2") {
		t.Fatalf("got %v", err)
	}
	req = lanReq(other, netspec.ModeMacvlan, map[string]any{"parent": "lan0"}, false)
	req.IPv4Data = []*network.IPAMData{pool("10.78.0.0/16", "10.78.0.1/16")}
	err = r.call(func() error { return r.d.CreateNetwork(context.Background(), req) })
	if err == nil || !strings.Contains(err.Error(), "macvlan or ipvlan interfaces, not both") {
		t.Fatalf("got %v", err)
	}
	if l, _ := r.ns.NL.LinkByName("pn-aaaaaaaaaaaa"); l == nil {
		t.Fatal("a refused network removed the first network's shim")
	}
	r.deleteNet(t, netID)
	assertClean(t, r)
}

// refusedWithoutKernelSupport runs where the kernel lacks a link type: the
// network create fails, naming the missing feature, and leaves nothing.
func refusedWithoutKernelSupport(t *testing.T, probe []string, mode string, opts map[string]any, want string) {
	r := newLANRig(t, nil, "h1")
	if _, err := r.ns.Exec(probe...); err == nil {
		r.ns.MustExec(t, "ip", "link", "del", "probe0")
		t.Skip("this kernel has it: the tests that need it run instead")
	}
	err := r.createNet(lanReq(netID, mode, opts, false))
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("got %v, want %q", err, want)
	}
	assertClean(t, r)
}

func TestIPVlanRefusedWithoutKernelSupport(t *testing.T) {
	refusedWithoutKernelSupport(t, []string{"ip", "link", "add", "probe0", "link", "lan0", "type", "ipvlan"},
		netspec.ModeIpvlan, map[string]any{"parent": "lan0"}, "kernel has no ipvlan support (CONFIG_IPVLAN, module ipvlan)")
}

func TestVLANParentRefusedWithoutKernelSupport(t *testing.T) {
	refusedWithoutKernelSupport(t, []string{"ip", "link", "add", "link", "lan0", "name", "probe0", "type", "vlan", "id", "5"},
		netspec.ModeMacvlan, map[string]any{"parent": "lan0.42"}, "no 802.1q VLAN support (CONFIG_VLAN_8021Q, module 8021q)")
}

// TestLANRestoreAfterKill: a new driver (podnetd after kill -9) finds the
// network, its shim and the host routes to its containers.
func TestLANRestoreAfterKill(t *testing.T) {
	r := newLANRig(t, nil, "h1")
	r.mustCreateNet(t, lanReq(netID, netspec.ModeMacvlan, map[string]any{"parent": "lan0", "podnet.host-access": "true"}, false))
	c := r.run(t, netID, epID, "10.77.0.5", nil)
	r.ns.MustExec(t, "ip", "route", "del", "10.77.0.5") // lost meanwhile
	r.ports = newFakePorts()
	r.d = r.newDriver()
	r.mustCall(func() error { return r.d.Restore(context.Background()) })
	canPing(t, r.ns, "10.77.0.5")
	if !r.ports.nets[netID].LAN {
		t.Fatalf("shim not handed to the NAT engine at restore: %+v", r.ports.nets)
	}
	r.stop(t, netID, c)
	r.deleteNet(t, netID)
	assertClean(t, r)
}

// TestLANSubnetOfTheParent: a macvlan network may sit on its parent's own
// LAN subnet, which podnet otherwise refuses (netspec.CheckSafe). IPAM
// lifts the refusal at RequestPool only with --ipam-opt parent=IFACE,
// naming the option when it refuses; the driver, which sees the mode and
// the parent, lifts it only for a macvlan/ipvlan network on that parent:
// not for a bridge network, nor for a macvlan network on another parent.
func TestLANSubnetOfTheParent(t *testing.T) {
	r := newLANRig(t, nil, "h1")
	r.ns.MustExec(t, "ip", "addr", "add", "10.77.0.200/16", "dev", "lan0")
	r.ns.MustExec(t, "ip", "link", "add", "lan1", "type", "veth", "peer", "name", "lan1p")
	r.ns.MustExec(t, "ip", "link", "set", "lan1", "up")
	k := &link.Kernel{NL: r.ns.NL, ProcSys: "/proc/sys"}
	r.hostNets = func() ([]netspec.HostNetwork, error) { return k.InterfaceNetworks(bridgePrefix) }
	m, err := ipam.New(ipam.Config{Host: "h1", Store: r.st, Logger: storetest.Logger(t), HostNetworks: r.hostNets})
	if err != nil {
		t.Fatal(err)
	}
	r.ipam, r.addrs = m, m
	r.d = r.newDriver()
	ctx := context.Background()

	_, err = m.RequestPool(ctx, &goipam.RequestPoolRequest{Pool: lanSubnet})
	if !errors.Is(err, netspec.ErrUnsafeSubnet) || !strings.Contains(err.Error(), "interface lan0") ||
		!strings.Contains(err.Error(), "add --ipam-opt parent=lan0") {
		t.Fatalf("RequestPool of lan0's subnet without --ipam-opt parent: %v", err)
	}
	if _, err := m.RequestPool(ctx, &goipam.RequestPoolRequest{Pool: lanSubnet, Options: map[string]string{"parent": "lan0"}}); err != nil {
		t.Fatalf("RequestPool with --ipam-opt parent=lan0: %v", err)
	}
	for what, req := range map[string]*network.CreateNetworkRequest{
		"a bridge network":                 bridgeReq(netID, map[string]any{}, false),
		"a macvlan network on lan1":        lanReq(netID, netspec.ModeMacvlan, map[string]any{"parent": "lan1"}, false),
		"an isolated macvlan network":      lanReq(netID, netspec.ModeMacvlan, map[string]any{}, false),
		"a host-access network on lan1":    lanReq(netID, netspec.ModeMacvlan, map[string]any{"parent": "lan1", "podnet.host-access": "true"}, false),
		"a macvlan network on lan0's VLAN": lanReq(netID, netspec.ModeMacvlan, map[string]any{"parent": "lan0.7"}, false),
	} {
		if what == "a bridge network" {
			req.IPv4Data = []*network.IPAMData{pool(lanSubnet, lanGW+"/16")}
		}
		err := r.call(func() error { return r.d.CreateNetwork(ctx, req) })
		if !errors.Is(err, netspec.ErrUnsafeSubnet) || !strings.Contains(err.Error(), "interface lan0") {
			t.Errorf("%s on lan0's subnet: got %v, want the unsafe-subnet refusal naming lan0", what, err)
		}
		if ls := podnetLinks(t, r); len(ls) != 0 {
			t.Errorf("%s: links left behind: %v", what, ls)
		}
		if n, _ := r.st.Count(ctx, "networks/"); n != 0 {
			t.Errorf("%s: network record left", what)
		}
	}
	r.mustCall(func() error {
		return r.d.CreateNetwork(ctx, lanReq(netID, netspec.ModeMacvlan, map[string]any{"parent": "lan0"}, false))
	})
	c := r.run(t, netID, epID, "10.77.0.5", nil)
	canPing(t, r.phys, "10.77.0.5")
	r.stop(t, netID, c)
	r.deleteNet(t, netID)
	r.ns.MustExec(t, "ip", "addr", "del", "10.77.0.200/16", "dev", "lan0")
	r.ns.MustExec(t, "ip", "link", "del", "lan1")
	assertClean(t, r)
}
