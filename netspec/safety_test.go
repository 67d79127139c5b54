package netspec

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
)

func TestCheckSafeRefusesReservedRanges(t *testing.T) {
	for _, tc := range []struct{ subnet, names string }{
		{"127.0.0.0/24", "loopback"},
		{"127.0.0.0/8", "loopback"},
		{"224.0.0.0/24", "multicast"},
		{"239.1.0.0/16", "multicast"},
		{"169.254.0.0/16", "link-local"},
		{"169.254.3.0/24", "link-local"},
		{"0.0.0.0/8", "unspecified"},
		{"0.0.0.0/24", "unspecified"},
		{"255.255.255.0/24", "broadcast"},
		{"240.0.0.0/4", "broadcast"},
		{"fe80::/64", "link-local"},
		{"ff02::/16", "multicast"},
		{"::/64", "unspecified"},
		{"::/127", "unspecified"},
		{"::ffff:10.0.0.0/104", "IPv4-mapped"},
		{"8.0.0.0/5", ""}, // fine: only reserved ranges are refused
	} {
		err := CheckSafe(netip.MustParsePrefix(tc.subnet), nil)
		if tc.names == "" {
			if err != nil {
				t.Errorf("%s refused: %v", tc.subnet, err)
			}
			continue
		}
		if !errors.Is(err, ErrUnsafeSubnet) || !strings.Contains(err.Error(), tc.names) {
			t.Errorf("%s: got %v, want an ErrUnsafeSubnet naming %s", tc.subnet, err, tc.names)
		}
	}
}

func TestCheckSafeRefusesHostNetworks(t *testing.T) {
	host := []HostNetwork{
		{Iface: "eth0", Addr: netip.MustParsePrefix("10.253.0.11/24")},
		{Iface: "docker0", Addr: netip.MustParsePrefix("172.17.0.1/16")},
		{Iface: "lo", Addr: netip.MustParsePrefix("10.96.0.10/32")},
		{Iface: "eth0", Addr: netip.MustParsePrefix("2001:db8:1::11/64")},
	}
	for _, tc := range []struct {
		subnet, iface string
	}{
		{"10.253.0.0/24", "eth0"},       // the LAN itself
		{"10.253.0.128/25", "eth0"},     // inside it
		{"10.252.0.0/15", "eth0"},       // around it
		{"172.17.5.0/24", "docker0"},    // Docker's bridge
		{"10.96.0.0/16", "lo"},          // an address on lo
		{"2001:db8:1::/64", "eth0"},     // IPv6 too
		{"10.254.0.0/24", ""},           // next to the LAN: fine
		{"2001:db8:2::/64", ""},         // fine
		{"192.168.100.0/24", ""},        // fine
		{"fd00:1234::/64", ""},          // fine
		{"10.253.1.0/24", ""},           // fine
		{"172.18.0.0/16", ""},           // fine
		{"10.96.1.0/24", ""},            // fine
		{"10.253.0.0/16", "eth0"},       // covers the LAN
		{"2001:db8:1:0:1::/80", "eth0"}, // inside the v6 LAN
	} {
		err := CheckSafe(netip.MustParsePrefix(tc.subnet), host)
		if tc.iface == "" {
			if err != nil {
				t.Errorf("%s refused: %v", tc.subnet, err)
			}
			continue
		}
		if !errors.Is(err, ErrUnsafeSubnet) || !strings.Contains(err.Error(), "interface "+tc.iface) {
			t.Errorf("%s: got %v, want an ErrUnsafeSubnet naming interface %s", tc.subnet, err, tc.iface)
		}
	}
}
