package overlay

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"

	"github.com/podnet/podnet/internal/dockerid"
	"github.com/podnet/podnet/internal/link"
	"github.com/podnet/podnet/netspec"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// EnsureNetwork creates or checks the network's VXLAN device pnx<VNI> and
// registers the network for programming, then triggers a sync. It is
// idempotent: calling it again with changed settings (MTU, pools, direct
// routing) updates the registration and the device in place.
func (o *Overlay) EnsureNetwork(n Network) (string, error) {
	o.kmu.Lock()
	defer o.kmu.Unlock()
	n, err := o.validate(n)
	if err != nil {
		return "", err
	}
	if _, err := o.ensureDevice(n); err != nil {
		return "", err
	}
	o.mu.Lock()
	prev, had := o.networks[n.ID]
	o.networks[n.ID] = n
	if !had || !sameNetwork(prev, n) {
		o.recompute = true
	}
	o.mu.Unlock()
	if had && prev.VNI != n.VNI {
		if err := o.k.DeleteLink(DeviceName(prev.VNI)); err != nil {
			o.log.Warn("old VXLAN device of a network whose VNI changed not deleted", "network", dockerid.Short(n.ID), "iface", DeviceName(prev.VNI), "err", err)
		}
	}
	if !had {
		o.log.Info("network registered", "network", dockerid.Short(n.ID), "vni", n.VNI, "iface", DeviceName(n.VNI),
			"pools", n.Pools, "directRouting", n.DirectRouting, "tunnels", n.Tunnels)
	} else if !slices.Equal(prev.Tunnels, n.Tunnels) {
		o.log.Info("tunnel addresses changed", "network", dockerid.Short(n.ID), "tunnels", n.Tunnels, "was", prev.Tunnels)
	}
	o.kick()
	return DeviceName(n.VNI), nil
}

// RemoveNetwork forgets the network and deletes its VXLAN device, which
// takes the device's routes, neighbors, FDB entries and addresses along;
// its other routes (direct routing over the underlay, addresses routed to
// the bridge, routes into WireGuard), proxy entries and tunnel addresses
// on devices that stay are deleted too. An unknown network is not an error.
func (o *Overlay) RemoveNetwork(id string) error {
	o.kmu.Lock()
	defer o.kmu.Unlock()
	o.mu.Lock()
	n, ok := o.networks[id]
	delete(o.networks, id)
	o.recompute = true
	shared := false
	for _, m := range o.networks {
		shared = shared || m.VNI == n.VNI
	}
	o.mu.Unlock()
	if !ok {
		return nil
	}
	o.applied = nil
	o.kick() // Run drops the pools' watches
	var errs []error
	if !shared {
		if err := o.k.DeleteLink(DeviceName(n.VNI)); err != nil {
			errs = append(errs, fmt.Errorf("network %s: %w", dockerid.Short(id), err))
		}
	}
	nk := nlKernel{h: o.k.NL}
	routes, err := nk.listRoutes()
	if err != nil {
		errs = append(errs, err)
	}
	for i := range routes {
		if dst, ok := ipNetToPrefix(routes[i].Dst); ok && inPools(dst, n.Pools) {
			if err := nk.delRoute(&routes[i]); err != nil {
				errs = append(errs, err)
			}
		}
	}
	// The tunnel addresses go now, not with the next pass: on a device
	// that stays (a VNI another network shares, pnwg) they would
	// otherwise outlive the network until then.
	var tunnelDevs []string
	if shared {
		tunnelDevs = append(tunnelDevs, DeviceName(n.VNI))
	}
	if o.wg != nil {
		tunnelDevs = append(tunnelDevs, o.wg.Name())
	}
	errs = append(errs, removeTunnels(nk, n.Tunnels, tunnelDevs)...)
	if br, err := o.k.NL.LinkByName(n.Bridge); err == nil && n.Bridge != "" {
		proxies, err := nk.listProxy(br.Attrs().Index)
		if err != nil {
			errs = append(errs, err)
		}
		for _, a := range proxies {
			if inPools(netip.PrefixFrom(a, a.BitLen()), n.Pools) {
				if err := nk.delProxy(br.Attrs().Index, a); err != nil {
					errs = append(errs, err)
				}
			}
		}
	}
	o.log.Info("network removed", "network", dockerid.Short(id), "vni", n.VNI, "iface", DeviceName(n.VNI))
	return errors.Join(errs...)
}

