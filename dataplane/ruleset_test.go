package dataplane

import (
	"bytes"
	"net/netip"
	"strings"
	"testing"
)

func TestBuildRulesetText(t *testing.T) {
	web := testNetwork("0123456789abcdef", "pn-web", "10.1.0.0/24")
	web.Subnets = append(web.Subnets, netip.MustParsePrefix("fd00:1::/64"))
	db := testNetwork("fedcba9876543210", "pn-db", "10.2.0.0/24")
	db.Masquerade, db.Internal = false, true
	rs := buildRuleset(rulesetInput{
		table: "podnet", bridgePrefix: "pn-",
		nets: map[string]Network{web.ID: web, db.ID: db},
		eps: map[string]endpointState{ep1: {networkID: web.ID, mappings: []Mapping{
			{Proto: TCP, HostPort: 8080, ContainerIP: c1IP4, ContainerPort: 80},
			{Proto: UDP, HostIP: hostA, HostPort: 5353, ContainerIP: c1IP4, ContainerPort: 53},
			{Proto: SCTP, HostPort: 9000, ContainerIP: c1IP6, ContainerPort: 9},
		}}},
	})
	want := `table inet podnet {
	set subnets4 {
		type ipv4_addr
		flags interval
		elements = { 10.1.0.0/24, 10.2.0.0/24 }
	}

	set subnets6 {
		type ipv6_addr
		flags interval
		elements = { fd00:1::/64 }
	}

	map pm4_ip {
		type ipv4_addr . inet_proto . inet_service : ipv4_addr . inet_service
		elements = { 192.0.2.10 . udp . 5353 comment "endpoint 3f2a1b4c5d6e" : 10.1.0.2 . 53 }
	}

	map pm4_any {
		type inet_proto . inet_service : ipv4_addr . inet_service
		elements = { tcp . 8080 comment "endpoint 3f2a1b4c5d6e" : 10.1.0.2 . 80 }
	}

	map pm6_ip {
		type ipv6_addr . inet_proto . inet_service : ipv6_addr . inet_service
	}

	map pm6_any {
		type inet_proto . inet_service : ipv6_addr . inet_service
		elements = { sctp . 9000 comment "endpoint 3f2a1b4c5d6e" : fd00:1::2 . 9 }
	}

	set samebridge {
		type ifname . ifname
		elements = { "pn-web" . "pn-web", "pn-db" . "pn-db" }
	}

	set pods4 {
		type ipv4_addr
		flags interval
	}

	set pods6 {
		type ipv6_addr
		flags interval
	}

	map tunnel4 {
		type ipv4_addr : ipv4_addr
		flags interval
	}

	map tunnel6 {
		type ipv6_addr : ipv6_addr
		flags interval
	}

	set hosts4 {
		type ipv4_addr
	}

	set etcd4 {
		type ipv4_addr . inet_service
	}

	set etcd6 {
		type ipv6_addr . inet_service
	}

	map svc-ip4 {
		type ipv4_addr . inet_proto . inet_service : verdict
	}

	map svc-ip6 {
		type ipv6_addr . inet_proto . inet_service : verdict
	}

	map svc-np {
		type inet_proto . inet_service : verdict
	}

	set svc-hairpin4 {
		type ipv4_addr . ipv4_addr
	}

	set svc-hairpin6 {
		type ipv6_addr . ipv6_addr
	}

	map svc-sums {
		type ifname : ipv6_addr
	}

	chain published {
		dnat ip to ip daddr . meta l4proto . th dport map @pm4_ip
		meta nfproto ipv4 dnat ip to meta l4proto . th dport map @pm4_any
		dnat ip6 to ip6 daddr . meta l4proto . th dport map @pm6_ip
		meta nfproto ipv6 dnat ip6 to meta l4proto . th dport map @pm6_any
	}

	chain prerouting {
		type nat hook prerouting priority dstnat; policy accept;
		ip daddr . tcp dport @etcd4 return comment "podnet's control traffic is never NATed"
		ip6 daddr . tcp dport @etcd6 return comment "podnet's control traffic is never NATed"
		jump services
		fib daddr type local jump published
	}

	chain output {
		type nat hook output priority -100; policy accept;
		ip daddr . tcp dport @etcd4 return comment "podnet's control traffic is never NATed"
		ip6 daddr . tcp dport @etcd6 return comment "podnet's control traffic is never NATed"
		jump services
		ip6 daddr ::1 return
		fib daddr type local jump published
	}

	chain postrouting {
		type nat hook postrouting priority srcnat; policy accept;
		ct mark & 0x00200000 == 0x00200000 jump snat-services
		ip saddr 127.0.0.0/8 oifname "pn-*" masquerade comment "localhost to published ports"
		ct status dnat ip saddr 10.1.0.0/24 oifname "pn-web" masquerade comment "hairpin net 0123456789ab"
		ct status dnat ip6 saddr fd00:1::/64 oifname "pn-web" masquerade comment "hairpin net 0123456789ab"
		ip saddr 10.1.0.0/24 ip daddr != @subnets4 oifname != "pn-web" masquerade comment "masquerade net 0123456789ab"
		ip6 saddr fd00:1::/64 ip6 daddr != @subnets6 oifname != "pn-web" masquerade comment "masquerade net 0123456789ab"
		ct status dnat ip saddr 10.2.0.0/24 oifname "pn-db" masquerade comment "hairpin net fedcba987654"
	}

	chain input {
		type filter hook input priority filter; policy accept;
		ct state established,related accept
		jump guard_input
		jump np-input
	}

	chain forward {
		type filter hook forward priority filter; policy accept;
		jump isolation
		ct state established,related accept
		jump guard_forward
		jump np-forward
	}

	chain isolation {
		iifname "pn-db" oifname != "pn-db" drop comment "internal net fedcba987654"
		oifname "pn-db" iifname != "pn-db" drop comment "internal net fedcba987654"
		ct status dnat return comment "published ports"
		iifname "pn-web" oifname "pn-*" oifname != "pn-web" drop comment "isolate net 0123456789ab"
		iifname "pn-db" oifname "pn-*" oifname != "pn-db" drop comment "isolate net fedcba987654"
		iifname "pn-*" oifname "docker0" drop comment "podnet and Docker bridges apart"
		iifname "docker0" oifname "pn-*" drop comment "podnet and Docker bridges apart"
		iifname "pn-*" oifname "br-*" drop comment "podnet and Docker bridges apart"
		iifname "br-*" oifname "pn-*" drop comment "podnet and Docker bridges apart"
		oifname "pn-web" iifname != "pn-web" ct state new drop comment "no direct access net 0123456789ab"
	}

	chain snat-services {
		ip saddr . ip daddr @svc-hairpin4 masquerade
		ip6 saddr . ip6 daddr @svc-hairpin6 masquerade
		iifname . oifname @samebridge masquerade
		oifname "pn-*" accept
		oifname "lo" accept
		iifname "pn-*" ip saddr @pods4 ip daddr @pods4 accept
		iifname "pn-*" ip6 saddr @pods6 ip6 daddr @pods6 accept
		snat ip to ip daddr map @tunnel4
		snat ip6 to ip6 daddr map @tunnel6
		masquerade
	}

	chain guard_pre {
		type filter hook prerouting priority mangle; policy accept;
		ct state established,related accept
		iifname != "pn-*" iifname != "lo" ip saddr @subnets4 fib saddr . iif oif missing drop comment "pod source not routed back to its interface"
		iifname != "pn-*" iifname != "lo" ip6 saddr @subnets6 fib saddr . iif oif missing drop comment "pod source not routed back to its interface"
		iifname "pn-*" ip daddr 127.0.0.0/8 drop comment "containers to host loopback"
	}

	chain guard_input {
		iifname "pn-*" ip daddr . tcp dport @etcd4 drop comment "containers never reach etcd"
		iifname "pn-*" ip6 daddr . tcp dport @etcd6 drop comment "containers never reach etcd"
		iifname "docker0" ip daddr . tcp dport @etcd4 drop comment "containers never reach etcd"
		iifname "docker0" ip6 daddr . tcp dport @etcd6 drop comment "containers never reach etcd"
		iifname "br-*" ip daddr . tcp dport @etcd4 drop comment "containers never reach etcd"
		iifname "br-*" ip6 daddr . tcp dport @etcd6 drop comment "containers never reach etcd"
	}

	chain guard_forward {
		iifname "pn-*" ip daddr . tcp dport @etcd4 drop comment "containers never reach etcd"
		iifname "pn-*" ip6 daddr . tcp dport @etcd6 drop comment "containers never reach etcd"
		iifname "docker0" ip daddr . tcp dport @etcd4 drop comment "containers never reach etcd"
		iifname "docker0" ip6 daddr . tcp dport @etcd6 drop comment "containers never reach etcd"
		iifname "br-*" ip daddr . tcp dport @etcd4 drop comment "containers never reach etcd"
		iifname "br-*" ip6 daddr . tcp dport @etcd6 drop comment "containers never reach etcd"
	}

	chain services {
		ip daddr . meta l4proto . th dport vmap @svc-ip4
		ip6 daddr . meta l4proto . th dport vmap @svc-ip6
		ip daddr 127.0.0.0/8 return
		ip6 daddr ::1 return
		fib daddr type local meta l4proto . th dport vmap @svc-np
	}

	chain svc-reject {
		meta l4proto tcp reject with tcp reset
		reject
	}
}
`
	if got := withoutPolicy(rs).String(); got != want {
		t.Fatalf("ruleset:\n%s\nwant:\n%s", got, want)
	}
}

