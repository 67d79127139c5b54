package ipam

import (
	"context"
	"github.com/podnet/podnet/netspec"
	"net/netip"
	"strings"
	"testing"

	"github.com/docker/go-plugins-helpers/ipam"
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
