package main

import (
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/podnet/podnet/store"
)

func TestMetricsAddrValidated(t *testing.T) {
	for addr, ok := range map[string]bool{
		"127.0.0.1:9477": true, "off": true, "[::1]:9477": true, "0.0.0.0:9477": true,
		"9477": false, "localhost": false, "metrics.example:9477": false, "127.0.0.1:0": false,
	} {
		cfg := defaultConfig()
		cfg.HostName = "h1"
		cfg.MetricsAddr = addr
		err := cfg.validate()
		if (err == nil) != ok {
			t.Errorf("--metrics-addr %q: validate() = %v, want ok=%v", addr, err, ok)
		}
		if err != nil && !strings.Contains(err.Error(), "--metrics-addr") {
			t.Errorf("--metrics-addr %q: error %q does not name the flag", addr, err)
		}
	}
}

func TestNetworkPools(t *testing.T) {
	nets := []store.Network{
		{IPv4: []store.Subnet{{Pool: netip.MustParsePrefix("10.1.0.0/24")}}, IPv6: []store.Subnet{{Pool: netip.MustParsePrefix("fd00:1::/64")}}},
		{IPv4: []store.Subnet{{Pool: netip.MustParsePrefix("10.2.0.0/16")}}},
	}
	want := []netip.Prefix{netip.MustParsePrefix("10.1.0.0/24"), netip.MustParsePrefix("fd00:1::/64"), netip.MustParsePrefix("10.2.0.0/16")}
	if got := networkPools(nets); !slices.Equal(got, want) {
		t.Errorf("networkPools = %v, want %v", got, want)
	}
}
