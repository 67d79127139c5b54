package driver

import (
	"fmt"
	"strconv"
	"strings"
)

// Values of the macvlan/ipvlan options, with Docker's option names and
// spellings. The checks below are pure (no kernel, no etcd) so that every
// entry point — docker network create, podnetctl network create — runs
// the same ones.
const (
	optIpvlanFlag = "ipvlan_flag"
	optHostAccess = "podnet.host-access"

	macvlanBridge   = "bridge"
	macvlanPrivate  = "private"
	macvlanVEPA     = "vepa"
	macvlanPassthru = "passthru"

	ipvlanL2  = "l2"
	ipvlanL3  = "l3"
	ipvlanL3S = "l3s"

	ipvlanFlagBridge  = "bridge"
	ipvlanFlagPrivate = "private"
	ipvlanFlagVEPA    = "vepa"

	maxVLANID = 4094
)

var (
	macvlanModes = []string{macvlanBridge, macvlanPrivate, macvlanVEPA, macvlanPassthru}
	ipvlanModes  = []string{ipvlanL2, ipvlanL3, ipvlanL3S}
	ipvlanFlags  = []string{ipvlanFlagBridge, ipvlanFlagPrivate, ipvlanFlagVEPA}
)

// isLANMode reports whether mode puts containers directly on a parent
// interface's segment (macvlan, ipvlan).
func isLANMode(mode string) bool { return mode == ModeMacvlan || mode == ModeIpvlan }

// lanDefaults are the values of the cluster-wide macvlan/ipvlan options a
// request leaves out. They are recorded in a new definition so that a host
// giving the default explicitly agrees with one that left it out.
func lanDefaults(mode string) map[string]string {
	switch mode {
	case ModeMacvlan:
		return map[string]string{optMacvlanMode: macvlanBridge, optHostAccess: "false"}
	case ModeIpvlan:
		return map[string]string{optIpvlanMode: ipvlanL2, optIpvlanFlag: ipvlanFlagBridge, optHostAccess: "false"}
	}
	return nil
}

// lanSetting returns option key of opts, or its default for mode.
func lanSetting(mode string, opts map[string]string, key string) string {
	if v, ok := opts[key]; ok {
		return strings.ToLower(strings.TrimSpace(v))
	}
	return lanDefaults(mode)[key]
}

// checkLANOptions validates the macvlan/ipvlan options of a network:
// parent name (IFACE, or IFACE.VLAN for an 802.1q sub-interface), modes,
// flags and podnet.host-access, and the combinations the kernel or the
// design refuse. internal is Docker's --internal.
func checkLANOptions(mode string, opts map[string]string, internal bool) error {
	if !isLANMode(mode) {
		return nil
	}
	if v, ok := opts[optParent]; ok {
		if strings.TrimSpace(v) == "" {
			return fmt.Errorf("option %s is empty: name the interface on the LAN (e.g. -o parent=eth0, or -o parent=eth0.100 for VLAN 100), or leave the option out for an isolated segment", optParent)
		}
		if _, _, err := parseParent(v); err != nil {
			return err
		}
		if internal {
			return fmt.Errorf("--internal and -o parent=%s exclude each other: an internal %s network is an isolated segment without a parent (as Docker's); drop one of them", v, mode)
		}
	}
	var err error
	if mode == ModeMacvlan {
		err = checkChoice(optMacvlanMode, lanSetting(mode, opts, optMacvlanMode), macvlanModes)
	} else {
		err = checkChoice(optIpvlanMode, lanSetting(mode, opts, optIpvlanMode), ipvlanModes)
		if err == nil {
			err = checkChoice(optIpvlanFlag, lanSetting(mode, opts, optIpvlanFlag), ipvlanFlags)
		}
	}
	if err != nil {
		return err
	}
	hostAccess, err := parseHostAccess(opts)
	if err != nil {
		return err
	}
	if !hostAccess {
		return nil
	}
	// The shim is one more sub-interface of the parent: it reaches the
	// containers only where sub-interfaces talk to each other.
	switch {
	case mode == ModeMacvlan && lanSetting(mode, opts, optMacvlanMode) == macvlanPassthru:
		return fmt.Errorf("macvlan_mode=passthru gives the whole parent to one container: it cannot have a host-access shim (%s=true)", optHostAccess)
	case mode == ModeMacvlan && lanSetting(mode, opts, optMacvlanMode) != macvlanBridge:
		return fmt.Errorf("host access needs macvlan_mode=bridge: in %s mode the shim cannot talk to the containers", lanSetting(mode, opts, optMacvlanMode))
	case mode == ModeIpvlan && lanSetting(mode, opts, optIpvlanFlag) != ipvlanFlagBridge:
		return fmt.Errorf("host access needs ipvlan_flag=bridge: with %s the shim cannot talk to the containers", lanSetting(mode, opts, optIpvlanFlag))
	}
	return nil
}

func checkChoice(key, v string, allowed []string) error {
	if contains(allowed, v) {
		return nil
	}
	return fmt.Errorf("option %s=%q is unknown: use one of %s", key, v, strings.Join(allowed, ", "))
}

// parseHostAccess reads podnet.host-access (default false).
func parseHostAccess(opts map[string]string) (bool, error) {
	v, ok := opts[optHostAccess]
	if !ok {
		return false, nil
	}
	b, err := strconv.ParseBool(strings.TrimSpace(v))
	if err != nil {
		return false, fmt.Errorf("option %s=%q: want true or false", optHostAccess, v)
	}
	return b, nil
}

// parseParent checks an interface name and splits IFACE.VLAN: vid is 0 for
// a plain interface name. A name ending in ".<digits>" is a VLAN parent
// (Docker's convention), and its VLAN id must be 1-4094.
func parseParent(name string) (base string, vid int, err error) {
	name = strings.TrimSpace(name)
	if err := checkIfName(name); err != nil {
		return "", 0, fmt.Errorf("parent %q: %w", name, err)
	}
	i := strings.LastIndexByte(name, '.')
	if i <= 0 || i == len(name)-1 {
		return name, 0, nil
	}
	digits := name[i+1:]
	if strings.Trim(digits, "0123456789") != "" {
		return name, 0, nil
	}
	n, err := strconv.Atoi(digits)
	if err != nil || n < 1 || n > maxVLANID {
		return "", 0, fmt.Errorf("parent %q: VLAN id %s is out of range 1-%d", name, digits, maxVLANID)
	}
	return name[:i], n, nil
}

// checkIfName applies the kernel's rules for interface names.
func checkIfName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("empty interface name")
	case len(name) > 15:
		return fmt.Errorf("interface names have at most 15 characters")
	case name == "." || name == "..":
		return fmt.Errorf("not an interface name")
	case strings.ContainsAny(name, "/: \t\n"):
		return fmt.Errorf("interface names contain no '/', ':' or white space")
	}
	return nil
}

// CheckLANOptions is checkLANOptions for other entry points (podnetctl
// network create through podnetd's admin API).
func CheckLANOptions(mode string, opts map[string]string, internal bool) error {
	return checkLANOptions(mode, opts, internal)
}
