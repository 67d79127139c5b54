package driver

import (
	"fmt"
	"net/netip"

	"github.com/docker/go-plugins-helpers/network"
	"github.com/podnet/podnet/netspec"
	"github.com/podnet/podnet/store"
)

// Labels Docker puts in a CreateNetwork or ProgramExternalConnectivity
// request's options.
const (
	labelGeneric  = "com.docker.network.generic" // the -o map
	labelIPv6     = "com.docker.network.enable_ipv6"
	labelInternal = "com.docker.network.internal"
	labelPortmap  = "com.docker.network.portmap"
)

// netOptions is a validated CreateNetwork request: netspec's view of it,
// plus what only the driver needs.
type netOptions struct {
	netspec.Network
	// V4 and V6 are the subnets by family, in Docker's order, as the
	// network's record keeps them (the gateway with the pool's mask, as the
	// bridge holds it).
	V4, V6 []store.Subnet
}

// parseOptions validates everything in a CreateNetwork request before any
// kernel or etcd change: netspec checks mode, options and subnets (the
// rules podnetctl network create applies too); the driver only translates
// Docker's request and checks that the subnets came from podnet's IPAM.
// available lists the modes this podnetd can create.
func parseOptions(r *network.CreateNetworkRequest, available []string) (*netOptions, error) {
	raw, err := genericOptions(r.Options[labelGeneric])
	if err != nil {
		return nil, err
	}
	v4, err := ipamSubnets(r.IPv4Data, false)
	if err != nil {
		return nil, err
	}
	v6, err := ipamSubnets(r.IPv6Data, true)
	if err != nil {
		return nil, err
	}
	n, err := netspec.Validate(netspec.Spec{Options: raw, Subnets: append(v4, v6...), Internal: r.Options[labelInternal] == true}, available)
	if err != nil {
		return nil, err
	}
	o := &netOptions{Network: n}
	for _, s := range n.Subnets {
		sub := store.Subnet{Pool: s.Pool}
		if s.Gateway.IsValid() {
			sub.Gateway = netip.PrefixFrom(s.Gateway, s.Pool.Bits())
		}
		if s.Pool.Addr().Is4() {
			o.V4 = append(o.V4, sub)
		} else {
			o.V6 = append(o.V6, sub)
		}
	}
	return o, nil
}

// genericOptions turns Docker's -o map (JSON-decoded, so values may be any
// JSON type) into strings.
func genericOptions(gen any) (map[string]string, error) {
	raw := map[string]string{}
	if gen == nil {
		return raw, nil
	}
	m, ok := gen.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("driver options have an unexpected shape %T", gen)
	}
	for k, v := range m {
		s, ok := v.(string)
		if !ok {
			s = fmt.Sprint(v)
		}
		raw[k] = s
	}
	return raw, nil
}

// ipamSubnets checks that each subnet came from podnet's IPAM and parses
// pool and gateway (a CIDR in Docker's request).
func ipamSubnets(data []*network.IPAMData, v6 bool) ([]netspec.Subnet, error) {
	var out []netspec.Subnet
	for _, d := range data {
		if d == nil {
			continue
		}
		if d.AddressSpace != netspec.LocalAddressSpace && d.AddressSpace != netspec.GlobalAddressSpace {
			return nil, fmt.Errorf("subnet %s was allocated by another IPAM driver (address space %q): podnet networks need --ipam-driver podnet (the same name as -d)", d.Pool, d.AddressSpace)
		}
		p, err := netip.ParsePrefix(d.Pool)
		if err != nil {
			return nil, fmt.Errorf("malformed pool %q from Docker: %w", d.Pool, err)
		}
		if p.Addr().Is6() != v6 {
			return nil, fmt.Errorf("pool %s is in the wrong address family", p)
		}
		s := netspec.Subnet{Pool: p}
		if d.Gateway != "" {
			g, err := netip.ParsePrefix(d.Gateway)
			if err != nil {
				return nil, fmt.Errorf("malformed gateway %q for subnet %s: %w", d.Gateway, p, err)
			}
			s.Gateway = g.Addr()
		}
		out = append(out, s)
	}
	return out, nil
}
