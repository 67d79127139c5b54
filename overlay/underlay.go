package overlay

import (
	"fmt"
	"net/netip"
	"sort"
	"strings"

	"github.com/podnet/podnet/internal/link"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// hint ends every underlay error: the one way out.
const hint = "set --advertise-addr to the IPv4 address (or interface) other hosts reach this one at"

// hostNet is the part of the host's network configuration DetectUnderlay
// looks at, gathered from the kernel so the choice itself is pure.
type hostNet struct {
	ifaces   map[int]ifaceInfo
	addrs    []addrInfo
	defaults []defaultRoute
}

type ifaceInfo struct {
	name string
	mtu  int
}

type addrInfo struct {
	ifindex   int
	prefix    netip.Prefix // address with its subnet length
	secondary bool
}

type defaultRoute struct {
	ifindex int
	gw, src netip.Addr
}

// DetectUnderlay finds this host's underlay. advertise is "" (auto: the
// interface of the IPv4 default route and its primary IPv4 address), an
// IPv4 address of this host, or an interface name (its primary IPv4
// address). Errors name the problem and say to set --advertise-addr.
func DetectUnderlay(k *link.Kernel, advertise string) (Underlay, error) {
	hn, err := gatherHostNet(k)
	if err != nil {
		return Underlay{}, err
	}
	return chooseUnderlay(hn, advertise)
}

// gatherHostNet reads links (ip link), IPv4 addresses (ip -4 addr) and IPv4
// default routes (ip route show default).
func gatherHostNet(k *link.Kernel) (hostNet, error) {
	hn := hostNet{ifaces: map[int]ifaceInfo{}}
	links, err := k.Links()
	if err != nil {
		return hn, fmt.Errorf("detect underlay: list links: %w", err)
	}
	for _, l := range links {
		hn.ifaces[l.Attrs().Index] = ifaceInfo{name: l.Attrs().Name, mtu: l.Attrs().MTU}
	}
	addrs, err := dump(func() ([]netlink.Addr, error) { return k.NL.AddrList(nil, netlink.FAMILY_V4) })
	if err != nil {
		return hn, fmt.Errorf("detect underlay: list addresses: %w", err)
	}
	for _, a := range addrs {
		ip, ok := netip.AddrFromSlice(a.IP)
		if !ok {
			continue
		}
		ones, _ := a.Mask.Size()
		hn.addrs = append(hn.addrs, addrInfo{ifindex: a.LinkIndex, prefix: netip.PrefixFrom(ip.Unmap(), ones),
			secondary: a.Flags&unix.IFA_F_SECONDARY != 0})
	}
	routes, err := dump(func() ([]netlink.Route, error) {
		return k.NL.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{Table: unix.RT_TABLE_MAIN}, netlink.RT_FILTER_TABLE)
	})
	if err != nil {
		return hn, fmt.Errorf("detect underlay: list routes: %w", err)
	}
	for _, r := range routes {
		if r.Dst != nil {
			if ones, _ := r.Dst.Mask.Size(); ones != 0 {
				continue
			}
		}
		src, _ := netip.AddrFromSlice(r.Src)
		if len(r.MultiPath) == 0 {
			gw, _ := netip.AddrFromSlice(r.Gw)
			hn.defaults = append(hn.defaults, defaultRoute{ifindex: r.LinkIndex, gw: gw.Unmap(), src: src.Unmap()})
		}
		for _, nh := range r.MultiPath {
			gw, _ := netip.AddrFromSlice(nh.Gw)
			hn.defaults = append(hn.defaults, defaultRoute{ifindex: nh.LinkIndex, gw: gw.Unmap(), src: src.Unmap()})
		}
	}
	return hn, nil
}

