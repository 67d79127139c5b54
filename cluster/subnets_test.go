package cluster

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/podnet/podnet/admin"
	"github.com/podnet/podnet/netspec"
	"github.com/podnet/podnet/store/storetest"
)

func TestCreateNetworkRefusesUnsafeSubnets(t *testing.T) {
	st := storetest.New(t)
	m := New(st, &fakeIPAM{}, nil)
	m.SetHostNetworks(func() ([]netspec.HostNetwork, error) {
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
		var ie InputError
		if !errors.As(err, &ie) || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: got %v, want an input error naming %s", subnet, err, want)
		}
	}
	if defs, err := m.definitions(ctx); err != nil || len(defs) != 0 {
		t.Fatalf("refused definitions were recorded: %v %v", defs, err)
	}
}
