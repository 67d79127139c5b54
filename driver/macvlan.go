package driver

import (
	"fmt"

	"github.com/podnet/podnet/netspec"
	"github.com/vishvananda/netlink"
)

var macvlanKernelModes = map[string]netlink.MacvlanMode{
	netspec.MacvlanBridge:   netlink.MACVLAN_MODE_BRIDGE,
	netspec.MacvlanPrivate:  netlink.MACVLAN_MODE_PRIVATE,
	netspec.MacvlanVEPA:     netlink.MACVLAN_MODE_VEPA,
	netspec.MacvlanPassthru: netlink.MACVLAN_MODE_PASSTHRU,
}

// macvlanLink describes a macvlan sub-interface (ip link add NAME link
// PARENT type macvlan mode MODE): its own MAC on the parent's segment.
func macvlanLink(attrs netlink.LinkAttrs, mode string) netlink.Link {
	return &netlink.Macvlan{LinkAttrs: attrs, Mode: macvlanKernelModes[mode]}
}

// macvlanModeName is the option spelling of a kernel macvlan mode.
func macvlanModeName(m netlink.MacvlanMode) string {
	for name, km := range macvlanKernelModes {
		if km == m {
			return name
		}
	}
	return fmt.Sprintf("mode %d", m)
}
