package netspec

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
)

// ErrUnsafeSubnet marks a subnet podnet refuses to use for containers: a
// reserved range, or one that overlaps a network the host itself is on.
var ErrUnsafeSubnet = errors.New("unsafe subnet")

// HostNetwork is an address of one of the host's interfaces, with its
// prefix length as configured (10.253.0.11/24 on eth0): the network that
// interface is attached to.
type HostNetwork struct {
	Iface string
	Addr  netip.Prefix
}

// reservedRange is a range no container subnet may overlap, and why.
type reservedRange struct {
	prefix netip.Prefix
	why    string
}

// reserved are the ranges whose addresses mean something else to every
// host: handing them to containers breaks the host or the containers.
var reserved = []reservedRange{
	{netip.MustParsePrefix("0.0.0.0/8"), "the unspecified (\"this network\") range 0.0.0.0/8"},
	{netip.MustParsePrefix("127.0.0.0/8"), "loopback (127.0.0.0/8)"},
	{netip.MustParsePrefix("169.254.0.0/16"), "link-local (169.254.0.0/16)"},
	{netip.MustParsePrefix("224.0.0.0/4"), "multicast (224.0.0.0/4)"},
	{netip.MustParsePrefix("255.255.255.255/32"), "the broadcast address 255.255.255.255"},
	{netip.MustParsePrefix("::/128"), "the unspecified address ::"},
	{netip.MustParsePrefix("::1/128"), "loopback (::1)"},
	{netip.MustParsePrefix("fe80::/10"), "link-local (fe80::/10)"},
	{netip.MustParsePrefix("ff00::/8"), "multicast (ff00::/8)"},
	{netip.MustParsePrefix("::ffff:0:0/96"), "IPv4-mapped addresses (::ffff:0:0/96): write IPv4 subnets as IPv4"},
}

// CheckSafe returns nil if p may hold containers, else an error wrapping
// ErrUnsafeSubnet that names what p overlaps: a reserved range (loopback,
// multicast, link-local, unspecified, broadcast), or one of host, the
// networks of the host's own interfaces (its underlay, docker0, ...). The
// caller reads host from the kernel and leaves out the interfaces the
// subnet legitimately shares (podnet's own bridges; the parent of a
// macvlan network); nil host checks the reserved ranges only, which is
// all a host-independent entry point can know. It is meant to sit beside
// the format rules of a subnet (size, family): every entry point that
// checks those checks this too, IPAM's RequestPool with the host's
// networks.
//
// Why refuse an overlap with a host network: the gateway address would
// sit on a podnet bridge while the same network is reachable through the
// interface, so the host answers ARP for the LAN's addresses on the wrong
// side, routes to the LAN break, and containers take addresses that belong
// to other machines.
func CheckSafe(p netip.Prefix, host []HostNetwork) error {
	if !p.IsValid() {
		return fmt.Errorf("subnet %v: %w: not a valid prefix", p, ErrUnsafeSubnet)
	}
	p = p.Masked()
	for _, r := range reserved {
		if p.Overlaps(r.prefix) {
			return fmt.Errorf("subnet %s: %w: it overlaps %s; pick a private range such as 10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16 or fd00::/8",
				p, ErrUnsafeSubnet, r.why)
		}
	}
	for _, h := range host {
		if h.Addr.IsValid() && p.Overlaps(h.Addr.Masked()) {
			return fmt.Errorf("subnet %s: %w: it overlaps %s, the network of interface %s on this host; containers would take that network's addresses and the host would answer for them on the wrong side: pick a subnet no interface of the host uses",
				p, ErrUnsafeSubnet, h.Addr, h.Iface)
		}
	}
	return nil
}

// CheckSafeBeside is CheckSafe except for the networks of interface
// parent: a macvlan or ipvlan network on parent's LAN shares its subnet by
// design. Every entry point lifts the refusal this way, for the one
// interface the network names: IPAM's RequestPool for --ipam-opt
// parent=IFACE, the driver and podnetctl network create for the parent of
// a macvlan/ipvlan network. parent "" lifts nothing.
func CheckSafeBeside(p netip.Prefix, host []HostNetwork, parent string) error {
	if parent != "" {
		host = slices.DeleteFunc(slices.Clone(host), func(h HostNetwork) bool { return h.Iface == parent })
	}
	return CheckSafe(p, host)
}
