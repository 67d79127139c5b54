package dataplane

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/podnet/podnet/internal/testutil"
)

// TestKernelLANShimMasqueradesPortsAndServices: a macvlan network with a
// host-access shim (Network.LAN), as the driver builds it: the container's
// default route is the LAN's router, which knows no way back to outside
// clients. A published port and a service (NodePort) whose endpoint is
// that container therefore work only if the connection is masqueraded
// into the shim: the container then answers the shim, on the LAN, and the
// host un-NATs the reply. The LAN's subnet is no pod subnet: the
// reverse-path guard leaves the LAN's own sources alone.
func TestKernelLANShimMasqueradesPortsAndServices(t *testing.T) {
	testutil.SkipUnlessLinkType(t, "macvlan")
	t.Parallel()
	l := newLab(t)
	lan, shim := "lan"+l.tag, "pn-lan"+l.tag
	router, ctr := l.netns(), l.netns()
	l.ipBatch(l.host,
		"link add "+lan+" type veth peer name eth0 netns "+router.Name,
		"link set "+lan+" up",
		"link add "+shim+" link "+lan+" type macvlan mode bridge",
		"addr add 10.210.0.2/32 dev "+shim,
		"link set "+shim+" up",
		"route add 10.210.0.0/24 dev "+shim+" src 10.210.0.2 metric 1000",
		"route add 10.210.0.5/32 dev "+shim+" src 10.210.0.2",
		"link add m"+l.tag+" link "+lan+" type macvlan mode bridge",
		"link set m"+l.tag+" netns "+ctr.Name,
		// A host process needs a route to the VIP to pick its source.
		"route add default via "+clientIP4)
	l.sysctl(l.host, "net/ipv4/conf/"+shim+"/route_localnet", "1")
	l.ipBatch(router, "addr add 10.210.0.1/24 dev eth0", "link set eth0 up", "link set lo up")
	l.ipBatch(ctr,
		"link set m"+l.tag+" name eth0",
		"addr add 10.210.0.5/24 dev eth0",
		"link set eth0 up",
		"route add default via 10.210.0.1")
	serve(t, ctr, 8080, "lan")
	n := Network{ID: "lan" + l.tag + "0123456789abcdef", Bridge: shim, LAN: true,
		Subnets: []netip.Prefix{netip.MustParsePrefix("10.210.0.0/24")}}
	l.addNetwork(n)
	l.publish("4a5b6c7d8e9f00000000", n, container{ns: ctr, ip4: netip.MustParseAddr("10.210.0.5")},
		Binding{Proto: TCP, HostPort: 8081, ContainerPort: 8080})
	l.do(func() error {
		return setServices(l.eng, []Service{{Name: "lanweb", ClusterIP: netip.MustParseAddr(vip4),
			Ports:     []ServicePort{{Proto: TCP, Port: 80, TargetPort: 8080, NodePort: nodePort}},
			Endpoints: []ServiceEndpoint{{Addr: netip.MustParseAddr("10.210.0.5"), Local: true}}}})
	})
	if err := l.eng.ServiceStatus("lanweb"); err != nil {
		t.Fatal(err)
	}
	for what, c := range map[string]struct {
		ns   *testutil.NetNS
		addr string
	}{
		"published port from outside": {l.client, at(hostIP4, 8081)},
		"node port from outside":      {l.client, at(hostIP4, nodePort)},
		"the VIP from the host":       {l.host, at(vip4, 80)},
		"the router, directly":        {router, at("10.210.0.5", 8080)},
	} {
		testutil.Eventually(t, 10*time.Second, what, func() error {
			got, err := hello(c.ns, "tcp", c.addr, 2*time.Second)
			if err != nil {
				return err
			}
			if what != "the router, directly" && got != "lan 10.210.0.2" {
				t.Fatalf("%s: the container saw %q, want the shim's address 10.210.0.2", what, got)
			}
			return nil
		})
	}
	listed, err := l.nft("list", "table", "inet", "podnet")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(listed, "10.210.0.0/24") {
		t.Fatalf("the LAN's subnet is in podnet's pod sets:\n%s", listed)
	}
}
