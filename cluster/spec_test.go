package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/podnet/podnet/admin"
	"github.com/podnet/podnet/internal/fault"
	"github.com/podnet/podnet/netspec"
	"github.com/podnet/podnet/store"
	"github.com/podnet/podnet/store/storetest"
)

// A definition no host could create is refused before anything is stored:
// every host's network sync would otherwise retry it forever. The error is
// the driver's own (what docker network create shows).
func TestCreateNetworkStoresNothingTheDriverWouldRefuse(t *testing.T) {
	st := storetest.New(t)
	m := New(st, &fakeIPAM{}, nil)
	ctx := context.Background()
	typo := admin.NetworkSpec{Name: "typo2", Mode: "vxlan", Subnets: []string{"10.71.0.0/16"},
		Options: map[string]string{"podnet.masqurade": "false"}}
	_, err := m.CreateNetwork(ctx, typo)
	if !errors.Is(err, fault.ErrInvalid) {
		t.Fatalf("got %v, want an input error", err)
	}
	_, driverErr := netspec.Validate(netspec.Spec{Options: map[string]string{"mode": "vxlan", "podnet.masqurade": "false"},
		Subnets: []netspec.Subnet{{Pool: netip.MustParsePrefix("10.71.0.0/16")}}}, nil)
	if driverErr == nil || err.Error() != driverErr.Error() {
		t.Fatalf("podnetctl says %q, the driver %q", err, driverErr)
	}
	if !strings.Contains(err.Error(), `unknown option "podnet.masqurade" (did you mean "podnet.masquerade"?`) {
		t.Fatalf("got %v", err)
	}
	for _, spec := range []admin.NetworkSpec{
		{Name: "mv", Mode: "macvlan", Subnets: []string{"10.71.0.0/16"}},
		{Name: "par", Mode: "vxlan", Subnets: []string{"10.71.0.0/16"}, Options: map[string]string{"parent": "eth0"}},
		{Name: "gw", Mode: "vxlan", Subnets: []string{"10.71.0.0/24"}, Gateways: map[string]string{"10.71.0.0/24": "10.71.0.255"}},
		{Name: "small", Mode: "vxlan", Subnets: []string{"10.71.0.0/31"}},
		{Name: "mtu", Mode: "vxlan", Subnets: []string{"10.71.0.0/16"}, Options: map[string]string{"com.docker.network.driver.mtu": "big"}},
		{Name: "both", Mode: "vxlan", Subnets: []string{"10.71.0.0/16", "10.71.1.0/24"}},
		{Name: "flags", Mode: "vxlan", Subnets: []string{"10.71.0.0/16"}, Options: map[string]string{"mode": "bridge"}},
		{Name: "mtus", Subnets: []string{"10.71.0.0/16"}, MTU: 1400, Options: map[string]string{"mtu": "1300"}},
		{Name: "gwparse", Subnets: []string{"10.71.0.0/16"}, Gateways: map[string]string{"10.71.0.0/16": "ten"}},
	} {
		if _, err := m.CreateNetwork(ctx, spec); !errors.Is(err, fault.ErrInvalid) {
			t.Errorf("%+v: got %v, want an input error", spec, err)
		}
	}
	if n, _ := st.Count(ctx, ""); n != 0 {
		kvs, _, _ := st.List(ctx, "")
		t.Fatalf("refused definitions left keys: %+v", kvs)
	}
}

// podnetctl's flags and Docker's option names are one input: --mtu and
// -o mtu agree, -o mode alone sets the mode, the definition keeps only the
// options every host must share.
func TestCreateNetworkFoldsFlagsIntoOptions(t *testing.T) {
	st := storetest.New(t)
	m := New(st, &fakeIPAM{}, nil)
	ctx := context.Background()
	got, err := m.CreateNetwork(ctx, admin.NetworkSpec{Name: "pods", Subnets: []string{"10.72.0.0/16", "fd72::/64"}, MTU: 1400, VNI: 7000,
		Gateways: map[string]string{"10.72.0.0/16": "10.72.0.9"}, IPRanges: map[string]string{"10.72.0.0/16": "10.72.128.0/17"},
		Options: map[string]string{"mode": "vxlan", "mtu": "1400", "podnet.direct-routing": "true"}})
	if err != nil {
		t.Fatal(err)
	}
	if got.Mode != "vxlan" || got.MTU != 1400 || got.VNI != 7000 || !got.IPv6 ||
		len(got.Options) != 1 || got.Options["podnet.direct-routing"] != "true" ||
		got.Gateways[netip.MustParsePrefix("10.72.0.0/16")] != netip.MustParseAddr("10.72.0.9") ||
		got.IPRanges[netip.MustParsePrefix("10.72.0.0/16")] != netip.MustParsePrefix("10.72.128.0/17") {
		t.Fatalf("%+v", got)
	}
	var def store.LogicalNetwork
	if _, err := st.Get(ctx, store.LNetKey(netip.MustParsePrefix("10.72.0.0/16")), &def); err != nil || def.Name != "pods" || def.VNI != 7000 {
		t.Fatalf("stored %v %+v", err, def)
	}
}

// The cluster view of a definition is the record's JSON plus where it is,
// as it was before the wire types moved to package admin.
func TestNetworkViewJSON(t *testing.T) {
	rec := `{"name":"pods","subnets":["10.244.0.0/16","fd00:2::/64"],"mode":"vxlan","mtu":1450,"vni":4096,"options":{"podnet.direct-routing":"true"},"gateways":{"10.244.0.0/16":"10.244.0.1","fd00:2::/64":"fd00:2::1"},"ipRanges":{"10.244.0.0/16":"10.244.128.0/17"},"internal":true,"ipv6":true,"deleting":true,"created":"2025-03-04T05:06:07Z"}`
	var d store.LogicalNetwork
	if err := json.Unmarshal([]byte(rec), &d); err != nil {
		t.Fatal(err)
	}
	v := NetworkView(d)
	v.Hosts["h1"] = "n1"
	v.Missing = []string{"h2"}
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	want := strings.TrimSuffix(rec, "}") + `,"hosts":{"h1":"n1"},"missing":["h2"]}`
	if string(b) != want {
		t.Fatalf("got  %s\nwant %s", b, want)
	}
}
