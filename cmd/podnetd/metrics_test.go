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

// TestDNSAddr: --dns-addr is parsed once, by validate: off, the service
// CIDR's .10 by default, or an address; anything else is refused naming
// the flag.
func TestDNSAddr(t *testing.T) {
	for flag, want := range map[string]string{"off": "", "": "10.96.0.10", "10.96.0.53": "10.96.0.53", "bogus": "error"} {
		cfg := defaultConfig()
		cfg.HostName, cfg.DNSAddr = "h1", flag
		err := cfg.validate()
		if want == "error" {
			if err == nil || !strings.Contains(err.Error(), "--dns-addr") {
				t.Errorf("--dns-addr %q: %v", flag, err)
			}
			continue
		}
		a, on := cfg.clusterDNS()
		if err != nil || on != (want != "") || (on && a.String() != want) {
			t.Errorf("--dns-addr %q: %v %v %v, want %q", flag, err, a, on, want)
		}
	}
}
