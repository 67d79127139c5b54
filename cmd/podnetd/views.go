package main

import (
	"github.com/podnet/podnet/admin"
	"github.com/podnet/podnet/store"
)

// The admin API answers with admin's wire types; these copy this host's
// records into them (their JSON is the records' own: views_test.go).

func networkView(n store.Network) admin.Network {
	return admin.Network{ID: n.ID, Host: n.Host, Mode: n.Mode, Bridge: n.Bridge, IPv4: subnetViews(n.IPv4),
		IPv6: subnetViews(n.IPv6), MTU: n.MTU, Internal: n.Internal, Masquerade: n.Masquerade, VNI: n.VNI,
		Options: n.Options, Created: n.Created}
}

func subnetViews(subs []store.Subnet) []admin.Subnet {
	if subs == nil {
		return nil
	}
	out := make([]admin.Subnet, len(subs))
	for i, s := range subs {
		out[i] = admin.Subnet{Pool: s.Pool, Gateway: s.Gateway}
	}
	return out
}

func endpointView(e store.Endpoint) admin.Endpoint {
	v := admin.Endpoint{ID: e.ID, Network: e.Network, Host: e.Host, IPv4: e.IPv4, IPv6: e.IPv6, MAC: e.MAC,
		HostVeth: e.HostVeth, PeerVeth: e.PeerVeth, Created: e.Created}
	if c := e.CNI; c != nil {
		v.CNI = &admin.CNIAttachment{Network: c.Network, ContainerID: c.ContainerID, IfName: c.IfName, NetNS: c.NetNS}
	}
	for _, p := range e.Ports {
		v.Ports = append(v.Ports, admin.PortMapping{Proto: p.Proto, HostIP: p.HostIP, HostPort: p.HostPort,
			ContainerIP: p.ContainerIP, ContainerPort: p.ContainerPort})
	}
	return v
}
