package driver

import (
	"fmt"

	"github.com/podnet/podnet/netspec"
	"github.com/vishvananda/netlink"
)

var (
	ipvlanKernelModes = map[string]netlink.IPVlanMode{
		netspec.IpvlanL2: netlink.IPVLAN_MODE_L2, netspec.IpvlanL3: netlink.IPVLAN_MODE_L3, netspec.IpvlanL3S: netlink.IPVLAN_MODE_L3S,
	}
	ipvlanKernelFlags = map[string]netlink.IPVlanFlag{
		netspec.IpvlanFlagBridge: netlink.IPVLAN_FLAG_BRIDGE, netspec.IpvlanFlagPrivate: netlink.IPVLAN_FLAG_PRIVATE,
		netspec.IpvlanFlagVEPA: netlink.IPVLAN_FLAG_VEPA,
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
