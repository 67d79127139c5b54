package netspec

import (
	"errors"
	"maps"
	"net/netip"
	"strings"
	"testing"

	"github.com/podnet/podnet/internal/fault"
)

func TestLANOptionValidation(t *testing.T) {
	for _, tc := range []struct {
		mode string
		opts map[string]string
		want string
	}{
		{ModeMacvlan, map[string]string{"parent": "eth0"}, ""},
		{ModeMacvlan, map[string]string{"parent": "eth0.100", "macvlan_mode": "vepa"}, ""},
		{ModeIpvlan, map[string]string{"parent": "bond0", "ipvlan_mode": "l3s", "ipvlan_flag": "private"}, ""},
		{ModeIpvlan, map[string]string{}, ""},
		{ModeMacvlan, map[string]string{"parent": "averyveryverylongname"}, "at most 15 characters"},
		{ModeMacvlan, map[string]string{"parent": "eth0.99999"}, "VLAN id 99999 is out of range"},
		{ModeIpvlan, map[string]string{"ipvlan_flag": "vepa", "podnet.host-access": "true"}, "host access needs ipvlan_flag=bridge"},
	} {
		raw := maps.Clone(tc.opts)
		raw[OptMode] = tc.mode
		_, err := CheckOptions(raw, false, nil)
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%s %v: got %v, want %q", tc.mode, tc.opts, err, tc.want)
		}
	}
	if base, vid, err := ParseParent("eth0.100"); base != "eth0" || vid != 100 || err != nil {
		t.Fatalf("ParseParent: %s %d %v", base, vid, err)
	}
}

// TestLANOptionsRefused: the macvlan/ipvlan rules, with the words both
// docker network create (the driver) and podnetctl network create show.
func TestLANOptionsRefused(t *testing.T) {
	v4 := []Subnet{sub("10.1.0.0/16")}
	for _, tc := range []struct {
		opts     map[string]string
		internal bool
		want     string
	}{
		{map[string]string{"mode": "macvlan", "parent": "lan0.4095"}, false, "VLAN id 4095 is out of range 1-4094"},
		{map[string]string{"mode": "macvlan", "parent": "lan0.0"}, false, "VLAN id 0 is out of range"},
		{map[string]string{"mode": "macvlan", "parent": ""}, false, "option parent needs a value"},
		{map[string]string{"mode": "macvlan", "parent": "a/b"}, false, `parent "a/b": interface names contain no '/'`},
		{map[string]string{"mode": "macvlan", "macvlan_mode": "nope"}, false, `macvlan_mode="nope" is unknown: use one of bridge, private, vepa, passthru`},
		{map[string]string{"mode": "macvlan", "ipvlan_mode": "l2"}, false, `option "ipvlan_mode" does not apply to mode macvlan`},
		{map[string]string{"mode": "macvlan", "macvlan_mode": "passthru", "podnet.host-access": "true"}, false, "cannot have a host-access shim"},
		{map[string]string{"mode": "macvlan", "macvlan_mode": "private", "podnet.host-access": "true"}, false, "host access needs macvlan_mode=bridge"},
		{map[string]string{"mode": "macvlan", "podnet.host-access": "maybe"}, false, "want true or false"},
		{map[string]string{"mode": "macvlan", "parent": "lan0"}, true, "--internal and -o parent=lan0 exclude each other"},
		{map[string]string{"mode": "ipvlan", "ipvlan_mode": "l4"}, false, `ipvlan_mode="l4" is unknown: use one of l2, l3, l3s`},
		{map[string]string{"mode": "ipvlan", "ipvlan_flag": "loud"}, false, `ipvlan_flag="loud" is unknown: use one of bridge, private, vepa`},
		{map[string]string{"mode": "bridge", "podnet.host-access": "true"}, false, "it is for macvlan, ipvlan only"},
	} {
		_, err := Validate(Spec{Options: tc.opts, Subnets: v4, Internal: tc.internal}, nil)
		if err == nil || !strings.Contains(err.Error(), tc.want) || !errors.Is(err, fault.ErrInvalid) {
			t.Errorf("%v internal=%v: got %v, want an invalid spec saying %q", tc.opts, tc.internal, err, tc.want)
		}
	}
}

// TestLANDefaults: left-out modes take Docker's defaults, values are
// normalised, and the defaults of the shared options are what a new
// definition records.
func TestLANDefaults(t *testing.T) {
	n, err := Validate(Spec{Options: map[string]string{"mode": "ipvlan", "parent": " eth0 ", "ipvlan_mode": "L3"}, Subnets: []Subnet{sub("10.1.0.0/16")}}, nil)
	if err != nil || n.Parent != "eth0" || n.IpvlanMode != IpvlanL3 || n.IpvlanFlag != IpvlanFlagBridge || n.HostAccess || !n.L3Routed() {
		t.Fatalf("%v %+v", err, n.Options)
	}
	if want := map[string]string{OptIpvlanMode: "L3"}; !maps.Equal(n.Shared(), want) {
		t.Fatalf("shared %v, want %v (the parent may differ per host)", n.Shared(), want)
	}
	for mode, want := range map[string]map[string]string{
		ModeMacvlan: {OptMacvlanMode: "bridge", OptHostAccess: "false"},
		ModeIpvlan:  {OptIpvlanMode: "l2", OptIpvlanFlag: "bridge", OptHostAccess: "false"},
		ModeBridge:  nil,
	} {
		if got := SharedDefaults(mode); !maps.Equal(got, want) {
			t.Errorf("SharedDefaults(%s) = %v, want %v", mode, got, want)
		}
	}
}

// TestCheckSafeBeside: the parent's networks are left out, nothing else.
func TestCheckSafeBeside(t *testing.T) {
	host := []HostNetwork{{Iface: "eth0", Addr: pfx("10.253.0.11/24")}, {Iface: "eth1", Addr: pfx("10.254.0.11/24")}}
	if err := CheckSafeBeside(pfx("10.253.0.0/24"), host, "eth0"); err != nil {
		t.Fatalf("the parent's own LAN: %v", err)
	}
	for _, parent := range []string{"", "eth1"} {
		if err := CheckSafeBeside(pfx("10.253.0.0/24"), host, parent); !errors.Is(err, ErrUnsafeSubnet) || !strings.Contains(err.Error(), "interface eth0") {
			t.Errorf("parent %q: %v", parent, err)
		}
	}
	if err := CheckSafeBeside(netip.MustParsePrefix("127.0.0.0/24"), host, "lo"); !errors.Is(err, ErrUnsafeSubnet) {
		t.Errorf("a parent never lifts a reserved range: %v", err)
	}
}
