package cluster

import (
	"net/netip"

	"github.com/podnet/podnet/internal/fault"
	"github.com/podnet/podnet/netspec"
	"github.com/podnet/podnet/store"
)

// SetHostNetworks makes CreateNetwork refuse subnets that overlap a
// network of this host's interfaces too, not only reserved ranges; host is
// this host's name (its parent may be a per-host one). Every other host
// checks its own interfaces when it creates its Docker network (IPAM
// RequestPool, then the driver); checking the defining host early catches
// the common mistake (the LAN's own subnet for a bridge or vxlan network)
// before anything is recorded.
func (m *Manager) SetHostNetworks(host string, f func() ([]netspec.HostNetwork, error)) {
	m.host, m.hostNets = host, f
}

// parentHere is a macvlan/ipvlan definition's parent on this host ("" for
// other modes).
func (m *Manager) parentHere(def store.LogicalNetwork) string {
	if !netspec.IsLAN(def.Mode) {
		return ""
	}
	if p, ok := def.Parents[m.host]; ok {
		return p
	}
	return def.Options[netspec.OptParent]
}

// checkSubnetSafe applies netspec.CheckSafeBeside, the rule IPAM and the
// driver apply to every --subnet, to a subnet of a definition: parent (a
// macvlan/ipvlan network's parent on this host) shares its LAN's subnet
// by design.
func (m *Manager) checkSubnetSafe(p netip.Prefix, parent string) error {
	var host []netspec.HostNetwork
	if m.hostNets != nil {
		nets, err := m.hostNets()
		if err != nil {
			return inputf("subnet %s: cannot read this host's interface addresses to check it: %v", p, err)
		}
		host = nets
	}
	if err := netspec.CheckSafeBeside(p, host, parent); err != nil {
		return fault.Invalid(err)
	}
	return nil
}
