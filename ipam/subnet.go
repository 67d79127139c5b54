package ipam

import (
	"fmt"
	"slices"

	"github.com/podnet/podnet/netspec"
)

// optParent is the one --ipam-opt podnet takes: the interface whose own
// network the subnet is (a macvlan or ipvlan network on the LAN), which
// lifts the refusal of subnets overlapping that interface's networks.
const optParent = "parent"

// poolOpts are the --ipam-opt values RequestPool understands.
type poolOpts struct {
	parent string
}

// poolOptions validates --ipam-opt: only parent=IFACE is known.
func poolOptions(opts map[string]string) (poolOpts, error) {
	var o poolOpts
	var unknown []string
	for k, v := range opts {
		if k != optParent {
			unknown = append(unknown, k)
			continue
		}
		if netspec.CheckIfName(v) != nil {
			return o, fmt.Errorf("ipam option %s=%q: want an interface name of this host", optParent, v)
		}
		o.parent = v
	}
	if len(unknown) > 0 {
		slices.Sort(unknown)
		return o, fmt.Errorf("unsupported ipam option %s: podnet takes only --ipam-opt %s=IFACE (remove it)",
			quoteAll(unknown), optParent)
	}
	return o, nil
}

// checkAddressSpace accepts the two names podnet reports to Docker (and
// "", which older clients send): anything else is someone else's space or
// garbage, and would otherwise end up in logs and keys unchecked.
func checkAddressSpace(s string) error {
	switch s {
	case "", netspec.LocalAddressSpace, netspec.GlobalAddressSpace:
		return nil
	}
	return fmt.Errorf("unknown address space %q: podnet's are %q and %q (use --ipam-driver podnet with -d podnet)",
		s, netspec.LocalAddressSpace, netspec.GlobalAddressSpace)
}

// checkHostNetworks refuses a --subnet that overlaps a network of this
// host's interfaces (netspec.CheckSafe), except the parent's own when
// --ipam-opt parent=IFACE names it.
func (m *IPAM) checkHostNetworks(req poolRequest) error {
	if !req.subnet.IsValid() || m.hostNets == nil {
		return nil
	}
	nets, err := m.hostNets()
	if err != nil {
		return fmt.Errorf("subnet %s: read this host's interface addresses to check it: %w", req.subnet, err)
	}
	err = netspec.CheckSafeBeside(req.subnet, nets, req.parent)
	for _, h := range nets {
		if err != nil && h.Iface != req.parent && h.Addr.IsValid() && h.Addr.Masked().Overlaps(req.subnet) {
			return fmt.Errorf("%w (for a macvlan or ipvlan network with -o parent=%s, add --ipam-opt %s=%s)", err, h.Iface, optParent, h.Iface)
		}
	}
	return err
}
