package netspec

import (
	"errors"
	"maps"
	"net/netip"
	"strings"
	"testing"

	"github.com/podnet/podnet/internal/fault"
)

var pfx = netip.MustParsePrefix

func sub(p string) Subnet { return Subnet{Pool: pfx(p)} }

func TestValidateDefaults(t *testing.T) {
	n, err := Validate(Spec{Subnets: []Subnet{{Pool: pfx("10.1.2.3/16"), Gateway: netip.MustParseAddr("10.1.0.1")}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if n.Mode != ModeBridge || !n.Masquerade || n.DirectRouting || n.MTU != 0 || n.VNI != 0 || n.Raw == nil {
		t.Fatalf("defaults: %+v", n)
	}
	if n.Subnets[0].Pool != pfx("10.1.0.0/16") {
		t.Fatalf("pool not masked: %v", n.Subnets[0].Pool)
	}
}

func TestValidateTypedOptions(t *testing.T) {
	raw := map[string]string{"mode": " VXLAN", "mtu": "1400", OptDockerMTU: "1400", OptVNI: "5000",
		OptDirect: "TRUE", OptMasquerade: "0"}
	n, err := Validate(Spec{Options: raw, Subnets: []Subnet{sub("10.1.0.0/16"), sub("fd00:1::/64")}, Internal: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if n.Mode != ModeVXLAN || n.MTU != 1400 || n.VNI != 5000 || !n.DirectRouting || n.Masquerade || !n.Internal {
		t.Fatalf("%+v", n)
	}
	if !maps.Equal(n.Raw, raw) {
		t.Fatalf("raw options not kept verbatim: %v", n.Raw)
	}
	// Only what hosts must agree on is shared; mode, MTU and VNI have fields.
	if want := map[string]string{OptDirect: "TRUE", OptMasquerade: "0"}; !maps.Equal(n.Shared(), want) {
		t.Fatalf("shared %v, want %v", n.Shared(), want)
	}
	if s := (Options{Raw: map[string]string{"mtu": "1"}}).Shared(); s != nil {
		t.Fatalf("shared %v, want nil", s)
	}
}

func TestValidateRefuses(t *testing.T) {
	v4 := []Subnet{sub("10.1.0.0/16")}
	cases := []struct {
		name      string
		spec      Spec
		available []string
		want      string
		kind      error
	}{
		{"unknown mode", Spec{Options: map[string]string{"mode": "weird"}, Subnets: v4}, nil, `unknown mode "weird": use one of bridge, vxlan, macvlan, ipvlan, none`, fault.ErrInvalid},
		{"known mode not available", Spec{Options: map[string]string{"mode": "macvlan"}, Subnets: v4}, []string{"bridge", "vxlan", "none"}, `mode "macvlan" is not available in this podnetd (available: bridge, vxlan, none)`, ErrModeUnavailable},
		{"mode not available here", Spec{Options: map[string]string{"mode": "vxlan"}, Subnets: v4}, []string{"bridge", "none"}, `mode "vxlan" is not available in this podnetd (available: bridge, none)`, ErrModeUnavailable},
		{"typo", Spec{Options: map[string]string{"podnet.masqurade": "false"}, Subnets: v4}, nil, `unknown option "podnet.masqurade" (did you mean "podnet.masquerade"? podnet understands: com.docker.network.driver.mtu, `, fault.ErrInvalid},
		{"unknown key", Spec{Options: map[string]string{"podnet.bogus": "1"}, Subnets: v4}, nil, `unknown option "podnet.bogus" (podnet understands: `, fault.ErrInvalid},
		{"option of another mode", Spec{Options: map[string]string{"parent": "eth0"}, Subnets: v4}, nil, `option "parent" does not apply to mode bridge: it is for macvlan, ipvlan only`, fault.ErrInvalid},
		{"vni on bridge", Spec{Options: map[string]string{OptVNI: "9"}, Subnets: v4}, nil, "it is for vxlan only", fault.ErrInvalid},
		{"mtu too small", Spec{Options: map[string]string{"mtu": "50"}, Subnets: v4}, nil, "mtu 50 is out of range (option mtu=50): an MTU must be between 68 and 65535", fault.ErrInvalid},
		{"mtu too large", Spec{Options: map[string]string{OptDockerMTU: "99999"}, Subnets: v4}, nil, "out of range", fault.ErrInvalid},
		{"mtu not a number", Spec{Options: map[string]string{"mtu": "big"}, Subnets: v4}, nil, `option mtu="big" is not a number`, fault.ErrInvalid},
		{"mtu aliases disagree", Spec{Options: map[string]string{"mtu": "1400", OptDockerMTU: "1300"}, Subnets: v4}, nil, "options mtu=1400 and com.docker.network.driver.mtu=1300 disagree", fault.ErrInvalid},
		{"vni range", Spec{Options: map[string]string{"mode": "vxlan", OptVNI: "16777216"}, Subnets: v4}, nil, "a VNI is a number from 1 to 16777215", fault.ErrInvalid},
		{"bool", Spec{Options: map[string]string{OptMasquerade: "maybe"}, Subnets: v4}, nil, `option podnet.masquerade="maybe": want true or false`, fault.ErrInvalid},
		{"empty parent", Spec{Options: map[string]string{"mode": "macvlan", "parent": " "}, Subnets: v4}, []string{"macvlan"}, "option parent needs a value", fault.ErrInvalid},
		{"no subnet", Spec{}, nil, "network has no subnet", fault.ErrInvalid},
		{"whole space", Spec{Subnets: []Subnet{sub("0.0.0.0/0")}}, nil, "covers every IPv4 address", fault.ErrInvalid},
		{"too small", Spec{Subnets: []Subnet{sub("10.1.0.0/31")}}, nil, "subnet 10.1.0.0/31 is too small: podnet needs at least a /30 for IPv4", fault.ErrInvalid},
		{"too small v6", Spec{Subnets: []Subnet{sub("fd00::/127")}}, nil, "at least a /126 for IPv6", fault.ErrInvalid},
		{"mapped", Spec{Subnets: []Subnet{sub("::ffff:10.0.0.0/104")}}, nil, "IPv4-mapped", fault.ErrInvalid},
		{"invalid", Spec{Subnets: []Subnet{{}}}, nil, "invalid subnet", fault.ErrInvalid},
		{"gateway outside", Spec{Subnets: []Subnet{{Pool: pfx("10.1.0.0/16"), Gateway: netip.MustParseAddr("10.2.0.1")}}}, nil, "gateway 10.2.0.1 is outside subnet 10.1.0.0/16", fault.ErrInvalid},
		{"gateway is the network", Spec{Subnets: []Subnet{{Pool: pfx("10.1.0.0/24"), Gateway: netip.MustParseAddr("10.1.0.0")}}}, nil, "gateway 10.1.0.0 is the network address of subnet 10.1.0.0/24", fault.ErrInvalid},
		{"gateway is the broadcast", Spec{Subnets: []Subnet{{Pool: pfx("10.1.0.0/24"), Gateway: netip.MustParseAddr("10.1.0.255")}}}, nil, "the broadcast address", fault.ErrInvalid},
		{"gateway subnet-router", Spec{Subnets: []Subnet{{Pool: pfx("fd00::/64"), Gateway: netip.MustParseAddr("fd00::")}}}, nil, "subnet-router anycast", fault.ErrInvalid},
		{"gateway zone", Spec{Subnets: []Subnet{{Pool: pfx("fd00::/64"), Gateway: netip.MustParseAddr("fd00::1%eth0")}}}, nil, "zone", fault.ErrInvalid},
		{"range outside", Spec{Subnets: []Subnet{{Pool: pfx("10.1.0.0/24"), IPRange: pfx("10.2.0.0/25")}}}, nil, "ip-range 10.2.0.0/25 is outside subnet 10.1.0.0/24", fault.ErrInvalid},
		{"range larger", Spec{Subnets: []Subnet{{Pool: pfx("10.1.0.0/24"), IPRange: pfx("10.1.0.0/23")}}}, nil, "outside subnet", fault.ErrInvalid},
		{"subnets overlap", Spec{Subnets: []Subnet{sub("10.1.0.0/16"), sub("10.1.2.0/24")}}, nil, "subnets 10.1.0.0/16 and 10.1.2.0/24 of the network overlap", fault.ErrInvalid},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Validate(c.spec, c.available)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want an error containing %q", err, c.want)
			}
			if !errors.Is(err, c.kind) {
				t.Fatalf("%v is not %v", err, c.kind)
			}
			if strings.Contains(err.Error(), c.kind.Error()) {
				t.Fatalf("%q repeats its kind", err)
			}
		})
	}
}

func TestModeNoneNeedsNoSubnet(t *testing.T) {
	n, err := Validate(Spec{Options: map[string]string{"mode": "none"}}, nil)
	if err != nil || n.Mode != ModeNone {
		t.Fatalf("%v %+v", err, n)
	}
}

func TestIPRangeEqualToSubnetIsNoRestriction(t *testing.T) {
	n, err := Validate(Spec{Subnets: []Subnet{{Pool: pfx("10.1.0.0/24"), IPRange: pfx("10.1.0.0/24")}, {Pool: pfx("10.2.0.0/24"), IPRange: pfx("10.2.0.128/25")}}}, nil)
	if err != nil || n.Subnets[0].IPRange.IsValid() || n.Subnets[1].IPRange != pfx("10.2.0.128/25") {
		t.Fatalf("%v %+v", err, n.Subnets)
	}
}

func TestBoolAndRanges(t *testing.T) {
	opts := map[string]string{OptDirect: "true", OptMasquerade: "nope"}
	if b, err := Bool(opts, OptDirect, false); err != nil || !b {
		t.Fatal(b, err)
	}
	if b, err := Bool(opts, "absent", true); err != nil || !b {
		t.Fatal(b, err)
	}
	if _, err := Bool(opts, OptMasquerade, true); !errors.Is(err, fault.ErrInvalid) {
		t.Fatal(err)
	}
	for mtu, ok := range map[int]bool{67: false, 68: true, 1500: true, 65535: true, 65536: false} {
		if (CheckMTU(mtu) == nil) != ok {
			t.Errorf("CheckMTU(%d) = %v", mtu, CheckMTU(mtu))
		}
	}
	for vni, ok := range map[int]bool{0: false, 1: true, MaxVNI: true, MaxVNI + 1: false, -1: false} {
		if (CheckVNI(vni) == nil) != ok {
			t.Errorf("CheckVNI(%d) = %v", vni, CheckVNI(vni))
		}
	}
}

func TestReservedReason(t *testing.T) {
	p4, p6 := pfx("10.1.0.0/24"), pfx("fd00::/64")
	for _, c := range []struct {
		p    netip.Prefix
		a    string
		want string
	}{
		{p4, "10.1.0.0", "the network address"},
		{p4, "10.1.0.255", "the broadcast address"},
		{p4, "10.1.0.1", ""},
		{p4, "10.1.0.254", ""},
		{pfx("255.255.255.0/24"), "255.255.255.255", "the broadcast address"},
		{p6, "fd00::", "the subnet-router anycast address"},
		{p6, "fd00::ffff:ffff:ffff:ffff", ""},
	} {
		if got := ReservedReason(c.p, netip.MustParseAddr(c.a)); got != c.want {
			t.Errorf("%s in %s: %q, want %q", c.a, c.p, got, c.want)
		}
	}
}

func TestEveryOptionHasKnownModes(t *testing.T) {
	for k, o := range options {
		if len(o.modes) == 0 || o.set == nil {
			t.Errorf("option %s: modes %v, set %v", k, o.modes, o.set != nil)
		}
		for _, m := range o.modes {
			if !known(m) {
				t.Errorf("option %s names unknown mode %s", k, m)
			}
		}
	}
}
