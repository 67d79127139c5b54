package cniattach

import (
	"net/netip"

	"github.com/podnet/podnet/admin"
	"github.com/podnet/podnet/store"
)

// result describes an attachment for the plugin: the interfaces, the
// addresses with their subnet's mask and gateway (the same anycast
// gateway on every host), the default routes through the gateways (none
// on an --internal network: it reaches nothing outside), and the cluster
// DNS.
func (s *Service) result(n store.Network, ep *store.Endpoint) admin.CNIResult {
	res := admin.CNIResult{Endpoint: ep.ID, HostIface: ep.HostVeth, PeerIface: ep.PeerVeth, MAC: ep.MAC, MTU: n.MTU, DNS: s.cfg.DNS}
	for _, fam := range []struct {
		addr netip.Prefix
		subs []store.Subnet
		def  netip.Prefix
	}{
		{ep.IPv4, n.IPv4, netip.MustParsePrefix("0.0.0.0/0")},
		{ep.IPv6, n.IPv6, netip.MustParsePrefix("::/0")},
	} {
		if !fam.addr.IsValid() {
			continue
		}
		gw := gatewayOf(fam.subs, fam.addr.Addr())
		res.IPs = append(res.IPs, admin.CNIAddress{Address: fam.addr, Gateway: gw})
		if gw.IsValid() && !n.Internal {
			res.Routes = append(res.Routes, admin.CNIRoute{Dst: fam.def, GW: gw})
		}
	}
	for _, p := range ep.Ports {
		res.Ports = append(res.Ports, admin.PortMapping{Proto: p.Proto, HostIP: p.HostIP, HostPort: p.HostPort,
			ContainerIP: p.ContainerIP, ContainerPort: p.ContainerPort})
	}
	return res
}

// gatewayOf is the gateway (plain IP) of the subnet holding a, if any.
func gatewayOf(subs []store.Subnet, a netip.Addr) netip.Addr {
	for _, s := range subs {
		if s.Pool.Masked().Contains(a) && s.Gateway.IsValid() {
			return s.Gateway.Addr()
		}
	}
	return netip.Addr{}
}
