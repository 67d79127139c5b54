package ipam

import (
	"context"
	"net/netip"
	"strings"
	"testing"

	"github.com/docker/go-plugins-helpers/ipam"
	"github.com/podnet/podnet/netspec"
	"github.com/podnet/podnet/store"
	"github.com/podnet/podnet/store/storetest"
)

// No pool may overlap the service CIDR: a given subnet is refused naming
// it, an auto pool skips it.
func TestPoolsAvoidServiceCIDR(t *testing.T) {
	c := newCluster(t)
	m := c.host("h1", func(cfg *Config) {
		cfg.ServiceCIDR = netip.MustParsePrefix("10.96.0.0/16")
		cfg.AutoPools = []AutoPool{{Base: netip.MustParsePrefix("10.96.0.0/15"), Bits: 24}}
	})
	for _, subnet := range []string{"10.96.5.0/24", "10.0.0.0/8"} {
		_, err := m.RequestPool(context.Background(), &ipam.RequestPoolRequest{AddressSpace: netspec.LocalAddressSpace, Pool: subnet})
		if err == nil || !strings.Contains(err.Error(), "overlaps the service CIDR 10.96.0.0/16") {
			t.Fatalf("%s: %v", subnet, err)
		}
	}
	if k := c.keys("pools/"); len(k) != 0 {
		t.Fatalf("refused pools recorded: %v", k)
	}
	if got := requestPool(t, m, "", ""); got != "10.97.0.0/24" {
		t.Fatalf("auto pool %s: want the first /24 after the service CIDR", got)
	}
}

// No pool may overlap a LoadBalancer pool either: a given subnet is
// refused naming it, an auto pool skips it.
func TestPoolsAvoidLoadBalancerPools(t *testing.T) {
	c := newCluster(t)
	m := c.host("h1", func(cfg *Config) {
		cfg.AutoPools = []AutoPool{{Base: netip.MustParsePrefix("10.80.0.0/16"), Bits: 24}}
	})
	storetest.Put(t, c.raw, store.LBPoolKey("lan"), store.LBPool{Name: "lan", Mode: store.LBModeL2,
		CIDRs: []netip.Prefix{netip.MustParsePrefix("10.80.0.240/28")}})
	_, err := m.RequestPool(context.Background(), &ipam.RequestPoolRequest{AddressSpace: netspec.LocalAddressSpace, Pool: "10.80.0.0/24"})
	if err == nil || !strings.Contains(err.Error(), "overlaps 10.80.0.240/28 of load-balancer pool lan") {
		t.Fatalf("%v", err)
	}
	if got := requestPool(t, m, "", ""); got != "10.80.1.0/24" {
		t.Fatalf("auto pool %s: want the first /24 clear of the load-balancer pool", got)
	}
}
