package link

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/podnet/podnet/netspec"
	"github.com/vishvananda/netlink"
)

// InterfaceNetworks returns every IPv4 and IPv6 address of every link
// (ip addr show), with the prefix length it was configured with, except
// those of links whose name starts with one of skip (podnet's own bridges
// and VXLAN devices, which hold podnet subnets by design). IPv6
// link-local addresses are left out: every interface has one, and
// fe80::/10 is refused for containers on its own.
func (k *Kernel) InterfaceNetworks(skip ...string) ([]netspec.HostNetwork, error) {
	links, err := k.Links()
	if err != nil {
		return nil, fmt.Errorf("list links: %w", err)
	}
	names := make(map[int]string, len(links))
	for _, l := range links {
		names[l.Attrs().Index] = l.Attrs().Name
	}
	addrs, err := Dump(func() ([]netlink.Addr, error) { return k.NL.AddrList(nil, netlink.FAMILY_ALL) })
	if err != nil {
		return nil, fmt.Errorf("list addresses: %w", err)
	}
	var out []netspec.HostNetwork
	for _, a := range addrs {
		name := names[a.LinkIndex]
		if name == "" || hasAnyPrefix(name, skip) {
			continue
		}
		ip, ok := netip.AddrFromSlice(a.IP)
		ip = ip.Unmap()
		if !ok || ip.Is6() && ip.IsLinkLocalUnicast() {
			continue
		}
		ones, _ := a.Mask.Size()
		out = append(out, netspec.HostNetwork{Iface: name, Addr: netip.PrefixFrom(ip, ones)})
	}
	return out, nil
}

func hasAnyPrefix(s string, prefixes []string) bool {
	for _, p := range prefixes {
		if p != "" && strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}