func TestMappingElementBytes(t *testing.T) {
	// What `nft --debug=netlink add element … { 192.0.2.10 . udp . 5353 : 10.1.0.2 . 53 }`
	// sends: each concatenated field padded to 4 bytes, network byte order.
	el := mappingElement(Mapping{Proto: UDP, HostIP: hostA, HostPort: 5353, ContainerIP: c1IP4, ContainerPort: 53}, ep1)
	wantKey := []byte{192, 0, 2, 10, 17, 0, 0, 0, 0x14, 0xe9, 0, 0}
	wantVal := []byte{10, 1, 0, 2, 0, 53, 0, 0}
	if el.set != mapPub4Addr || !bytes.Equal(el.key, wantKey) || !bytes.Equal(el.val, wantVal) {
		t.Fatalf("element %s key % x val % x, want pm4_ip key % x val % x", el.set, el.key, el.val, wantKey, wantVal)
	}
	el = mappingElement(Mapping{Proto: SCTP, HostPort: 9000, ContainerIP: c1IP6, ContainerPort: 9}, ep1)
	if el.set != mapPub6Any || !bytes.Equal(el.key, []byte{132, 0, 0, 0, 0x23, 0x28, 0, 0}) || len(el.val) != 20 {
		t.Fatalf("v6 element %s key % x val % x", el.set, el.key, el.val)
	}
}

