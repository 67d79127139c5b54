package store_test

import (
	"bytes"
	"encoding/json"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/podnet/podnet/store"
)

// Records as podnet wrote them while their address fields were strings:
// a cluster upgraded in place must read them and write them back unchanged.
var wireRecords = []struct {
	name string
	new  func() any
	json string
}{
	{"host", ptr[store.Host], `{"name":"h1","underlay":"10.0.0.1","since":"2025-03-04T05:06:07Z"}`},
	{"host without underlay", ptr[store.Host], `{"name":"h2","since":"2025-03-04T05:06:07Z"}`},
	{"pool", ptr[store.Pool], `{"subnet":"10.1.0.0/16","ipRange":"10.1.128.0/17","blockBits":26,"gateway":"10.1.0.1","created":"2025-03-04T05:06:07Z"}`},
	{"auto v6 pool", ptr[store.Pool], `{"subnet":"fd00:1::/64","v6":true,"blockBits":122,"auto":true,"created":"2025-03-04T05:06:07Z"}`},
	{"container address", ptr[store.Address], `{"ip":"10.1.0.7","kind":"container","host":"h1","endpoint":"ep1","since":"2025-03-04T05:06:07Z"}`},
	{"gateway address", ptr[store.Address], `{"ip":"fd00:1::1","kind":"gateway","hosts":["h1","h2"],"since":"2025-03-04T05:06:07Z"}`},
	{"named definition", ptr[store.LogicalNetwork], `{"name":"pods","subnets":["10.244.0.0/16","fd00:2::/64"],"mode":"vxlan","mtu":1450,"vni":4096,"options":{"podnet.direct-routing":"true"},"gateways":{"10.244.0.0/16":"10.244.0.1","fd00:2::/64":"fd00:2::1"},"ipRanges":{"10.244.0.0/16":"10.244.128.0/17"},"internal":true,"ipv6":true,"created":"2025-03-04T05:06:07Z"}`},
	{"plain definition", ptr[store.LogicalNetwork], `{"subnets":["10.5.0.0/24"],"mode":"bridge","created":"2025-03-04T05:06:07Z"}`},
	{"vni claim", ptr[store.VNIClaim], `{"pool":"10.244.0.0/16"}`},
	{"network", ptr[store.Network], `{"id":"n1","host":"h1","mode":"bridge","bridge":"pn-n1","ipv4":[{"pool":"10.1.0.0/16","gateway":"10.1.0.1/16"},{"pool":"10.9.0.0/24"}],"ipv6":[{"pool":"fd00:1::/64","gateway":"fd00:1::1/64"}],"mtu":1500,"masquerade":true,"options":{"mtu":"1500"},"created":"2025-03-04T05:06:07Z"}`},
	{"endpoint", ptr[store.Endpoint], `{"id":"e1","network":"n1","host":"h1","ipv4":"10.1.0.7/16","ipv6":"fd00:1::7/64","mac":"02:70:0a:01:00:07","hostVeth":"pnhe1","peerVeth":"pnce1","ports":[{"proto":"tcp","hostIP":"127.0.0.1","hostPort":8080,"containerIP":"10.1.0.7","containerPort":80},{"proto":"udp","hostPort":53,"containerIP":"fd00:1::7","containerPort":53}],"created":"2025-03-04T05:06:07Z"}`},
	{"endpoint without address", ptr[store.Endpoint], `{"id":"e2","network":"n2","host":"h1","created":"2025-03-04T05:06:07Z"}`},
	{"endpoint meta", ptr[store.EndpointMeta], `{"endpoint":"e1","network":"n1","container":"c1","name":"web","aliases":["www"],"labels":{"app":"web"},"ipv4":"10.1.0.7","ipv6":"fd00:1::7","ready":true,"updated":"2025-03-04T05:06:07Z"}`},
	{"endpoint meta without address", ptr[store.EndpointMeta], `{"endpoint":"e3","network":"n1","container":"c3","name":"none","ready":false,"updated":"2025-03-04T05:06:07Z"}`},
}

func ptr[T any]() any { return new(T) }

func TestRecordsKeepTheirWireFormat(t *testing.T) {
	for _, c := range wireRecords {
		t.Run(c.name, func(t *testing.T) {
			v := c.new()
			if err := (store.KV{Key: "k", Value: []byte(c.json)}).Decode(v); err != nil {
				t.Fatal(err)
			}
			out, err := json.Marshal(v)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(out, []byte(c.json)) {
				t.Fatalf("re-encoded differently:\n got %s\nwant %s", out, c.json)
			}
		})
	}
}

