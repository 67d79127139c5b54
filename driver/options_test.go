package driver

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/docker/go-plugins-helpers/network"
	"github.com/podnet/podnet/netspec"
)

func req(opts map[string]any, v4 ...*network.IPAMData) *network.CreateNetworkRequest {
	return &network.CreateNetworkRequest{NetworkID: "0123456789abcdef0123",
		Options: map[string]any{labelGeneric: opts, labelIPv6: false}, IPv4Data: v4}
}

func pool(p, gw string) *network.IPAMData {
	return &network.IPAMData{AddressSpace: netspec.LocalAddressSpace, Pool: p, Gateway: gw}
}

func TestParseOptionsDefaults(t *testing.T) {
	o, err := parseOptions(req(map[string]any{}, pool("10.1.0.0/16", "10.1.0.1/16")), []string{netspec.ModeBridge, netspec.ModeNone})
	if err != nil {
		t.Fatal(err)
	}
	if o.Mode != netspec.ModeBridge || !o.Masquerade || o.MTU != 0 || o.Internal {
		t.Fatalf("defaults: %+v", o)
	}
	if o.V4[0].Gateway.String() != "10.1.0.1/16" {
		t.Fatalf("gateway: %v", o.V4[0].Gateway)
	}
}

func TestParseOptionsRefusesBadInput(t *testing.T) {
	modes := []string{netspec.ModeBridge, netspec.ModeNone}
	cases := []struct {
		name string
		r    *network.CreateNetworkRequest
		want string
	}{
		{"unknown mode", req(map[string]any{"mode": "weird"}, pool("10.1.0.0/16", "")), `unknown mode "weird"`},
		{"unimplemented mode", req(map[string]any{"mode": "macvlan"}, pool("10.1.0.0/16", "")), `mode "macvlan" is not available`},
		{"unknown podnet option", req(map[string]any{"podnet.bogus": "1"}, pool("10.1.0.0/16", "")), `unknown option "podnet.bogus"`},
		{"unknown plain option", req(map[string]any{"mdoe": "vxlan"}, pool("10.1.0.0/16", "")), `unknown option "mdoe"`},
		{"option of another mode", req(map[string]any{"parent": "eth0"}, pool("10.1.0.0/16", "")), `does not apply to mode bridge`},
		{"mtu too small", req(map[string]any{"mtu": "10"}, pool("10.1.0.0/16", "")), "out of range"},
		{"mtu too large", req(map[string]any{netspec.OptDockerMTU: "70000"}, pool("10.1.0.0/16", "")), "out of range"},
		{"mtu not a number", req(map[string]any{"mtu": "big"}, pool("10.1.0.0/16", "")), "not a number"},
		{"mtu aliases disagree", req(map[string]any{"mtu": "1400", netspec.OptDockerMTU: "1300"}, pool("10.1.0.0/16", "")), "disagree"},
		{"masquerade not bool", req(map[string]any{netspec.OptMasquerade: "maybe"}, pool("10.1.0.0/16", "")), "want true or false"},
		{"foreign IPAM", req(map[string]any{}, &network.IPAMData{AddressSpace: "LocalDefault", Pool: "10.1.0.0/16"}), "--ipam-driver podnet"},
		{"gateway outside", req(map[string]any{}, pool("10.1.0.0/16", "10.2.0.1/16")), "outside subnet"},
		{"no subnet", req(map[string]any{}), "no subnet"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := parseOptions(c.r, modes)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want error containing %q", err, c.want)
			}
		})
	}
}

func TestParseOptionsMTUAndFlags(t *testing.T) {
	r := req(map[string]any{"mtu": "1400", netspec.OptMasquerade: "false"}, pool("10.1.0.0/16", ""))
	r.Options[labelInternal] = true
	o, err := parseOptions(r, []string{netspec.ModeBridge})
	if err != nil {
		t.Fatal(err)
	}
	if o.MTU != 1400 || o.Masquerade || !o.Internal {
		t.Fatalf("%+v", o)
	}
}

func TestParsePortmap(t *testing.T) {
	v := []any{
		map[string]any{"Proto": float64(6), "IP": "", "Port": float64(80), "HostIP": "", "HostPort": float64(8080), "HostPortEnd": float64(8080)},
		map[string]any{"Proto": float64(17), "Port": float64(53), "HostIP": "127.0.0.1", "HostPort": float64(0), "HostPortEnd": float64(0)},
		map[string]any{"Proto": float64(6), "Port": float64(81), "HostIP": "0.0.0.0", "HostPort": float64(9000), "HostPortEnd": float64(9010)},
	}
	bs, err := parsePortmap(v)
	if err != nil {
		t.Fatal(err)
	}
	if len(bs) != 3 || bs[0].Proto != "tcp" || bs[0].HostPort != 8080 || bs[0].HostIP.IsValid() {
		t.Fatalf("%+v", bs)
	}
	if bs[1].Proto != "udp" || bs[1].HostIP.String() != "127.0.0.1" || bs[1].HostPort != 0 {
		t.Fatalf("%+v", bs[1])
	}
	if bs[2].HostIP.IsValid() || bs[2].HostPortEnd != 9010 {
		t.Fatalf("0.0.0.0 must mean every address, range kept: %+v", bs[2])
	}
	for _, bad := range []any{
		"nope",
		[]any{map[string]any{"Proto": float64(1), "Port": float64(80)}},
		[]any{map[string]any{"Proto": float64(6), "Port": float64(80), "HostIP": "x.y"}},
		[]any{map[string]any{"Proto": float64(6), "Port": float64(80), "HostPort": float64(90), "HostPortEnd": float64(80)}},
	} {
		if _, err := parsePortmap(bad); err == nil {
			t.Fatalf("accepted %v", bad)
		}
	}
}

func TestMACFromIPv4(t *testing.T) {
	if m := macFor(netip.MustParsePrefix("10.1.2.3/16")).String(); m != "02:70:0a:01:02:03" {
		t.Fatal(m)
	}
	m := macFor(netip.Prefix{})
	if m[0]&0x02 == 0 || m[0]&0x01 != 0 {
		t.Fatalf("random MAC must be locally administered unicast: %s", m)
	}
}
