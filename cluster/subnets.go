package cluster

import (
	"net/netip"

	"github.com/podnet/podnet/netspec"
)

// SetHostNetworks makes CreateNetwork refuse subnets that overlap a
// network of this host's interfaces too, not only reserved ranges. Every
// other host checks its own interfaces when it creates its Docker network
// (IPAM RequestPool); checking the defining host early catches the common
// mistake (the LAN's own subnet) before anything is recorded.
func (m *Manager) SetHostNetworks(f func() ([]netspec.HostNetwork, error)) {
	m.hostNets = f
}

// checkSubnetSafe applies netspec.CheckSafe, the rule IPAM applies to
// every --subnet, to a subnet of a definition.
func (m *Manager) checkSubnetSafe(p netip.Prefix) error {
	var host []netspec.HostNetwork
	if m.hostNets != nil {
		nets, err := m.hostNets()
		if err != nil {
			return inputf("subnet %s: cannot read this host's interface addresses to check it: %v", p, err)
		}
		host = nets
	}
	if err := netspec.CheckSafe(p, host); err != nil {
		return InputError{Err: err}
	}
	return nil
}
