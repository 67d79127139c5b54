package ipam

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"github.com/docker/go-plugins-helpers/ipam"
	"github.com/podnet/podnet/netspec"
)

// errUnknownPool marks a PoolID podnet has no record of.
var errUnknownPool = errors.New("unknown pool")

// family is an IP version: 4 or 6.
type family int

const (
	ipv4 family = 4
	ipv6 family = 6
)

func familyOf(v6 bool) family {
	if v6 {
		return ipv6
	}
	return ipv4
}

func (f family) String() string { return fmt.Sprintf("IPv%d", int(f)) }

// poolRequest is a validated RequestPool.
type poolRequest struct {
	subnet  netip.Prefix // zero: podnet picks one (no --subnet)
	ipRange netip.Prefix // zero: the whole subnet
	fam     family
	// parent is --ipam-opt parent=IFACE: the subnet is that interface's
	// own network (macvlan, ipvlan), so overlapping it is the point.
	parent string
}

// parsePoolRequest validates what Docker sends in RequestPool: the user's
// --subnet, --ip-range, --ipv6 and --ipam-opt, verbatim, and the address
// space (one of the two podnet reports; podnet has one space, either name
// means it). It refuses reserved subnets (netspec.CheckSafe without the
// host's networks, which RequestPool checks next). It does not touch etcd
// or the kernel, so it is what the fuzz target exercises.
func parsePoolRequest(r *ipam.RequestPoolRequest) (poolRequest, error) {
	req := poolRequest{fam: familyOf(r.V6)}
	if err := checkAddressSpace(r.AddressSpace); err != nil {
		return req, err
	}
	opts, err := poolOptions(r.Options)
	if err != nil {
		return req, err
	}
	req.parent = opts.parent
	if r.Pool == "" {
		if r.SubPool != "" {
			return req, fmt.Errorf("ip-range %q given without a subnet: pass --subnet too", r.SubPool)
		}
		return req, nil
	}
	subnet, err := parseCIDR("subnet", r.Pool, req.fam)
	if err != nil {
		return req, err
	}
	if err := netspec.CheckSubnet(subnet); err != nil {
		return req, err
	}
	if err := netspec.CheckSafe(subnet, nil); err != nil {
		return req, err
	}
	req.subnet = subnet
	if r.SubPool == "" {
		return req, nil
	}
	rng, err := parseCIDR("ip-range", r.SubPool, req.fam)
	if err != nil {
		return req, err
	}
	if rng.Bits() < subnet.Bits() || !subnet.Contains(rng.Addr()) {
		return req, fmt.Errorf("ip-range %s is outside subnet %s", rng, subnet)
	}
	if rng != subnet { // an ip-range equal to the subnet is no restriction
		req.ipRange = rng
	}
	return req, nil
}

// parseCIDR parses a CIDR of the wanted family and returns it canonical
// (10.1.2.3/16 → 10.1.0.0/16).
func parseCIDR(what, s string, fam family) (netip.Prefix, error) {
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("invalid %s %q: %w", what, s, err)
	}
	if p.Addr().Is4In6() {
		return netip.Prefix{}, fmt.Errorf("invalid %s %q: IPv4-mapped IPv6 addresses are not supported; write it as IPv4", what, s)
	}
	if familyOf(p.Addr().Is6()) != fam {
		return netip.Prefix{}, fmt.Errorf("%s %s is not an %s subnet (Docker asked for %s)", what, p.Masked(), fam, fam)
	}
	return p.Masked(), nil
}

// parsePoolID turns a PoolID back into its subnet: podnet's PoolIDs are
// canonical CIDRs.
func parsePoolID(id string) (netip.Prefix, error) {
	p, err := netip.ParsePrefix(id)
	if err != nil || p != p.Masked() || p.Addr().Is4In6() || p.Bits() == 0 {
		return netip.Prefix{}, fmt.Errorf("pool %q: %w: podnet pool IDs are canonical subnets such as 10.1.0.0/16", id, errUnknownPool)
	}
	return p, nil
}

// parseAddress parses an address Docker sends (a plain IP; a CIDR is
// accepted too) and checks that it lies in pool.
func parseAddress(pool netip.Prefix, s string) (netip.Addr, error) {
	a, err := netip.ParseAddr(s)
	if err != nil {
		p, perr := netip.ParsePrefix(s)
		if perr != nil {
			return netip.Addr{}, fmt.Errorf("invalid address %q: %w", s, err)
		}
		a = p.Addr()
	}
	switch {
	case a.Zone() != "":
		return netip.Addr{}, fmt.Errorf("invalid address %q: an IPv6 zone is not allowed", s)
	case a.Is4In6():
		return netip.Addr{}, fmt.Errorf("invalid address %q: IPv4-mapped IPv6 addresses are not supported; write it as IPv4", s)
	case !pool.Contains(a):
		return netip.Addr{}, fmt.Errorf("address %s is outside pool %s", a, pool)
	}
	return a, nil
}

// isGatewayRequest tells a gateway request from a container one. Docker
// sends container and aux-address requests alike (Options null, or only a
// MAC), so everything that is not a gateway is a container address, or an
// aux address when no network of this host uses the pool yet (aux.go).
func isGatewayRequest(opts map[string]string) (bool, error) {
	switch t := opts[optRequestAddressType]; t {
	case "":
		return false, nil
	case requestTypeGateway:
		return true, nil
	default:
		return false, fmt.Errorf("unsupported %s %q: podnet knows only %q", optRequestAddressType, t, requestTypeGateway)
	}
}

func quoteAll(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = fmt.Sprintf("%q", s)
	}
	return strings.Join(q, ", ")
}
