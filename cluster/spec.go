package cluster

import (
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strconv"
	"time"

	"github.com/podnet/podnet/admin"
	"github.com/podnet/podnet/netspec"
	"github.com/podnet/podnet/store"
)

// specOf turns podnetctl's request into netspec's input: the flags --mode,
// --mtu and --vni join the -o options under the names docker network
// create uses (a flag and an option that disagree are refused), and the
// subnet strings are parsed.
func specOf(spec admin.NetworkSpec) (netspec.Spec, error) {
	opts := maps.Clone(spec.Options)
	if opts == nil {
		opts = map[string]string{}
	}
	for _, f := range []struct {
		flag, key, value string
	}{
		{"--mode", netspec.OptMode, spec.Mode},
		{"--mtu", netspec.OptMTU, itoa(spec.MTU)},
		{"--vni", netspec.OptVNI, itoa(spec.VNI)},
		{"--parent", netspec.OptParent, spec.Parent},
	} {
		if f.value == "" {
			continue
		}
		if have, ok := opts[f.key]; ok && have != f.value {
			return netspec.Spec{}, fmt.Errorf("%s %s and -o %s=%s disagree: give one", f.flag, f.value, f.key, have)
		}
		opts[f.key] = f.value
	}
	out := netspec.Spec{Options: opts, Internal: spec.Internal}
	for _, s := range spec.Subnets {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return out, fmt.Errorf("subnet %q: %w", s, err)
		}
		sub := netspec.Subnet{Pool: p}
		if g, ok := spec.Gateways[s]; ok {
			if sub.Gateway, err = netip.ParseAddr(g); err != nil {
				return out, fmt.Errorf("gateway %q of subnet %s: %w", g, s, err)
			}
		}
		if r, ok := spec.IPRanges[s]; ok {
			if sub.IPRange, err = netip.ParsePrefix(r); err != nil {
				return out, fmt.Errorf("ip-range %q of subnet %s: %w", r, s, err)
			}
		}
		out.Subnets = append(out.Subnets, sub)
	}
	return out, nil
}

func itoa(n int) string {
	if n == 0 {
		return ""
	}
	return strconv.Itoa(n)
}

// checkParents checks what only a named macvlan/ipvlan definition has: a
// parent for every host (an isolated segment per host is no cluster-wide
// network) and valid per-host parents.
func checkParents(spec admin.NetworkSpec, n netspec.Network) error {
	if !netspec.IsLAN(n.Mode) {
		if len(spec.Parents) > 0 {
			return fmt.Errorf("--host-parent applies to modes %s, %s only", netspec.ModeMacvlan, netspec.ModeIpvlan)
		}
		return nil
	}
	if n.Parent == "" {
		return fmt.Errorf("mode %s needs --parent IFACE: the interface on the LAN on every host (--host-parent HOST=IFACE where it is named differently)", n.Mode)
	}
	for _, h := range slices.Sorted(maps.Keys(spec.Parents)) {
		if h == "" {
			return fmt.Errorf("--host-parent =%s: name the host (HOST=IFACE)", spec.Parents[h])
		}
		if _, _, err := netspec.ParseParent(spec.Parents[h]); err != nil {
			return fmt.Errorf("--host-parent %s=%s: %w", h, spec.Parents[h], err)
		}
	}
	return nil
}

// definitionOf is the named definition of a validated network. Options
// keeps what every host must agree on (the defaults of those left out
// included, as the driver records them) and a macvlan/ipvlan network's
// parent, which every host's Docker network gets unless parents (host →
// interface) name another; mode, MTU and VNI have fields.
func definitionOf(name string, n netspec.Network, parents map[string]string) store.LogicalNetwork {
	opts := map[string]string{}
	maps.Copy(opts, netspec.SharedDefaults(n.Mode))
	maps.Copy(opts, n.Shared())
	if n.Parent != "" {
		opts[netspec.OptParent] = n.Parent
	}
	if len(opts) == 0 {
		opts = nil
	}
	def := store.LogicalNetwork{Name: name, Mode: n.Mode, MTU: n.MTU, VNI: n.VNI, Options: opts,
		Internal: n.Internal, Parents: parents, Created: time.Now().UTC()}
	for _, s := range n.Subnets {
		def.Subnets = append(def.Subnets, s.Pool)
		def.IPv6 = def.IPv6 || s.Pool.Addr().Is6()
		if s.Gateway.IsValid() {
			if def.Gateways == nil {
				def.Gateways = map[netip.Prefix]netip.Addr{}
			}
			def.Gateways[s.Pool] = s.Gateway
		}
		if s.IPRange.IsValid() {
			if def.IPRanges == nil {
				def.IPRanges = map[netip.Prefix]netip.Prefix{}
			}
			def.IPRanges[s.Pool] = s.IPRange
		}
	}
	return def
}

// NetworkView is a definition as the admin API shows it (no hosts yet).
func NetworkView(d store.LogicalNetwork) admin.NetworkStatus {
	return admin.NetworkStatus{Name: d.Name, Subnets: d.Subnets, Mode: d.Mode, MTU: d.MTU, VNI: d.VNI, Options: d.Options,
		Parents: d.Parents, Gateways: d.Gateways, IPRanges: d.IPRanges, Internal: d.Internal, IPv6: d.IPv6, Deleting: d.Deleting,
		Created: d.Created, Hosts: map[string]string{}}
}
