package overlay

import (
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/podnet/podnet/internal/link"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// nlKernel is every netlink call the overlay makes besides device
// management, each named after its iproute2 equivalent. Dumps are retried
// when the kernel interrupts them (the table changed mid-dump).
type nlKernel struct {
	h *netlink.Handle
}

// dump retries interrupted dumps (see link.Dump).
func dump[T any](f func() (T, error)) (T, error) { return link.Dump(f) }

// listRoutes returns the overlay's routes in the main table, IPv4 and
// IPv6: ip route show proto 152; ip -6 route show proto 152.
func (k nlKernel) listRoutes() ([]netlink.Route, error) {
	filter := &netlink.Route{Protocol: RouteProtocol, Table: unix.RT_TABLE_MAIN}
	mask := netlink.RT_FILTER_PROTOCOL | netlink.RT_FILTER_TABLE
	var out []netlink.Route
	for _, fam := range []int{netlink.FAMILY_V4, netlink.FAMILY_V6} {
		rs, err := dump(func() ([]netlink.Route, error) { return k.h.RouteListFiltered(fam, filter, mask) })
		if err != nil {
			return nil, fmt.Errorf("list podnet routes: %w", err)
		}
		out = append(out, rs...)
	}
	return out, nil
}

// replaceRoute installs r or overwrites the route to its destination:
// ip route replace DST via GW dev DEV [onlink] proto 152.
func (k nlKernel) replaceRoute(r *netlink.Route) error {
	if err := k.h.RouteReplace(r); err != nil {
		return fmt.Errorf("ip route replace %s: %w", r.Dst, err)
	}
	return nil
}

// delRoute removes r: ip route del DST via GW dev DEV proto 152.
func (k nlKernel) delRoute(r *netlink.Route) error {
	if err := k.h.RouteDel(r); err != nil && !errors.Is(err, unix.ESRCH) {
		return fmt.Errorf("ip route del %s: %w", r.Dst, err)
	}
	return nil
}

// listNeigh returns the permanent neighbor entries of a device, IPv4 and
// IPv6: ip neigh show dev DEV nud permanent.
func (k nlKernel) listNeigh(ifindex int) ([]netlink.Neigh, error) {
	var out []netlink.Neigh
	for _, fam := range []int{netlink.FAMILY_V4, netlink.FAMILY_V6} {
		ns, err := dump(func() ([]netlink.Neigh, error) { return k.h.NeighList(ifindex, fam) })
		if err != nil {
			return nil, fmt.Errorf("list neighbors of link %d: %w", ifindex, err)
		}
		for _, n := range ns {
			if n.State&netlink.NUD_PERMANENT != 0 && n.Flags&netlink.NTF_PROXY == 0 {
				out = append(out, n)
			}
		}
	}
	return out, nil
}

// setNeigh makes ip resolve to mac on the device:
// ip neigh replace IP lladdr MAC dev DEV nud permanent.
func (k nlKernel) setNeigh(ifindex int, ip netip.Addr, mac net.HardwareAddr) error {
	n := &netlink.Neigh{LinkIndex: ifindex, Family: family(ip), State: netlink.NUD_PERMANENT, IP: ip.AsSlice(), HardwareAddr: mac}
	if err := k.h.NeighSet(n); err != nil {
		return fmt.Errorf("ip neigh replace %s lladdr %s: %w", ip, mac, err)
	}
	return nil
}

// delNeigh removes a neighbor entry: ip neigh del IP dev DEV.
func (k nlKernel) delNeigh(ifindex int, ip netip.Addr) error {
	n := &netlink.Neigh{LinkIndex: ifindex, Family: family(ip), IP: ip.AsSlice()}
	if err := k.h.NeighDel(n); err != nil && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("ip neigh del %s: %w", ip, err)
	}
	return nil
}

// fdbEntry is one forwarding entry of a VXLAN device: frames to mac go to
// the VTEP at dst.
type fdbEntry struct {
	mac string
	dst netip.Addr
}

// listFDB returns the forwarding entries of a VXLAN device that have a
// destination: bridge fdb show dev DEV.
func (k nlKernel) listFDB(ifindex int) ([]fdbEntry, error) {
	ns, err := dump(func() ([]netlink.Neigh, error) { return k.h.NeighList(ifindex, unix.AF_BRIDGE) })
	if err != nil {
		return nil, fmt.Errorf("list FDB of link %d: %w", ifindex, err)
	}
	out := make([]fdbEntry, 0, len(ns))
	for _, n := range ns {
		dst, ok := netip.AddrFromSlice(n.IP)
		if !ok || n.HardwareAddr == nil {
			continue
		}
		out = append(out, fdbEntry{mac: n.HardwareAddr.String(), dst: dst.Unmap()})
	}
	return out, nil
}