func TestSubnetElements(t *testing.T) {
	els := subnetElements(setSubnets4, []netip.Prefix{
		netip.MustParsePrefix("10.1.0.0/24"),
		netip.MustParsePrefix("10.1.0.128/25"), // inside the /24: dropped
		netip.MustParsePrefix("10.9.0.7/32"),
		netip.MustParsePrefix("10.1.0.0/24"), // duplicate
	})
	var got []string
	for _, el := range els {
		a, _ := netip.AddrFromSlice(el.key)
		if el.keyEnd {
			got = append(got, "end "+a.String())
		} else {
			got = append(got, a.String())
		}
	}
	want := "end 0.0.0.0,10.1.0.0,end 10.1.1.0,10.9.0.7,end 10.9.0.8"
	if strings.Join(got, ",") != want {
		t.Fatalf("interval elements: %s, want %s", strings.Join(got, ","), want)
	}
}

func TestDiffElements(t *testing.T) {
	a := mappingElement(Mapping{Proto: TCP, HostPort: 1, ContainerIP: c1IP4, ContainerPort: 1}, ep1)
	b := mappingElement(Mapping{Proto: TCP, HostPort: 2, ContainerIP: c1IP4, ContainerPort: 2}, ep1)
	b2 := mappingElement(Mapping{Proto: TCP, HostPort: 2, ContainerIP: c1IP4, ContainerPort: 3}, ep1)
	del, add := diffElements([]element{a, b}, []element{b2})
	if len(del) != 2 || len(add) != 1 || !bytes.Equal(add[0].val, b2.val) {
		t.Fatalf("diff: del %d add %d, want 2 and 1 (same key, new value)", len(del), len(add))
	}
}

func TestIPTablesWantRules(t *testing.T) {
	a := newIPTAccepts(nil, "PODNET-FORWARD", "pn-", "auto")
	want := []string{"-N PODNET-FORWARD", "-A PODNET-FORWARD -i pn-+ -j ACCEPT", "-A PODNET-FORWARD -o pn-+ -j ACCEPT",
		"-A PODNET-FORWARD -m connmark --mark 0x200000/0x200000 -j ACCEPT"}
	if got := a.wantRules(); strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("rules %q, want %q", got, want)
	}
}

func TestInternalNetworkKeepsItsUplink(t *testing.T) {
	rules := forwardRules("pn-", []Network{{ID: "abcdef0123456789", Bridge: "pn-abcdef012345", Internal: true, Uplink: "pnx4096"}})
	var texts []string
	for _, r := range rules {
		texts = append(texts, r.text)
	}
	want := []string{
		`iifname "pn-abcdef012345" oifname != "pn-abcdef012345" oifname != "pnx4096" drop comment "internal net abcdef012345"`,
		`oifname "pn-abcdef012345" iifname != "pn-abcdef012345" iifname != "pnx4096" drop comment "internal net abcdef012345"`,
	}
	for i, w := range want {
		if texts[i] != w {
			t.Fatalf("rule %d:\n got %s\nwant %s", i, texts[i], w)
		}
	}
}
