package cluster

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/podnet/podnet/admin"
	"github.com/podnet/podnet/internal/fault"
	"github.com/podnet/podnet/netspec"
	"github.com/podnet/podnet/store/storetest"
)

func TestCreateNetworkRefusesUnsafeSubnets(t *testing.T) {
	st := storetest.New(t)
	m := New(st, &fakeIPAM{}, nil)
	m.SetHostNetworks("h1", func() ([]netspec.HostNetwork, error) {
		return []netspec.HostNetwork{{Iface: "eth0", Addr: netip.MustParsePrefix("10.253.0.11/24")}}, nil
	})
	ctx := context.Background()
	for subnet, want := range map[string]string{
		"127.0.0.0/24":  "loopback",
		"224.0.0.0/24":  "multicast",
		"fe80::/64":     "link-local",
		"10.253.0.0/24": "interface eth0",
	} {
		_, err := m.CreateNetwork(ctx, admin.NetworkSpec{Name: "n", Mode: "vxlan", Subnets: []string{subnet}})
		if !errors.Is(err, fault.ErrInvalid) || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: got %v, want an input error naming %s", subnet, err, want)
		}
	}
	if defs, err := m.definitions(ctx); err != nil || len(defs) != 0 {
		t.Fatalf("refused definitions were recorded: %v %v", defs, err)
	}
}

// TestCreateLANNetworkOnItsParentsSubnet: a macvlan/ipvlan definition may
// use the LAN subnet of its parent on this host (the per-host parent when
// one is given), and only that one; its parents are recorded for every
// host's network sync.
func TestCreateLANNetworkOnItsParentsSubnet(t *testing.T) {
	st := storetest.New(t)
	m := New(st, &fakeIPAM{}, nil)
	m.SetHostNetworks("h1", func() ([]netspec.HostNetwork, error) {
		return []netspec.HostNetwork{{Iface: "eth0", Addr: netip.MustParsePrefix("10.253.0.11/24")},
			{Iface: "eth1", Addr: netip.MustParsePrefix("10.254.0.11/24")}}, nil
	})
	ctx := context.Background()
	for _, tc := range []struct {
		spec admin.NetworkSpec
		want string
	}{
		{admin.NetworkSpec{Name: "a", Mode: "macvlan", Parent: "eth1", Subnets: []string{"10.253.0.0/24"}}, "interface eth0"},
		{admin.NetworkSpec{Name: "a", Mode: "bridge", Subnets: []string{"10.253.0.0/24"}}, "interface eth0"},
		{admin.NetworkSpec{Name: "a", Mode: "macvlan", Subnets: []string{"10.253.0.0/24"}}, "mode macvlan needs --parent IFACE"},
		{admin.NetworkSpec{Name: "a", Mode: "ipvlan", Parent: "eth0.9999", Subnets: []string{"10.9.0.0/24"}}, "VLAN id 9999 is out of range"},
		{admin.NetworkSpec{Name: "a", Mode: "macvlan", Parent: "eth0", Parents: map[string]string{"h2": "en/s5"}, Subnets: []string{"10.9.0.0/24"}}, "--host-parent h2=en/s5"},
		{admin.NetworkSpec{Name: "a", Mode: "vxlan", Parents: map[string]string{"h2": "ens5"}, Subnets: []string{"10.9.0.0/24"}}, "--host-parent applies to modes macvlan, ipvlan only"},
		{admin.NetworkSpec{Name: "a", Mode: "macvlan", Parent: "eth0", Options: map[string]string{"parent": "eth1"}, Subnets: []string{"10.9.0.0/24"}}, "--parent eth0 and -o parent=eth1 disagree"},
		{admin.NetworkSpec{Name: "a", Mode: "macvlan", Parent: "eth0", Options: map[string]string{"macvlan_mode": "loud"}, Subnets: []string{"10.9.0.0/24"}}, `option macvlan_mode="loud" is unknown: use one of bridge, private, vepa, passthru`},
	} {
		_, err := m.CreateNetwork(ctx, tc.spec)
		if !errors.Is(err, fault.ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: got %v, want an input error saying %q", tc.spec, err, tc.want)
		}
	}
	got, err := m.CreateNetwork(ctx, admin.NetworkSpec{Name: "lan", Mode: "macvlan", Parent: "eth1",
		Parents: map[string]string{"h1": "eth0", "h3": "ens5"}, Subnets: []string{"10.253.0.0/24"}})
	if err != nil {
		t.Fatalf("this host's parent is eth0: its LAN subnet is fine: %v", err)
	}
	if got.Options["parent"] != "eth1" || got.Parents["h1"] != "eth0" || got.Options["macvlan_mode"] != "bridge" ||
		got.Options["podnet.host-access"] != "false" {
		t.Fatalf("definition: %+v", got)
	}
	if _, err := m.CreateNetwork(ctx, admin.NetworkSpec{Name: "lan2", Mode: "ipvlan", Parent: "eth1", Subnets: []string{"10.254.0.0/25"}}); err != nil {
		t.Fatalf("eth1's own subnet with --parent eth1: %v", err)
	}
}