// validate checks n and fills in defaults.
func (o *Overlay) validate(n Network) (Network, error) {
	if n.ID == "" {
		return n, errors.New("overlay network without an ID")
	}
	if err := netspec.CheckVNI(n.VNI); err != nil {
		return n, fmt.Errorf("network %s: %w", dockerid.Short(n.ID), err)
	}
	if n.MTU == 0 {
		n.MTU = o.DefaultMTU()
	}
	if err := netspec.CheckMTU(n.MTU); err != nil {
		return n, fmt.Errorf("network %s: %w", dockerid.Short(n.ID), err)
	}
	if n.MTU > o.MaxMTU() {
		return n, fmt.Errorf("network %s: MTU %d does not fit VXLAN over underlay %s (MTU %d): use at most %d",
			dockerid.Short(n.ID), n.MTU, o.underlay.Dev, o.underlay.MTU, o.MaxMTU())
	}
	pools := make([]netip.Prefix, 0, len(n.Pools))
	for _, p := range n.Pools {
		if !p.IsValid() {
			return n, fmt.Errorf("network %s: invalid pool %v", dockerid.Short(n.ID), p)
		}
		pools = append(pools, p.Masked())
	}
	n.Pools = pools
	tunnels := make([]netip.Addr, 0, len(n.Tunnels))
	for _, a := range n.Tunnels {
		a = a.Unmap()
		if !a.IsValid() || !inPools(netip.PrefixFrom(a, a.BitLen()), pools) {
			return n, fmt.Errorf("network %s: tunnel address %v is in none of its pools %v", dockerid.Short(n.ID), a, pools)
		}
		tunnels = append(tunnels, a)
	}
	slices.SortFunc(tunnels, netip.Addr.Compare)
	n.Tunnels = tunnels
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, m := range o.networks {
		if m.ID != n.ID && m.VNI == n.VNI {
			return n, fmt.Errorf("network %s: VNI %d is already used by network %s on this host", dockerid.Short(n.ID), n.VNI, dockerid.Short(m.ID))
		}
	}
	return n, nil
}

// ensureDevice creates pnx<VNI> or checks it, flannel's ensureLink: a
// device with the right VNI, port, local address and underlay interface is
// kept (recreating it would drop traffic and every entry on it), its MTU,
// MAC and state adjusted in place; any other device of that name is
// replaced. It reports whether the device was (re)created. Called with kmu.
//
//	ip link add pnxV type vxlan id V local U dev UDEV dstport P nolearning
//	ip link set pnxV mtu M address VTEPMAC up
func (o *Overlay) ensureDevice(n Network) (bool, error) {
	name := DeviceName(n.VNI)
	ul, err := o.k.NL.LinkByName(o.underlay.Dev)
	if err != nil {
		return false, fmt.Errorf("underlay interface %s of VXLAN device %s: %w", o.underlay.Dev, name, err)
	}
	want := &netlink.Vxlan{
		LinkAttrs:    netlink.LinkAttrs{Name: name, MTU: n.MTU, HardwareAddr: VTEPMAC(o.host, n.VNI)},
		VxlanId:      n.VNI,
		VtepDevIndex: ul.Attrs().Index,
		SrcAddr:      o.underlay.Addr.AsSlice(),
		Port:         o.port,
		Learning:     false,
	}
	created := false
	l, err := o.k.NL.LinkByName(name)
	switch {
	case link.IsNotFound(err):
		if l, err = o.createDevice(want); err != nil {
			return false, err
		}
		created = true
	case err != nil:
		return false, fmt.Errorf("look up VXLAN device %s: %w", name, err)
	default:
		if why := incompatible(l, want); why != "" {
			o.log.Warn("replacing VXLAN device", "iface", name, "vni", n.VNI, "reason", why)
			if err := o.k.NL.LinkDel(l); err != nil && !link.IsNotFound(err) {
				return false, fmt.Errorf("delete mismatching VXLAN device %s (%s): %w", name, why, err)
			}
			if l, err = o.createDevice(want); err != nil {
				return false, err
			}
			created = true
		}
	}
	if l.Attrs().MTU != n.MTU {
		if err := o.k.NL.LinkSetMTU(l, n.MTU); err != nil {
			return created, fmt.Errorf("ip link set %s mtu %d: %w", name, n.MTU, err)
		}
	}
	if !slices.Equal(l.Attrs().HardwareAddr, want.HardwareAddr) {
		if err := o.k.NL.LinkSetHardwareAddr(l, want.HardwareAddr); err != nil {
			return created, fmt.Errorf("ip link set %s address %s: %w", name, want.HardwareAddr, err)
		}
	}
	if hasV6(n.Pools) {
		// IPv6 forwarding out of a device needs IPv6 enabled on it.
		if err := o.sysctl("net/ipv6/conf/"+name+"/disable_ipv6", "0"); err != nil {
			return created, fmt.Errorf("VXLAN device %s: %w", name, err)
		}
	}
	if l.Attrs().Flags&net.FlagUp == 0 {
		if err := o.k.NL.LinkSetUp(l); err != nil {
			return created, fmt.Errorf("ip link set %s up: %w", name, err)
		}
	}
	if created {
		o.applied = nil // the new device is empty: the next pass must fill it
		o.log.Info("VXLAN device created", "iface", name, "vni", n.VNI, "local", o.underlay.Addr,
			"dev", o.underlay.Dev, "port", o.port, "mtu", n.MTU, "mac", want.HardwareAddr)
	}
	return created, nil
}

