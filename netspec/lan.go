package netspec

import (
	"slices"
	"strconv"
	"strings"
)

// macvlan and ipvlan: Docker's option names, values and defaults.
const (
	MacvlanBridge   = "bridge"
	MacvlanPrivate  = "private"
	MacvlanVEPA     = "vepa"
	MacvlanPassthru = "passthru"

	IpvlanL2  = "l2"
	IpvlanL3  = "l3"
	IpvlanL3S = "l3s"

	IpvlanFlagBridge  = "bridge"
	IpvlanFlagPrivate = "private"
	IpvlanFlagVEPA    = "vepa"

	// MaxVLANID is the highest 802.1q VLAN id (0 and 4095 are reserved).
	MaxVLANID = 4094
	// MaxIfNameLen is the longest interface name Linux accepts (IFNAMSIZ-1).
	MaxIfNameLen = 15
)

var (
	lanModes     = []string{ModeMacvlan, ModeIpvlan}
	macvlanModes = []string{MacvlanBridge, MacvlanPrivate, MacvlanVEPA, MacvlanPassthru}
	ipvlanModes  = []string{IpvlanL2, IpvlanL3, IpvlanL3S}
	ipvlanFlags  = []string{IpvlanFlagBridge, IpvlanFlagPrivate, IpvlanFlagVEPA}
)

// IsLAN reports whether mode puts containers directly on a parent
// interface's segment (macvlan, ipvlan).
func IsLAN(mode string) bool { return slices.Contains(lanModes, mode) }

// L3Routed reports whether the options are those of an ipvlan network in
// l3 or l3s mode: its containers' default route is the device itself, with
// no gateway, as in Docker.
func (o Options) L3Routed() bool {
	return o.Mode == ModeIpvlan && (o.IpvlanMode == IpvlanL3 || o.IpvlanMode == IpvlanL3S)
}

func setParent(o *Options, key, v string) error {
	if strings.TrimSpace(v) == "" {
		return invalidf("option %s needs a value: name the interface on the LAN (e.g. -o parent=eth0, or -o parent=eth0.100 for VLAN 100), or leave the option out for an isolated segment", key)
	}
	if _, _, err := ParseParent(v); err != nil {
		return err
	}
	o.Parent = strings.TrimSpace(v)
	return nil
}

// ParseParent checks a parent interface name and splits IFACE.VLAN: vid is
// 0 for a plain interface name. A name ending in ".<digits>" is a VLAN
// parent (Docker's convention), and its VLAN id must be 1-4094.
func ParseParent(name string) (base string, vid int, err error) {
	name = strings.TrimSpace(name)
	if err := CheckIfName(name); err != nil {
		return "", 0, invalidf("parent %q: %v", name, err)
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
	if err != nil || n < 1 || n > MaxVLANID {
		return "", 0, invalidf("parent %q: VLAN id %s is out of range 1-%d", name, digits, MaxVLANID)
	}
	return name[:i], n, nil
}

// CheckIfName applies the kernel's rules for interface names.
func CheckIfName(name string) error {
	switch {
	case name == "":
		return invalidf("empty interface name")
	case len(name) > MaxIfNameLen:
		return invalidf("interface names have at most %d characters", MaxIfNameLen)
	case name == "." || name == "..":
		return invalidf("not an interface name")
	case strings.ContainsFunc(name, func(c rune) bool { return c == '/' || c == ':' || c <= ' ' || c == 0x7f }):
		return invalidf("interface names contain no '/', ':', white space or control characters")
	}
	return nil
}

// setChoice stores one of allowed (compared trimmed, in lower case).
func setChoice(allowed []string, field func(*Options) *string) func(o *Options, key, v string) error {
	return func(o *Options, key, v string) error {
		c := strings.ToLower(strings.TrimSpace(v))
		if !slices.Contains(allowed, c) {
			return invalidf("option %s=%q is unknown: use one of %s", key, v, strings.Join(allowed, ", "))
		}
		*field(o) = c
		return nil
	}
}

// checkLAN fills in the macvlan/ipvlan defaults left out and refuses the
// combinations the kernel or the design refuse. Host access adds one more
// sub-interface of the parent (the shim), which reaches the containers
// only where sub-interfaces talk to each other.
func checkLAN(o *Options) error {
	switch o.Mode {
	case ModeMacvlan:
		if o.MacvlanMode == "" {
			o.MacvlanMode = options[OptMacvlanMode].def
		}
	case ModeIpvlan:
		if o.IpvlanMode == "" {
			o.IpvlanMode = options[OptIpvlanMode].def
		}
		if o.IpvlanFlag == "" {
			o.IpvlanFlag = options[OptIpvlanFlag].def
		}
	default:
		return nil
	}
	if !o.HostAccess {
		return nil
	}
	switch {
	case o.MacvlanMode == MacvlanPassthru:
		return invalidf("macvlan_mode=passthru gives the whole parent to one container: it cannot have a host-access shim (%s=true)", OptHostAccess)
	case o.Mode == ModeMacvlan && o.MacvlanMode != MacvlanBridge:
		return invalidf("host access needs macvlan_mode=bridge: in %s mode the shim cannot talk to the containers", o.MacvlanMode)
	case o.Mode == ModeIpvlan && o.IpvlanFlag != IpvlanFlagBridge:
		return invalidf("host access needs ipvlan_flag=bridge: with %s the shim cannot talk to the containers", o.IpvlanFlag)
	}
	return nil
}

// checkInternal refuses options that contradict --internal: an internal
// macvlan/ipvlan network is an isolated segment, as Docker's.
func checkInternal(o Options, internal bool) error {
	if internal && IsLAN(o.Mode) && o.Parent != "" {
		return invalidf("--internal and -o parent=%s exclude each other: an internal %s network is an isolated segment without a parent (as Docker's); drop one of them", o.Parent, o.Mode)
	}
	return nil
}
