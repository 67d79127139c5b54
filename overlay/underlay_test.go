package overlay

import (
	"net/netip"
	"strconv"
	"strings"
	"testing"
)

// fakeNet is a host with lo, eth0 and eth1.
func fakeNet() hostNet {
	return hostNet{
		ifaces: map[int]ifaceInfo{1: {name: "lo", mtu: 65536}, 2: {name: "eth0", mtu: 9000}, 3: {name: "eth1", mtu: 1500}},
		addrs: []addrInfo{
			{ifindex: 1, prefix: netip.MustParsePrefix("127.0.0.1/8")},
			{ifindex: 2, prefix: netip.MustParsePrefix("10.0.0.5/24")},
			{ifindex: 2, prefix: netip.MustParsePrefix("10.0.0.6/24"), secondary: true},
			{ifindex: 3, prefix: netip.MustParsePrefix("172.16.0.9/16")},
		},
	}
}

func TestChooseUnderlay(t *testing.T) {
	gw := netip.MustParseAddr("10.0.0.1")
	cases := []struct {
		name      string
		edit      func(*hostNet)
		advertise string
		want      string // "addr prefix dev mtu [gateway]", or "error: substrings|…"
	}{
		{"default route", func(h *hostNet) { h.defaults = []defaultRoute{{ifindex: 2, gw: gw}} }, "",
			"10.0.0.5 10.0.0.0/24 eth0 9000 10.0.0.1"},
		{"default route source wins", func(h *hostNet) {
			h.addrs = append(h.addrs, addrInfo{ifindex: 2, prefix: netip.MustParsePrefix("10.0.1.7/24")})
			h.defaults = []defaultRoute{{ifindex: 2, gw: gw, src: netip.MustParseAddr("10.0.1.7")}}
		}, "", "10.0.1.7 10.0.1.0/24 eth0 9000"}, // the gateway is not in 10.0.1.0/24
		{"gateway picks among primaries", func(h *hostNet) {
			h.addrs = append(h.addrs, addrInfo{ifindex: 2, prefix: netip.MustParsePrefix("192.168.9.2/24")})
			h.defaults = []defaultRoute{{ifindex: 2, gw: gw}}
		}, "", "10.0.0.5 10.0.0.0/24 eth0 9000 10.0.0.1"},
		{"no default route", nil, "",
			"error: no IPv4 default route|--advertise-addr"},
		{"default routes on two interfaces", func(h *hostNet) {
			h.defaults = []defaultRoute{{ifindex: 2, gw: gw}, {ifindex: 3, gw: netip.MustParseAddr("172.16.0.1")}}
		}, "", "error: several interfaces (eth0, eth1)|--advertise-addr"},
		{"several primaries, gateway in none", func(h *hostNet) {
			h.addrs = append(h.addrs, addrInfo{ifindex: 2, prefix: netip.MustParsePrefix("192.168.9.2/24")})
			h.defaults = []defaultRoute{{ifindex: 2, gw: netip.MustParseAddr("100.64.0.1")}}
		}, "", "error: several IPv4 addresses (10.0.0.5 on eth0, 192.168.9.2 on eth0)|--advertise-addr"},
		{"default interface without IPv4", func(h *hostNet) {
			h.ifaces[4] = ifaceInfo{name: "wg0", mtu: 1420}
			h.defaults = []defaultRoute{{ifindex: 4}}
		}, "", "error: interface wg0 of the default route has no IPv4 address|--advertise-addr"},
		{"advertise IP", nil, "172.16.0.9", "172.16.0.9 172.16.0.0/16 eth1 1500"},
		{"advertise secondary IP", nil, "10.0.0.6", "10.0.0.6 10.0.0.0/24 eth0 9000"},
		{"advertise IP not on host", nil, "10.9.9.9",
			"error: 10.9.9.9 is not on any interface|10.0.0.5 on eth0|--advertise-addr"},
		{"advertise IPv6", nil, "fd00::1", "error: is IPv6|--advertise-addr"},
		{"advertise interface", nil, "eth1", "172.16.0.9 172.16.0.0/16 eth1 1500"},
		{"advertise unknown interface", nil, "eth7", `error: "eth7" is neither an IP address nor an interface|--advertise-addr`},
		{"advertise loopback", nil, "127.0.0.1", "error: not on any interface|--advertise-addr"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			hn := fakeNet()
			if c.edit != nil {
				c.edit(&hn)
			}
			u, err := chooseUnderlay(hn, c.advertise)
			if want, ok := strings.CutPrefix(c.want, "error: "); ok {
				if err == nil {
					t.Fatalf("got %+v, want an error", u)
				}
				for _, s := range strings.Split(want, "|") {
					if !strings.Contains(err.Error(), s) {
						t.Errorf("error %q does not mention %q", err, s)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := strings.Join([]string{u.Addr.String(), u.Prefix.String(), u.Dev, strconv.Itoa(u.MTU)}, " ")
			if u.Gateway.IsValid() {
				got += " " + u.Gateway.String()
			}
			if got != c.want {
				t.Fatalf("got %s, want %s", got, c.want)
			}
		})
	}
}