// createDevice adds the VXLAN device and reads it back:
// ip link add pnxV address MAC mtu M type vxlan id V local U dev UDEV dstport P nolearning.
func (o *Overlay) createDevice(want *netlink.Vxlan) (netlink.Link, error) {
	name := want.Name
	if err := o.k.NL.LinkAdd(want); err != nil && !errors.Is(err, unix.EEXIST) {
		return nil, fmt.Errorf("ip link add %s type vxlan id %d: %w", name, want.VxlanId, err)
	}
	l, err := o.k.NL.LinkByName(name)
	if err != nil {
		return nil, fmt.Errorf("VXLAN device %s after create: %w", name, err)
	}
	if why := incompatible(l, want); why != "" {
		return nil, fmt.Errorf("VXLAN device %s was created concurrently with other settings: %s", name, why)
	}
	return l, nil
}

// incompatible says why l cannot serve as want ("" if it can). MTU, MAC
// and up/down are fixed in place and do not count.
func incompatible(l netlink.Link, want *netlink.Vxlan) string {
	vx, ok := l.(*netlink.Vxlan)
	switch {
	case !ok:
		return "is a " + l.Type() + ", not a vxlan device"
	case vx.VxlanId != want.VxlanId:
		return fmt.Sprintf("VNI %d, want %d", vx.VxlanId, want.VxlanId)
	case vx.Port != want.Port:
		return fmt.Sprintf("UDP port %d, want %d", vx.Port, want.Port)
	case !vx.SrcAddr.Equal(want.SrcAddr):
		return fmt.Sprintf("local address %v, want %v", vx.SrcAddr, want.SrcAddr)
	case vx.VtepDevIndex != want.VtepDevIndex:
		return fmt.Sprintf("underlay link index %d, want %d", vx.VtepDevIndex, want.VtepDevIndex)
	case vx.Learning:
		return "learning on"
	case len(vx.Group) > 0 && !vx.Group.IsUnspecified():
		return fmt.Sprintf("group/remote %v set", vx.Group)
	}
	return ""
}

// sameNetwork reports whether a re-registration changes nothing.
func sameNetwork(a, b Network) bool {
	return a.ID == b.ID && a.VNI == b.VNI && a.Bridge == b.Bridge && a.MTU == b.MTU &&
		a.DirectRouting == b.DirectRouting && slices.Equal(a.Pools, b.Pools) && slices.Equal(a.Tunnels, b.Tunnels)
}

func hasV6(pools []netip.Prefix) bool {
	return slices.ContainsFunc(pools, func(p netip.Prefix) bool { return p.Addr().Is6() })
}

func inPools(dst netip.Prefix, pools []netip.Prefix) bool {
	for _, p := range pools {
		if p.Bits() <= dst.Bits() && p.Contains(dst.Addr()) {
			return true
		}
	}
	return false
}

func prefixToIPNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

func ipNetToPrefix(n *net.IPNet) (netip.Prefix, bool) {
	if n == nil {
		return netip.Prefix{}, false
	}
	a, ok := netip.AddrFromSlice(n.IP)
	if !ok {
		return netip.Prefix{}, false
	}
	a = a.Unmap()
	ones, bits := n.Mask.Size()
	if bits != a.BitLen() {
		return netip.Prefix{}, false
	}
	return netip.PrefixFrom(a, ones).Masked(), true
}
