package netspec

import (
	"net/netip"
	"strings"

	"github.com/podnet/podnet/internal/fault"
)

// Subnet is one subnet of a network spec.
type Subnet struct {
	Pool netip.Prefix
	// Gateway is the subnet's gateway; zero: IPAM's default (the first
	// usable address, the same on every host).
	Gateway netip.Addr
	// IPRange restricts dynamic allocation (--ip-range); zero: the whole
	// subnet.
	IPRange netip.Prefix
}

// Address spaces podnet's IPAM reports to Docker. Docker passes one back
// in RequestPool (podnet has a single space and accepts either name, and
// nothing else: ipam.checkAddressSpace), and tags
// the subnets it hands the driver with it: a podnet network needs subnets
// from podnet's IPAM, whose addresses live in etcd.
const (
	LocalAddressSpace  = "podnet-local"
	GlobalAddressSpace = "podnet-global"
)

// CheckSubnet refuses a prefix podnet cannot use as a network's subnet.
// It is the one place for rules about which address ranges a network may
// use: every entry point reaches it (Validate for docker network create
// and podnetctl network create, IPAM's RequestPool for what Docker sends).
func CheckSubnet(p netip.Prefix) error {
	fam, maxBits := "IPv4", 30
	if p.Addr().Is6() {
		fam, maxBits = "IPv6", 126
	}
	switch {
	case !p.IsValid():
		return invalidf("invalid subnet %s", p)
	case p.Addr().Is4In6():
		return invalidf("invalid subnet %q: IPv4-mapped IPv6 addresses are not supported; write it as IPv4", p)
	case p.Bits() == 0:
		return invalidf("invalid subnet %q: it covers every %s address; give a real subnet", p, fam)
	case p.Bits() > maxBits:
		// A pool needs room for a gateway and at least one container.
		return invalidf("subnet %s is too small: podnet needs at least a /%d for %s", p.Masked(), maxBits, fam)
	}
	if err := CheckSafe(p, nil); err != nil {
		// Reserved ranges are refused wherever a spec is checked; the
		// host's own networks only where the host is known (IPAM).
		return &specError{kind: fault.ErrInvalid, msg: err.Error(), cause: err}
	}
	return nil
}

// ReservedReason says why a of pool is no host's address ("" if it can
// be one): the IPv4 network and broadcast addresses, the IPv6
// subnet-router anycast address.
func ReservedReason(pool netip.Prefix, a netip.Addr) string {
	switch {
	case a == pool.Masked().Addr() && a.Is4():
		return "the network address"
	case a == pool.Masked().Addr():
		return "the subnet-router anycast address"
	case a.Is4() && pool.Contains(a) && !pool.Contains(a.Next()):
		return "the broadcast address"
	}
	return ""
}

// checkSubnet validates one subnet of a spec and returns it with its pool
// masked.
func checkSubnet(s Subnet) (Subnet, error) {
	if err := CheckSubnet(s.Pool); err != nil {
		return s, err
	}
	p := s.Pool.Masked()
	out := Subnet{Pool: p, Gateway: s.Gateway}
	if g := s.Gateway; g.IsValid() {
		switch {
		case g.Zone() != "":
			return s, invalidf("gateway %s: an IPv6 zone is not allowed", g)
		case !p.Contains(g):
			return s, invalidf("gateway %s is outside subnet %s", g, p)
		}
		if why := ReservedReason(p, g); why != "" {
			return s, invalidf("gateway %s is %s of subnet %s: pick another --gateway", g, why, p)
		}
	}
	if r := s.IPRange; r.IsValid() {
		if r.Bits() < p.Bits() || !p.Contains(r.Addr()) {
			return s, invalidf("ip-range %s is outside subnet %s", r, p)
		}
		if r.Masked() != p { // an ip-range equal to the subnet is no restriction
			out.IPRange = r.Masked()
		}
	}
	return out, nil
}

// checkSubnets validates every subnet of a spec, and that no two overlap.
func checkSubnets(subs []Subnet) ([]Subnet, error) {
	out := make([]Subnet, 0, len(subs))
	for _, s := range subs {
		c, err := checkSubnet(s)
		if err != nil {
			return nil, err
		}
		for _, prev := range out {
			if prev.Pool.Overlaps(c.Pool) {
				return nil, invalidf("subnets %s and %s of the network overlap: give each address once", prev.Pool, c.Pool)
			}
		}
		out = append(out, c)
	}
	return out, nil
}

// JoinPrefixes renders subnets separated by sep, for messages and tables.
func JoinPrefixes(ps []netip.Prefix, sep string) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = p.String()
	}
	return strings.Join(s, sep)
}
