package driver

import (
	"fmt"
	"net/netip"
	"sort"
	"strconv"
	"strings"

	"github.com/docker/go-plugins-helpers/network"
)

// Option keys podnet understands in `docker network create -o`.
const (
	optMode        = "mode"
	optMTU         = "mtu"
	optDockerMTU   = "com.docker.network.driver.mtu"
	optParent      = "parent"
	optMacvlanMode = "macvlan_mode"
	optIpvlanMode  = "ipvlan_mode"
	optMasquerade  = "podnet.masquerade"
	optVNI         = "podnet.vni"
	optDirect      = "podnet.direct-routing"

	labelGeneric  = "com.docker.network.generic"
	labelIPv6     = "com.docker.network.enable_ipv6"
	labelInternal = "com.docker.network.internal"
	labelPortmap  = "com.docker.network.portmap"
)

// Modes.
const (
	ModeBridge  = "bridge"
	ModeNone    = "none"
	ModeVXLAN   = "vxlan"
	ModeMacvlan = "macvlan"
	ModeIpvlan  = "ipvlan"
)

// knownOptions maps every accepted -o key to the modes it applies to
// (nil = all).
var knownOptions = map[string][]string{
	optMode:        nil,
	optMTU:         {ModeBridge, ModeVXLAN, ModeMacvlan, ModeIpvlan},
	optDockerMTU:   {ModeBridge, ModeVXLAN, ModeMacvlan, ModeIpvlan},
	optMasquerade:  {ModeBridge, ModeVXLAN},
	optParent:      {ModeMacvlan, ModeIpvlan},
	optMacvlanMode: {ModeMacvlan},
	optIpvlanMode:  {ModeIpvlan},
	optIpvlanFlag:  {ModeIpvlan},
	optHostAccess:  {ModeMacvlan, ModeIpvlan},
	optVNI:         {ModeVXLAN},
	optDirect:      {ModeVXLAN},
}

// netOptions is a validated CreateNetwork request.
type netOptions struct {
	Mode       string
	MTU        int // 0 = not given: inherited or the mode's default
	VNI        int // 0 = not given
	Direct     bool
	Masquerade bool
	Internal   bool
	IPv6       bool
	V4, V6     []subnet
	// Raw keeps the user's -o map for the record.
	Raw map[string]string
}

type subnet struct {
	Pool    netip.Prefix
	Gateway netip.Prefix // address with the pool's mask; invalid if none
}

// parseOptions validates everything in a CreateNetwork request before any
// kernel or etcd change. supported lists the modes this build implements.
func parseOptions(r *network.CreateNetworkRequest, supported []string) (*netOptions, error) {
	o := &netOptions{Mode: ModeBridge, Masquerade: true, Raw: map[string]string{}}
	if gen, ok := r.Options[labelGeneric]; ok && gen != nil {
		m, ok := gen.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("driver options have an unexpected shape %T", gen)
		}
		for k, v := range m {
			s, ok := v.(string)
			if !ok {
				s = fmt.Sprint(v)
			}
			o.Raw[k] = s
		}
	}
	if v, ok := o.Raw[optMode]; ok {
		o.Mode = strings.ToLower(strings.TrimSpace(v))
	}
	if !isKnownMode(o.Mode) {
		return nil, fmt.Errorf("unknown mode %q: use one of bridge, vxlan, macvlan, ipvlan, none", o.Raw[optMode])
	}
	if !contains(supported, o.Mode) {
		return nil, fmt.Errorf("mode %q is not available in this podnetd (available: %s)", o.Mode, strings.Join(supported, ", "))
	}
	for _, k := range sortedKeys(o.Raw) {
		modes, ok := knownOptions[k]
		if !ok {
			return nil, fmt.Errorf("unknown option %q (podnet understands: %s)", k, strings.Join(sortedKeys(knownOptions), ", "))
		}
		if modes != nil && !contains(modes, o.Mode) {
			return nil, fmt.Errorf("option %q does not apply to mode %s", k, o.Mode)
		}
	}
	if err := o.parseMTU(); err != nil {
		return nil, err
	}
	if err := o.parseFlags(); err != nil {
		return nil, err
	}
	if v, ok := o.Raw[optVNI]; ok {
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil || n < 1 || n > 1<<24-1 {
			return nil, fmt.Errorf("option %s=%q: a VNI is a number from 1 to 16777215", optVNI, v)
		}
		o.VNI = n
	}
	o.Internal = r.Options[labelInternal] == true
	o.IPv6 = r.Options[labelIPv6] == true
	if err := checkLANOptions(o.Mode, o.Raw, o.Internal); err != nil {
		return nil, err
	}
	var err error
	if o.V4, err = parseIPAMData(r.IPv4Data, false); err != nil {
		return nil, err
	}
	if o.V6, err = parseIPAMData(r.IPv6Data, true); err != nil {
		return nil, err
	}
	if len(o.V4) == 0 && len(o.V6) == 0 && o.Mode != ModeNone {
		return nil, fmt.Errorf("network has no subnet: create it with --ipam-driver podnet")
	}
	return o, nil
}

