package ipam

import (
	"net/netip"
	"testing"

	"github.com/docker/go-plugins-helpers/ipam"
)

// FuzzRequestPool feeds RequestPool's strings (--subnet, --ip-range) to
// the parser: it must never panic, must refuse what is not a CIDR, and
// whatever it accepts must be canonical, of the asked family, with the
// range inside the subnet.
func FuzzRequestPool(f *testing.F) {
	for _, s := range [][2]string{
		{"10.1.0.0/16", ""}, {"10.1.2.3/16", "10.1.2.0/24"}, {"", ""}, {"", "10.1.0.0/24"},
		{"fd00::/64", "fd00::/80"}, {"10.1.0.0/33", ""}, {"::ffff:10.0.0.0/104", ""}, {"0.0.0.0/0", ""},
		{"10.1.0.0/16", "10.2.0.0/24"}, {"fe80::%eth0/64", ""}, {" 10.1.0.0/16", ""}, {"10.1.0.0/16", "10.1.0.0/16"},
	} {
		f.Add(s[0], s[1], false)
		f.Add(s[0], s[1], true)
	}
	f.Fuzz(func(t *testing.T, pool, subPool string, v6 bool) {
		req, err := parsePoolRequest(&ipam.RequestPoolRequest{Pool: pool, SubPool: subPool, V6: v6})
		if _, perr := netip.ParsePrefix(pool); pool != "" && perr != nil && err == nil {
			t.Fatalf("garbage subnet %q accepted", pool)
		}
		if _, perr := netip.ParsePrefix(subPool); subPool != "" && perr != nil && err == nil {
			t.Fatalf("garbage ip-range %q accepted", subPool)
		}
		if err != nil {
			return
		}
		if pool == "" {
			if req.subnet.IsValid() || subPool != "" {
				t.Fatalf("auto request %q/%q parsed as %+v", pool, subPool, req)
			}
			return
		}
		s := req.subnet
		if !s.IsValid() || s != s.Masked() || s.Addr().Is6() != v6 || req.fam != familyOf(v6) || s.Addr().Is4In6() || s.Bits() == 0 {
			t.Fatalf("subnet %q accepted as %s (v6=%v)", pool, s, v6)
		}
		if r := req.ipRange; r.IsValid() && (r != r.Masked() || r.Bits() < s.Bits() || !s.Contains(r.Addr()) || r == s) {
			t.Fatalf("ip-range %q accepted as %s for subnet %s", subPool, r, s)
		}
	})
}

// FuzzRequestAddress feeds RequestAddress's Address string to the parser:
// no panic, garbage refused, and an accepted address lies in the pool.
func FuzzRequestAddress(f *testing.F) {
	for _, s := range []string{"10.1.0.5", "10.1.0.5/16", "10.2.0.5", "", "ten", "fd00::5", "fd00::5%eth0",
		"::ffff:10.1.0.5", "10.1.0.256", "10.1.255.255"} {
		f.Add(s)
	}
	pools := []netip.Prefix{netip.MustParsePrefix("10.1.0.0/16"), netip.MustParsePrefix("fd00::/64")}
	f.Fuzz(func(t *testing.T, s string) {
		for _, pool := range pools {
			a, err := parseAddress(pool, s)
			_, e1 := netip.ParseAddr(s)
			_, e2 := netip.ParsePrefix(s)
			if e1 != nil && e2 != nil && err == nil {
				t.Fatalf("garbage address %q accepted", s)
			}
			if err == nil && (!pool.Contains(a) || a.Zone() != "") {
				t.Fatalf("%q accepted as %s outside pool %s", s, a, pool)
			}
		}
		// Pool IDs come from Docker too.
		if p, err := parsePoolID(s); err == nil && (p != p.Masked() || p.String() != s) {
			t.Fatalf("pool ID %q accepted as %s", s, p)
		}
	})
}

func TestAddressArithmetic(t *testing.T) {
	p := netip.MustParsePrefix("10.1.0.0/16")
	if got := nthSubnet(p, 26, 5); got.String() != "10.1.1.64/26" {
		t.Fatalf("nthSubnet %s", got)
	}
	if got := subnetIndex(p, 26, netip.MustParseAddr("10.1.1.100")); got != 5 {
		t.Fatalf("subnetIndex %d", got)
	}
	if got := lastAddr(p); got.String() != "10.1.255.255" {
		t.Fatalf("lastAddr %s", got)
	}
	if got := lastAddr(netip.MustParsePrefix("255.255.255.192/26")); got.String() != "255.255.255.255" {
		t.Fatalf("lastAddr %s", got)
	}
	v6 := netip.MustParsePrefix("fd00::/48")
	if got := nthSubnet(v6, 64, 0x1234); got.String() != "fd00:0:0:1234::/64" {
		t.Fatalf("nthSubnet v6 %s", got)
	}
	if got := lastAddr(netip.MustParsePrefix("fd00::/120")); got.String() != "fd00::ff" {
		t.Fatalf("lastAddr v6 %s", got)
	}
	if got := lastAddr(netip.MustParsePrefix("::/0")); got.String() != "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff" {
		t.Fatalf("lastAddr ::/0 %s", got)
	}
	if got := usableCount(p, netip.MustParsePrefix("10.1.0.0/29")).String(); got != "7" {
		t.Fatalf("usable %s", got)
	}
	if got := usableCount(netip.MustParsePrefix("fd00::/64"), netip.MustParsePrefix("fd00::/64")).String(); got != "18446744073709551615" {
		t.Fatalf("usable v6 %s", got)
	}
}

func TestBlockSetNextWrapsAround(t *testing.T) {
	pool := netip.MustParsePrefix("10.1.0.0/16")
	var s blockSet
	for _, c := range []string{"10.1.0.64/26", "10.1.0.0/26"} {
		s = s.insert(newBlock(netip.MustParsePrefix(c), pool, pool))
	}
	if s[0].cidr.String() != "10.1.0.0/26" {
		t.Fatal("blocks not sorted")
	}
	a, _, _ := s.next(netip.Addr{})
	if a.String() != "10.1.0.1" {
		t.Fatalf("first address %s, want 10.1.0.1 (10.1.0.0 is the network address)", a)
	}
	a, _, _ = s.next(netip.MustParseAddr("10.1.0.63"))
	if a.String() != "10.1.0.64" {
		t.Fatalf("after .63: %s", a)
	}
	a, _, _ = s.next(netip.MustParseAddr("10.1.0.127"))
	if a.String() != "10.1.0.1" {
		t.Fatalf("wrap: %s", a)
	}
	a, _, _ = s.next(netip.MustParseAddr("10.1.7.7")) // past every block
	if a.String() != "10.1.0.1" {
		t.Fatalf("past the end: %s", a)
	}
	for i := range 128 {
		if a := s[0].addr(i); i != 77 {
			s.find(a).markUsed(a)
		}
	}
	a, b, ok := s.next(netip.MustParseAddr("10.1.0.100"))
	if !ok || a.String() != "10.1.0.77" || b != s[1] {
		t.Fatalf("only free address: %s %v", a, ok)
	}
	s[1].markUsed(a)
	if _, _, ok := s.next(a); ok {
		t.Fatal("full blocks report a free address")
	}
	rng := netip.MustParsePrefix("10.1.0.8/30")
	limited := newBlock(netip.MustParsePrefix("10.1.0.0/26"), pool, rng)
	if limited.free() != 4 {
		t.Fatalf("block limited to %s has %d free addresses, want 4", rng, limited.free())
	}
}
