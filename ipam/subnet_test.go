package ipam

import (
	"context"
	"errors"
	"net/netip"
	"testing"

	"github.com/docker/go-plugins-helpers/ipam"
	"github.com/podnet/podnet/netspec"
)

// TestRequestPoolRefusesUnsafeSubnets: reserved ranges, a network of the
// host's interfaces and a foreign address space are refused before
// anything is written to etcd; --ipam-opt parent=IFACE lifts only that
// interface's refusal.
func TestRequestPoolRefusesUnsafeSubnets(t *testing.T) {
	c := newCluster(t)
	lan := []netspec.HostNetwork{
		{Iface: "eth0", Addr: netip.MustParsePrefix("10.253.0.11/24")},
		{Iface: "docker0", Addr: netip.MustParsePrefix("172.17.0.1/16")},
	}
	m := c.host("h1", func(cfg *Config) {
		cfg.HostNetworks = func() ([]netspec.HostNetwork, error) { return lan, nil }
	})
	for _, tc := range []struct {
		req  ipam.RequestPoolRequest
		want string
	}{
		{ipam.RequestPoolRequest{Pool: "127.0.0.0/24"}, "loopback"},
		{ipam.RequestPoolRequest{Pool: "224.0.0.0/24"}, "multicast"},
		{ipam.RequestPoolRequest{Pool: "169.254.0.0/16"}, "link-local"},
		{ipam.RequestPoolRequest{Pool: "0.0.0.0/16"}, "unspecified"},
		{ipam.RequestPoolRequest{Pool: "255.255.255.0/24"}, "broadcast"},
		{ipam.RequestPoolRequest{Pool: "fe80::/64", V6: true}, "link-local"},
		{ipam.RequestPoolRequest{Pool: "ff05::/64", V6: true}, "multicast"},
		{ipam.RequestPoolRequest{Pool: "10.253.0.0/24"}, "interface eth0"},
		{ipam.RequestPoolRequest{Pool: "10.253.0.0/16"}, "interface eth0"},
		{ipam.RequestPoolRequest{Pool: "172.17.1.0/24"}, "interface docker0"},
		{ipam.RequestPoolRequest{Pool: "10.253.0.0/24", Options: map[string]string{"parent": "eth1"}}, "interface eth0"},
		{ipam.RequestPoolRequest{Pool: "10.253.0.0/24", Options: map[string]string{"parent": "../x"}}, "interface name"},
	} {
		_, err := m.RequestPool(context.Background(), &tc.req)
		wantErr(t, err, tc.want)
		if tc.want != "interface name" && !errors.Is(err, netspec.ErrUnsafeSubnet) {
			t.Errorf("%s: %v is no ErrUnsafeSubnet", tc.req.Pool, err)
		}
	}
	for _, as := range []string{"../../x", "default", "podnet-local/../x"} {
		_, err := m.RequestPool(context.Background(), &ipam.RequestPoolRequest{AddressSpace: as, Pool: "10.1.0.0/24"})
		wantErr(t, err, "unknown address space")
	}
	if keys := c.keys(""); len(keys) != 0 {
		t.Fatalf("refused requests left keys: %v", keys)
	}
	// Either of podnet's spaces is fine, and so is the LAN subnet when the
	// request names its interface as the parent (macvlan).
	for _, as := range []string{netspec.LocalAddressSpace, netspec.GlobalAddressSpace, ""} {
		if _, err := m.RequestPool(context.Background(), &ipam.RequestPoolRequest{AddressSpace: as, Pool: "10.1.0.0/24"}); err != nil {
			t.Fatalf("address space %q: %v", as, err)
		}
		releasePool(t, m, "10.1.0.0/24")
	}
	if _, err := m.RequestPool(context.Background(), &ipam.RequestPoolRequest{Pool: "10.253.0.0/24",
		Options: map[string]string{"parent": "eth0"}}); err != nil {
		t.Fatalf("LAN subnet with parent=eth0: %v", err)
	}
}