func TestRecordsDecodeTyped(t *testing.T) {
	var ep store.Endpoint
	if err := (store.KV{Key: "k", Value: []byte(wireRecords[10].json)}).Decode(&ep); err != nil {
		t.Fatal(err)
	}
	if ep.IPv4 != netip.MustParsePrefix("10.1.0.7/16") || ep.Ports[0].HostIP != netip.MustParseAddr("127.0.0.1") || ep.Ports[1].HostIP.IsValid() {
		t.Fatalf("%+v", ep)
	}
	var d store.LogicalNetwork
	if err := (store.KV{Key: "k", Value: []byte(wireRecords[6].json)}).Decode(&d); err != nil {
		t.Fatal(err)
	}
	if d.Gateways[netip.MustParsePrefix("fd00:2::/64")] != netip.MustParseAddr("fd00:2::1") ||
		d.IPRanges[netip.MustParsePrefix("10.244.0.0/16")] != netip.MustParsePrefix("10.244.128.0/17") {
		t.Fatalf("%+v", d)
	}
}

// A malformed address in a record is an error naming the key, never a
// silently zero field.
func TestMalformedRecordIsAnError(t *testing.T) {
	for _, c := range []struct {
		v    any
		json string
	}{
		{&store.Host{}, `{"name":"h1","underlay":"h1.example"}`},
		{&store.Pool{}, `{"subnet":"10.1.0.0/33"}`},
		{&store.Pool{}, `{"subnet":"10.1.0.0/16","gateway":"10.1.0.256"}`},
		{&store.Address{}, `{"ip":"10.1.0.7/16"}`},
		{&store.LogicalNetwork{}, `{"subnets":["10.1.0.0"]}`},
		{&store.LogicalNetwork{}, `{"subnets":["10.1.0.0/16"],"gateways":{"bogus":"10.1.0.1"}}`},
		{&store.LogicalNetwork{}, `{"subnets":["10.1.0.0/16"],"ipRanges":{"10.1.0.0/16":"10.1.0.0"}}`},
		{&store.VNIClaim{}, `{"pool":"x"}`},
		{&store.Network{}, `{"id":"n","ipv4":[{"pool":"10.1.0.0/16","gateway":"10.1.0.1"}]}`},
		{&store.Endpoint{}, `{"id":"e","ipv4":"10.1.0.7"}`},
		{&store.Endpoint{}, `{"id":"e","ports":[{"proto":"tcp","containerIP":"::g"}]}`},
		{&store.EndpointMeta{}, `{"endpoint":"e","ipv6":"fd00::/64"}`},
	} {
		err := (store.KV{Key: "some/key", Value: []byte(c.json)}).Decode(c.v)
		if err == nil || !strings.Contains(err.Error(), `"some/key"`) {
			t.Errorf("%T %s: got %v, want an error naming the key", c.v, c.json, err)
		}
	}
}

func TestNetworkSubnets(t *testing.T) {
	n := store.Network{
		IPv4: []store.Subnet{{Pool: netip.MustParsePrefix("10.1.0.0/16")}, {Pool: netip.MustParsePrefix("10.2.0.0/16")}},
		IPv6: []store.Subnet{{Pool: netip.MustParsePrefix("fd00::/64")}},
	}
	want := []netip.Prefix{netip.MustParsePrefix("10.1.0.0/16"), netip.MustParsePrefix("10.2.0.0/16"), netip.MustParsePrefix("fd00::/64")}
	if got := n.Pools(); !slices.Equal(got, want) {
		t.Fatalf("Pools() = %v", got)
	}
	subs := n.Subnets()
	subs[0].Pool = netip.Prefix{}
	if !n.IPv4[0].Pool.IsValid() {
		t.Fatal("Subnets() shares its backing array with the record")
	}
}

func TestParseIPAMKey(t *testing.T) {
	p := netip.MustParsePrefix("10.1.0.0/16")
	for key, want := range map[string]store.IPAMKey{
		store.PoolRefKey(p, "h1"):                                {Kind: store.KindRef, Host: "h1"},
		store.BlockKey(p, netip.MustParsePrefix("10.1.0.64/26")): {Kind: store.KindBlock, Block: netip.MustParsePrefix("10.1.0.64/26")},
		store.AddrKey(p, netip.MustParseAddr("10.1.0.7")):        {Kind: store.KindAddr, Addr: netip.MustParseAddr("10.1.0.7")},
	} {
		got, err := store.ParseIPAMKey(p, key)
		if err != nil || got != want {
			t.Errorf("%s: got %+v, %v; want %+v", key, got, err, want)
		}
	}
	for _, bad := range []string{
		"ipam/10.2.0.0-16/refs/h1",                 // another pool
		store.IPAMPrefix(p) + "refs/",              // no host
		store.IPAMPrefix(p) + "blocks/10.2.0.0-26", // outside the pool
		store.IPAMPrefix(p) + "blocks/junk",
		store.IPAMPrefix(p) + "addrs/zz",
		store.IPAMPrefix(p) + "addrs/0a020007", // 10.2.0.7: outside the pool
		store.IPAMPrefix(p) + "other/x",
		store.IPAMPrefix(p) + "refs/h1/extra",
	} {
		if k, err := store.ParseIPAMKey(p, bad); err == nil {
			t.Errorf("%s parsed as %+v", bad, k)
		}
	}
}