// parseFlags reads the boolean podnet.* options.
func (o *netOptions) parseFlags() error {
	o.Masquerade, o.Direct = true, false
	for key, dst := range map[string]*bool{optMasquerade: &o.Masquerade, optDirect: &o.Direct} {
		if v, ok := o.Raw[key]; ok {
			b, err := strconv.ParseBool(v)
			if err != nil {
				return fmt.Errorf("option %s=%q: want true or false", key, v)
			}
			*dst = b
		}
	}
	return nil
}

func (o *netOptions) parseMTU() error {
	v, ok := o.Raw[optDockerMTU]
	key := optDockerMTU
	if alias, aok := o.Raw[optMTU]; aok {
		if ok && alias != v {
			return fmt.Errorf("options %s=%s and %s=%s disagree; give one", optMTU, alias, optDockerMTU, v)
		}
		v, ok, key = alias, true, optMTU
	}
	if !ok {
		return nil
	}
	mtu, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil {
		return fmt.Errorf("option %s=%q is not a number", key, v)
	}
	if mtu < 68 || mtu > 65535 {
		return fmt.Errorf("option %s=%d is out of range: an MTU must be between 68 and 65535", key, mtu)
	}
	o.MTU = mtu
	return nil
}

// parseIPAMData checks that each subnet came from podnet's IPAM and parses
// pool and gateway.
func parseIPAMData(data []*network.IPAMData, v6 bool) ([]subnet, error) {
	var out []subnet
	for _, d := range data {
		if d == nil {
			continue
		}
		if d.AddressSpace != addressSpaceLocal && d.AddressSpace != addressSpaceGlobal {
			return nil, fmt.Errorf("subnet %s was allocated by another IPAM driver (address space %q): podnet networks need --ipam-driver podnet (the same name as -d)", d.Pool, d.AddressSpace)
		}
		p, err := netip.ParsePrefix(d.Pool)
		if err != nil {
			return nil, fmt.Errorf("malformed pool %q from Docker: %w", d.Pool, err)
		}
		if p.Addr().Is6() != v6 {
			return nil, fmt.Errorf("pool %s is in the wrong address family", p)
		}
		s := subnet{Pool: p.Masked()}
		if d.Gateway != "" {
			g, err := netip.ParsePrefix(d.Gateway)
			if err != nil {
				return nil, fmt.Errorf("malformed gateway %q for subnet %s: %w", d.Gateway, p, err)
			}
			if !s.Pool.Contains(g.Addr()) {
				return nil, fmt.Errorf("gateway %s is outside subnet %s", g.Addr(), s.Pool)
			}
			s.Gateway = netip.PrefixFrom(g.Addr(), s.Pool.Bits())
		}
		out = append(out, s)
	}
	return out, nil
}

// Address spaces reported by podnet's IPAM (mirrors plugin's constants,
// which driver cannot import).
const (
	addressSpaceLocal  = "podnet-local"
	addressSpaceGlobal = "podnet-global"
)

func isKnownMode(m string) bool {
	return contains([]string{ModeBridge, ModeNone, ModeVXLAN, ModeMacvlan, ModeIpvlan}, m)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}
