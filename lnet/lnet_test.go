package lnet

import (
	"context"
	"net/netip"
	"strings"
	"sync"
	"testing"

	"github.com/podnet/podnet/store"
	"github.com/podnet/podnet/store/storetest"
)

var pool = netip.MustParsePrefix("10.244.0.0/16")

func TestClaimCreatesThenChecksAndInherits(t *testing.T) {
	st := storetest.New(t)
	ctx := context.Background()
	def, created, err := Claim(ctx, st, Request{Pool: pool, Subnets: []netip.Prefix{pool}, Mode: "vxlan",
		NeedVNI: true, DefaultMTU: 1450, Options: map[string]string{"podnet.direct-routing": "true"}})
	if err != nil || !created || def.VNI != FirstAutoVNI || def.MTU != 1450 {
		t.Fatalf("first claim: %v created=%v %+v", err, created, def)
	}
	// A second host leaving everything out inherits.
	got, created, err := Claim(ctx, st, Request{Pool: pool, Subnets: []netip.Prefix{pool}, Mode: "vxlan", NeedVNI: true, DefaultMTU: 1500})
	if err != nil || created || got.VNI != def.VNI || got.MTU != 1450 || got.Options["podnet.direct-routing"] != "true" {
		t.Fatalf("second claim: %v created=%v %+v", err, created, got)
	}
	for _, r := range []Request{
		{Mode: "bridge"},
		{Mode: "vxlan", MTU: 1400},
		{Mode: "vxlan", VNI: 7},
		{Mode: "vxlan", Options: map[string]string{"podnet.direct-routing": "false"}},
		{Mode: "vxlan", Subnets: []netip.Prefix{pool, netip.MustParsePrefix("10.245.0.0/16")}},
	} {
		r.Pool = pool
		_, _, err := Claim(ctx, st, r)
		if err == nil || !strings.Contains(err.Error(), "already defined in the cluster as mode vxlan, mtu 1450") {
			t.Fatalf("%+v: got %v", r, err)
		}
	}
}

func TestExplicitVNICollisionIsRefused(t *testing.T) {
	st := storetest.New(t)
	ctx := context.Background()
	if _, _, err := Claim(ctx, st, Request{Pool: pool, Mode: "vxlan", VNI: 5000, DefaultMTU: 1450}); err != nil {
		t.Fatal(err)
	}
	other := netip.MustParsePrefix("10.245.0.0/16")
	_, _, err := Claim(ctx, st, Request{Pool: other, Mode: "vxlan", VNI: 5000, DefaultMTU: 1450})
	if err == nil || !strings.Contains(err.Error(), "VNI 5000 is already used by the network on subnet 10.244.0.0/16") {
		t.Fatalf("got %v", err)
	}
	if n, _ := st.Count(ctx, store.LNetKey(other)); n != 0 {
		t.Fatal("a refused claim wrote a definition")
	}
}

func TestConcurrentClaimsGetDistinctVNIs(t *testing.T) {
	e := storetest.Start(t)
	ctx := context.Background()
	var mu sync.Mutex
	vnis := map[int]string{}
	var wg sync.WaitGroup
	for i := range 8 {
		st := e.Client(t, "")
		p := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(100 + i), 0, 0}), 16)
		wg.Add(1)
		go func() {
			defer wg.Done()
			def, _, err := Claim(ctx, st, Request{Pool: p, Mode: "vxlan", NeedVNI: true, DefaultMTU: 1450})
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			if other, dup := vnis[def.VNI]; dup {
				t.Errorf("VNI %d given to %s and %s", def.VNI, p, other)
			}
			vnis[def.VNI] = p.String()
		}()
	}
	wg.Wait()
	if len(vnis) != 8 {
		t.Fatalf("got %d VNIs", len(vnis))
	}
}

