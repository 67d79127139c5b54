package driver

import (
	"fmt"

	"github.com/vishvananda/netlink"
)

var (
	ipvlanKernelModes = map[string]netlink.IPVlanMode{
		ipvlanL2: netlink.IPVLAN_MODE_L2, ipvlanL3: netlink.IPVLAN_MODE_L3, ipvlanL3S: netlink.IPVLAN_MODE_L3S,
	}
	ipvlanKernelFlags = map[string]netlink.IPVlanFlag{
		ipvlanFlagBridge: netlink.IPVLAN_FLAG_BRIDGE, ipvlanFlagPrivate: netlink.IPVLAN_FLAG_PRIVATE, ipvlanFlagVEPA: netlink.IPVLAN_FLAG_VEPA,
	}
)

// ipvlanLink describes an ipvlan sub-interface (ip link add NAME link
// PARENT type ipvlan mode MODE FLAG): it shares the parent's MAC, and the
// mode and flag belong to the parent's ipvlan port, so every ipvlan
// interface of one parent has the same.
func ipvlanLink(attrs netlink.LinkAttrs, mode, flag string) netlink.Link {
	return &netlink.IPVlan{LinkAttrs: attrs, Mode: ipvlanKernelModes[mode], Flag: ipvlanKernelFlags[flag]}
}

// ipvlanSettings names an existing ipvlan link's mode and flag as options spell them.
func ipvlanSettings(l *netlink.IPVlan) (string, string) {
	mode, flag := fmt.Sprintf("mode %d", l.Mode), fmt.Sprintf("flag %d", l.Flag)
	for name, m := range ipvlanKernelModes {
		if m == l.Mode {
			mode = name
		}
	}
	for name, f := range ipvlanKernelFlags {
		if f == l.Flag {
			flag = name
		}
	}
	return mode, flag
}

// l3Routed reports whether an ipvlan mode routes (l3, l3s): the default
// route is then the device itself and there is no gateway, as in Docker.
func l3Routed(mode string) bool { return mode == ipvlanL3 || mode == ipvlanL3S }