// setFDB sends frames for mac to dst, creating the entry or moving it:
// bridge fdb replace MAC dev DEV dst DST self permanent. (An append would
// not do: the kernel keeps one destination per unicast MAC and ignores
// NLM_F_APPEND for it, so a host that changed its underlay address would
// keep its old destination, and deleting that one would leave none.)
func (k nlKernel) setFDB(ifindex int, mac net.HardwareAddr, dst netip.Addr) error {
	n := &netlink.Neigh{LinkIndex: ifindex, Family: unix.AF_BRIDGE, State: netlink.NUD_PERMANENT,
		Flags: netlink.NTF_SELF, IP: dst.AsSlice(), HardwareAddr: mac}
	if err := k.h.NeighSet(n); err != nil {
		return fmt.Errorf("bridge fdb replace %s dst %s: %w", mac, dst, err)
	}
	return nil
}

// delFDB removes one destination of mac:
// bridge fdb del MAC dev DEV dst DST self.
func (k nlKernel) delFDB(ifindex int, e fdbEntry) error {
	mac, err := net.ParseMAC(e.mac)
	if err != nil {
		return fmt.Errorf("bridge fdb del %s: %w", e.mac, err)
	}
	n := &netlink.Neigh{LinkIndex: ifindex, Family: unix.AF_BRIDGE, Flags: netlink.NTF_SELF, IP: e.dst.AsSlice(), HardwareAddr: mac}
	if err := k.h.NeighDel(n); err != nil && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("bridge fdb del %s dst %s: %w", e.mac, e.dst, err)
	}
	return nil
}

// listProxy returns the IPv6 addresses a bridge answers neighbor
// solicitations for: ip -6 neigh show proxy dev BR.
func (k nlKernel) listProxy(ifindex int) ([]netip.Addr, error) {
	ns, err := dump(func() ([]netlink.Neigh, error) { return k.h.NeighProxyList(ifindex, netlink.FAMILY_V6) })
	if err != nil {
		return nil, fmt.Errorf("list proxy neighbors of link %d: %w", ifindex, err)
	}
	out := make([]netip.Addr, 0, len(ns))
	for _, n := range ns {
		if a, ok := netip.AddrFromSlice(n.IP); ok && n.LinkIndex == ifindex {
			out = append(out, a)
		}
	}
	return out, nil
}

// delProxy stops the bridge answering for ip: ip -6 neigh del proxy IP dev BR.
func (k nlKernel) delProxy(ifindex int, ip netip.Addr) error {
	n := &netlink.Neigh{LinkIndex: ifindex, Family: netlink.FAMILY_V6, Flags: netlink.NTF_PROXY, IP: ip.AsSlice()}
	if err := k.h.NeighDel(n); err != nil && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("ip -6 neigh del proxy %s: %w", ip, err)
	}
	return nil
}

// listAddrs returns a device's addresses other than IPv6 link-local ones
// (the kernel's own): ip addr show dev DEV.
func (k nlKernel) listAddrs(ifindex int) ([]netip.Prefix, error) {
	dev := &netlink.Device{LinkAttrs: netlink.LinkAttrs{Index: ifindex}}
	as, err := dump(func() ([]netlink.Addr, error) { return k.h.AddrList(dev, netlink.FAMILY_ALL) })
	if err != nil {
		return nil, fmt.Errorf("list addresses of link %d: %w", ifindex, err)
	}
	out := make([]netip.Prefix, 0, len(as))
	for _, a := range as {
		ip, ok := netip.AddrFromSlice(a.IP)
		if !ok || a.IPNet == nil {
			continue
		}
		ones, _ := a.Mask.Size()
		if ip = ip.Unmap(); !ip.IsLinkLocalUnicast() {
			out = append(out, netip.PrefixFrom(ip, ones))
		}
	}
	return out, nil
}

// addAddr puts a on the device as a host address, without a prefix route
// and, for IPv6, without duplicate address detection (a tentative address
// cannot be a route's source):
// ip addr replace A/32 dev DEV noprefixroute nodad.
func (k nlKernel) addAddr(ifindex int, a netip.Addr) error {
	na := &netlink.Addr{IPNet: prefixToIPNet(netip.PrefixFrom(a, a.BitLen())), LinkIndex: ifindex,
		Flags: unix.IFA_F_NOPREFIXROUTE}
	if a.Is6() {
		na.Flags |= unix.IFA_F_NODAD
	}
	if err := k.h.AddrReplace(nil, na); err != nil {
		return fmt.Errorf("ip addr replace %s dev %d: %w", na.IPNet, ifindex, err)
	}
	return nil
}

// delAddr removes an address from the device: ip addr del A/LEN dev DEV.
func (k nlKernel) delAddr(ifindex int, p netip.Prefix) error {
	na := &netlink.Addr{IPNet: prefixToIPNet(p), LinkIndex: ifindex}
	if err := k.h.AddrDel(nil, na); err != nil && !errors.Is(err, unix.EADDRNOTAVAIL) && !errors.Is(err, unix.ENODEV) {
		return fmt.Errorf("ip addr del %s dev %d: %w", p, ifindex, err)
	}
	return nil
}

func family(a netip.Addr) int {
	if a.Is4() {
		return netlink.FAMILY_V4
	}
	return netlink.FAMILY_V6
}