func TestReleaseOnlyWhenUnused(t *testing.T) {
	st := storetest.New(t)
	ctx := context.Background()
	def, _, err := Claim(ctx, st, Request{Pool: pool, Mode: "vxlan", NeedVNI: true, DefaultMTU: 1450})
	if err != nil {
		t.Fatal(err)
	}
	n := store.Network{ID: "n1", Host: "h1", IPv4: []store.Subnet{{Pool: pool}}}
	if err := st.Put(ctx, store.NetworkKey("h1", "n1"), n); err != nil {
		t.Fatal(err)
	}
	if err := Release(ctx, st, pool); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Get(ctx, store.LNetKey(pool), nil); err != nil {
		t.Fatal("definition released while a host still uses it")
	}
	if err := st.Delete(ctx, store.NetworkKey("h1", "n1")); err != nil {
		t.Fatal(err)
	}
	if err := Release(ctx, st, pool); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{store.LNetKey(pool), store.VNIKey(def.VNI)} {
		if n, _ := st.Count(ctx, k); n != 0 {
			t.Fatalf("%s survived the release", k)
		}
	}
	if err := Release(ctx, st, pool); err != nil {
		t.Fatalf("release of an absent definition: %v", err)
	}
}

func TestFirstPoolIsTheLowestSubnet(t *testing.T) {
	n := store.Network{IPv4: []store.Subnet{{Pool: pfx("10.42.0.0/24")}, {Pool: pfx("10.41.0.0/24")}}, IPv6: []store.Subnet{{Pool: pfx("fd00::/64")}}}
	if p := FirstPool(&n); p.String() != "10.41.0.0/24" {
		t.Fatalf("got %s", p)
	}
	if p := FirstPool(&store.Network{IPv6: []store.Subnet{{Pool: pfx("fd01::/64")}, {Pool: pfx("fd00::/64")}}}); p.String() != "fd00::/64" {
		t.Fatalf("got %s", p)
	}
}

var pfx = netip.MustParsePrefix

// Definitions are keyed the same way from a Docker network (FirstPool) and
// from podnetctl's subnet list (KeyPool): podnetctl used to take the first
// IPv6 subnet where hosts took the lowest.
func TestKeyPoolIsTheLowestOfTheFirstFamily(t *testing.T) {
	for _, c := range []struct {
		subs []netip.Prefix
		want string
	}{
		{[]netip.Prefix{pfx("fd00::/64"), pfx("10.2.0.0/16"), pfx("10.1.2.3/16")}, "10.1.0.0/16"},
		{[]netip.Prefix{pfx("fd01::/64"), pfx("fd00::/64")}, "fd00::/64"},
		{[]netip.Prefix{{}, pfx("10.9.0.0/24")}, "10.9.0.0/24"},
	} {
		if got := KeyPool(c.subs); got.String() != c.want {
			t.Errorf("KeyPool(%v) = %s, want %s", c.subs, got, c.want)
		}
	}
	if KeyPool(nil).IsValid() {
		t.Error("KeyPool(nil) is valid")
	}
}

// TestClaimRecordsDefaults: a new definition records the defaults of the
// options its request left out, so a later host giving a default explicitly
// agrees with it, one giving another value is refused, and an MTU left out
// stays 0 (each host's own, e.g. a macvlan parent's).
func TestClaimRecordsDefaults(t *testing.T) {
	st := storetest.New(t)
	ctx := context.Background()
	defaults := map[string]string{"macvlan_mode": "bridge", "podnet.host-access": "false"}
	def, _, err := Claim(ctx, st, Request{Pool: pool, Subnets: []netip.Prefix{pool}, Mode: "macvlan", Defaults: defaults})
	if err != nil || def.Options["macvlan_mode"] != "bridge" || def.MTU != 0 {
		t.Fatalf("first claim: %v %+v", err, def)
	}
	if _, _, err := Claim(ctx, st, Request{Pool: pool, Mode: "macvlan", Options: map[string]string{"macvlan_mode": "bridge"}, Defaults: defaults}); err != nil {
		t.Fatalf("the default given explicitly: %v", err)
	}
	_, _, err = Claim(ctx, st, Request{Pool: pool, Mode: "macvlan", Options: map[string]string{"podnet.host-access": "true"}, Defaults: defaults})
	if err == nil || !strings.Contains(err.Error(), "podnet.host-access=true") {
		t.Fatalf("another value: %v", err)
	}
	_, _, err = Claim(ctx, st, Request{Pool: pool, Mode: "ipvlan"})
	if err == nil || !strings.Contains(err.Error(), "already defined in the cluster as mode macvlan") {
		t.Fatalf("another mode: %v", err)
	}
}