// chooseUnderlay picks the underlay from hn as DetectUnderlay describes.
func chooseUnderlay(hn hostNet, advertise string) (Underlay, error) {
	advertise = strings.TrimSpace(advertise)
	if advertise == "" {
		return hn.auto()
	}
	if ip, err := netip.ParseAddr(advertise); err == nil {
		ip = ip.Unmap()
		if !ip.Is4() {
			return Underlay{}, fmt.Errorf("advertise address %s is IPv6, but podnet's VXLAN underlay is IPv4; %s", ip, hint)
		}
		for _, a := range hn.usable() {
			if a.prefix.Addr() == ip {
				return hn.underlay(a), nil
			}
		}
		return Underlay{}, fmt.Errorf("advertise address %s is not on any interface of this host (its IPv4 addresses: %s); %s",
			ip, hn.describe(hn.usable()), hint)
	}
	for idx, ifc := range hn.ifaces {
		if ifc.name == advertise {
			return hn.primary(idx, netip.Addr{}, "interface "+advertise)
		}
	}
	return Underlay{}, fmt.Errorf("advertise address %q is neither an IP address nor an interface of this host; %s", advertise, hint)
}

// auto picks the interface of the IPv4 default route.
func (hn hostNet) auto() (Underlay, error) {
	if len(hn.defaults) == 0 {
		return Underlay{}, fmt.Errorf("cannot pick the underlay: this host has no IPv4 default route; %s", hint)
	}
	ifs := map[int]bool{}
	for _, d := range hn.defaults {
		ifs[d.ifindex] = true
	}
	if len(ifs) > 1 {
		var names []string
		for idx := range ifs {
			names = append(names, hn.name(idx))
		}
		sort.Strings(names)
		return Underlay{}, fmt.Errorf("cannot pick the underlay: IPv4 default routes leave through several interfaces (%s); %s",
			strings.Join(names, ", "), hint)
	}
	d := hn.defaults[0]
	if d.src.IsValid() {
		for _, a := range hn.usable() {
			if a.ifindex == d.ifindex && a.prefix.Addr() == d.src {
				return hn.underlay(a), nil
			}
		}
	}
	return hn.primary(d.ifindex, d.gw, "interface "+hn.name(d.ifindex)+" of the default route")
}

// primary returns the one primary IPv4 address of interface idx (the one
// whose subnet holds gw, when several).
func (hn hostNet) primary(idx int, gw netip.Addr, what string) (Underlay, error) {
	var cands []addrInfo
	for _, a := range hn.usable() {
		if a.ifindex == idx && !a.secondary {
			cands = append(cands, a)
		}
	}
	if len(cands) > 1 && gw.IsValid() {
		var near []addrInfo
		for _, a := range cands {
			if a.prefix.Masked().Contains(gw) {
				near = append(near, a)
			}
		}
		if len(near) > 0 {
			cands = near
		}
	}
	switch len(cands) {
	case 0:
		return Underlay{}, fmt.Errorf("cannot pick the underlay: %s has no IPv4 address; %s", what, hint)
	case 1:
		return hn.underlay(cands[0]), nil
	}
	return Underlay{}, fmt.Errorf("cannot pick the underlay: %s has several IPv4 addresses (%s); %s", what, hn.describe(cands), hint)
}

// usable lists addresses that can carry VXLAN between hosts: not loopback,
// not link-local.
func (hn hostNet) usable() []addrInfo {
	var out []addrInfo
	for _, a := range hn.addrs {
		ip := a.prefix.Addr()
		if ip.IsLoopback() || ip.IsLinkLocalUnicast() || ip.IsUnspecified() {
			continue
		}
		out = append(out, a)
	}
	return out
}

func (hn hostNet) underlay(a addrInfo) Underlay {
	ifc := hn.ifaces[a.ifindex]
	u := Underlay{Addr: a.prefix.Addr(), Prefix: a.prefix.Masked(), Dev: ifc.name, MTU: ifc.mtu}
	for _, d := range hn.defaults {
		if d.ifindex == a.ifindex && d.gw.IsValid() && u.Prefix.Contains(d.gw) {
			u.Gateway = d.gw
			break
		}
	}
	return u
}

func (hn hostNet) name(idx int) string {
	if ifc, ok := hn.ifaces[idx]; ok {
		return ifc.name
	}
	return fmt.Sprintf("link %d", idx)
}

func (hn hostNet) describe(as []addrInfo) string {
	if len(as) == 0 {
		return "none"
	}
	parts := make([]string, len(as))
	for i, a := range as {
		parts[i] = a.prefix.Addr().String() + " on " + hn.name(a.ifindex)
	}
	sort.Strings(parts)
	return strings.Join(parts, ", ")
}
