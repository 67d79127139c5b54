package overlay

import (
	"fmt"
	"net/netip"
	"slices"

	"github.com/podnet/podnet/internal/link"
)

// This host's tunnel addresses on podnet's devices (see "This host's own
// traffic" in doc.go): each on the device its pool's routes to other
// hosts leave by, added before the routes that name it as their source
// (the kernel refuses a source that is no local address) and removed
// after them. The devices' addresses are podnet's, IPv6 link-local ones
// aside: a pass removes any other it does not want (a network removed
// under encryption, encryption switched on or off, a tunnel address
// released).

// addrDevices are the devices whose addresses a full pass owns: every
// registered network's VXLAN device and the WireGuard device.
func (p *program) addrDevices() []string {
	devs := map[string]bool{}
	for dev := range p.want.devices {
		devs[dev] = true
	}
	for dev := range p.want.addrs {
		devs[dev] = true
	}
	if p.o.wg != nil {
		devs[p.o.wg.Name()] = true
	}
	return sortedKeys(devs)
}

// addAddrs adds the tunnel addresses a device lacks:
// ip addr replace T/32 dev DEV noprefixroute (nodad for IPv6).
func (p *program) addAddrs() {
	for _, dev := range sortedKeys(p.want.addrs) {
		idx := p.ifindex[dev]
		if idx == 0 {
			continue
		}
		have, err := p.nk.listAddrs(idx)
		if err != nil {
			p.errs = append(p.errs, err)
			continue
		}
		for _, a := range sortedAddrs(p.want.addrs[dev]) {
			if slices.Contains(have, netip.PrefixFrom(a, a.BitLen())) {
				continue
			}
			if a.Is6() {
				// A device with IPv6 disabled takes no IPv6 address.
				if !p.do(p.o.sysctl("net/ipv6/conf/"+dev+"/disable_ipv6", "0")) {
					continue
				}
			}
			if p.do(p.nk.addAddr(idx, a)) {
				p.changes.AddrsAdded++
				p.o.log.Info("tunnel address added", "iface", dev, "address", a)
			}
		}
	}
}

// deleteAddrs removes the addresses of podnet's devices nobody wants:
// ip addr del A/LEN dev DEV.
func (p *program) deleteAddrs() {
	for _, dev := range p.addrDevices() {
		idx := p.ifindex[dev]
		if idx == 0 {
			continue
		}
		have, err := p.nk.listAddrs(idx)
		if err != nil {
			p.errs = append(p.errs, err)
			continue
		}
		for _, a := range have {
			if a.IsSingleIP() && p.want.addrs[dev][a.Addr()] {
				continue
			}
			if p.do(p.nk.delAddr(idx, a)) {
				p.changes.AddrsDeleted++
				p.o.log.Info("address removed", "iface", dev, "address", a)
			}
		}
	}
}

// removeTunnels takes a removed network's tunnel addresses off the
// devices that stay (RemoveNetwork): ip addr del T/LEN dev DEV. A
// missing device or address is no error (a delete tolerates absence).
func removeTunnels(nk nlKernel, tunnels []netip.Addr, devs []string) []error {
	var errs []error
	for _, dev := range devs {
		l, err := nk.h.LinkByName(dev)
		if link.IsNotFound(err) {
			continue
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("remove tunnel addresses from %s: %w", dev, err))
			continue
		}
		for _, a := range tunnels {
			if err := nk.delAddr(l.Attrs().Index, netip.PrefixFrom(a, a.BitLen())); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errs
}
