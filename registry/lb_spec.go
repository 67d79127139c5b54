package registry

import (
	"fmt"
	"math"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/podnet/podnet/admin"
	"github.com/podnet/podnet/store"
)

// BGP limits (RFC 4271, RFC 6793, RFC 2385 as Linux implements it).
const (
	defaultHoldTime = 90
	minHoldTime     = 3
	maxHoldTime     = 65535
	asTrans         = 23456 // stands for a 4-byte ASN towards 2-byte speakers: never a real one
	maxPasswordLen  = 80    // TCP_MD5SIG_MAXKEYLEN
)

// ValidatePool checks a LoadBalancerPool and returns it canonical: CIDRs
// masked and sorted, Mode L2 or BGP. It is the one validator of a pool;
// what only etcd can tell (overlaps with other pools, the service CIDR,
// podnet pools, hosts) is checked by the registry before it writes.
func ValidatePool(spec admin.LBPoolSpec) (store.LBPool, error) {
	p := store.LBPool{Name: spec.Name}
	if !ValidServiceName(spec.Name) {
		return p, inputf("load-balancer pool name %q: use lower case letters, digits and '-', starting with a letter, at most 63 characters", spec.Name)
	}
	fail := func(format string, args ...any) (store.LBPool, error) {
		return p, inputf("load-balancer pool %s: "+format, append([]any{spec.Name}, args...)...)
	}
	switch strings.ToLower(spec.Mode) {
	case "", "l2":
		p.Mode = store.LBModeL2
	case "bgp":
		p.Mode = store.LBModeBGP
	default:
		return fail("mode %q: use L2 (one host answers ARP/NDP for each address) or BGP (hosts announce routes to BGPPeers)", spec.Mode)
	}
	if len(spec.CIDRs) == 0 {
		return fail("no cidrs: give at least one (cidrs: [192.0.2.240/28])")
	}
	for _, c := range spec.CIDRs {
		pfx, err := parsePoolCIDR(c)
		if err != nil {
			return fail("%v", err)
		}
		for _, q := range p.CIDRs {
			if q.Overlaps(pfx) {
				return fail("cidrs %s and %s overlap", q, pfx)
			}
		}
		p.CIDRs = append(p.CIDRs, pfx)
	}
	slices.SortFunc(p.CIDRs, comparePrefix)
	return p, nil
}

// parsePoolCIDR reads one CIDR of a pool: canonical (no host bits), of
// addresses that can receive unicast traffic from outside. An address
// alone is its /32 (/128).
func parsePoolCIDR(s string) (netip.Prefix, error) {
	pfx, err := netip.ParsePrefix(strings.TrimSpace(s))
	if err != nil {
		a, aerr := netip.ParseAddr(strings.TrimSpace(s))
		if aerr != nil {
			return pfx, fmt.Errorf("cidr %q: want a CIDR (192.0.2.240/28) or an address", s)
		}
		pfx = netip.PrefixFrom(a, a.BitLen())
	}
	a := pfx.Addr()
	switch {
	case a.Is4In6():
		return pfx, fmt.Errorf("cidr %s: write IPv4 CIDRs in IPv4 form", pfx)
	case pfx.Masked() != pfx:
		return pfx, fmt.Errorf("cidr %s has bits set past its prefix length: did you mean %s?", pfx, pfx.Masked())
	case a.Is4() && pfx.Bits() < 8, a.Is6() && pfx.Bits() < 64:
		return pfx, fmt.Errorf("cidr %s is too large (at most /8 for IPv4, /64 for IPv6)", pfx)
	case a.IsUnspecified() || a.IsLoopback() || a.IsMulticast() || a.IsLinkLocalUnicast() || a.IsLinkLocalMulticast() ||
		netip.MustParsePrefix("240.0.0.0/4").Overlaps(pfx):
		return pfx, fmt.Errorf("cidr %s cannot receive traffic from outside (unspecified, loopback, multicast, link-local or reserved addresses)", pfx)
	}
	return pfx, nil
}

func comparePrefix(a, b netip.Prefix) int {
	if c := a.Addr().Compare(b.Addr()); c != 0 {
		return c
	}
	return a.Bits() - b.Bits()
}

// PoolSpecOf is the inverse of ValidatePool.
func PoolSpecOf(p store.LBPool) admin.LBPoolSpec {
	out := admin.LBPoolSpec{Kind: admin.KindLoadBalancerPool, Name: p.Name, Mode: p.Mode}
	for _, c := range p.CIDRs {
		out.CIDRs = append(out.CIDRs, c.String())
	}
	return out
}

// poolAddrUsable reports whether a may be handed out from cidr: not the
// first or last address of an IPv4 CIDR of /30 or larger, which are the
// network and broadcast addresses when the CIDR is a whole subnet (and
// are skipped whatever it is: routers and hosts mistreat them).
func poolAddrUsable(cidr netip.Prefix, a netip.Addr) bool {
	if !a.Is4() || cidr.Bits() > 30 {
		return true
	}
	return a != cidr.Addr() && a != lastAddr(cidr)
}

// lastAddr is the highest address of a prefix.
func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

// poolSize counts the addresses of a pool services may get, capped.
func poolSize(p store.LBPool) uint64 {
	var n uint64
	for _, c := range p.CIDRs {
		host := c.Addr().BitLen() - c.Bits()
		if host >= 63 {
			return math.MaxInt64
		}
		k := uint64(1) << host
		if c.Addr().Is4() && c.Bits() <= 30 {
			k -= 2
		}
		n = min(n+k, math.MaxInt64)
	}
	return n
}

// ValidatePeer checks a BGPPeer and returns it canonical. It is the one
// validator of a peer.
func ValidatePeer(spec admin.BGPPeerSpec) (store.BGPPeer, error) {
	p := store.BGPPeer{Name: spec.Name}
	if !ValidServiceName(spec.Name) {
		return p, inputf("BGP peer name %q: use lower case letters, digits and '-', starting with a letter, at most 63 characters", spec.Name)
	}
	fail := func(format string, args ...any) (store.BGPPeer, error) {
		return p, inputf("BGP peer %s: "+format, append([]any{spec.Name}, args...)...)
	}
	a, err := netip.ParseAddr(strings.TrimSpace(spec.PeerAddress))
	switch {
	case spec.PeerAddress == "":
		return fail("no peerAddress: give the router's address")
	case err != nil:
		return fail("peerAddress %q is not an IP address", spec.PeerAddress)
	case a.Zone() != "" || a.IsLinkLocalUnicast():
		return fail("peerAddress %s is link-local: give the router's address on the hosts' network", a)
	case a.IsUnspecified() || a.IsLoopback() || a.IsMulticast():
		return fail("peerAddress %s is not a router's address (unspecified, loopback or multicast)", a)
	}
	p.PeerAddress = a.Unmap()
	if p.PeerASN, err = validASN("peerASN", spec.PeerASN); err != nil {
		return fail("%v", err)
	}
	if p.MyASN, err = validASN("myASN", spec.MyASN); err != nil {
		return fail("%v", err)
	}
	if p.HoldTime, err = parseHoldTime(spec.HoldTime); err != nil {
		return fail("%v", err)
	}
	if len(spec.Password) > maxPasswordLen {
		return fail("password is %d bytes long: TCP MD5 keys are at most %d", len(spec.Password), maxPasswordLen)
	}
	p.Password = spec.Password
	for _, h := range spec.Hosts {
		if h == "" || strings.ContainsAny(h, "/ \t\n") {
			return fail("hosts: %q is not a host name", h)
		}
		if slices.Contains(p.Hosts, h) {
			return fail("hosts: %s is given twice", h)
		}
		p.Hosts = append(p.Hosts, h)
	}
	slices.Sort(p.Hosts)
	return p, nil
}

func validASN(field string, n int64) (uint32, error) {
	switch {
	case n == 0:
		return 0, fmt.Errorf("no %s: give an AS number (1-4294967295)", field)
	case n < 1 || n > math.MaxUint32:
		return 0, fmt.Errorf("%s %d is out of range 1-4294967295", field, n)
	case n == asTrans:
		return 0, fmt.Errorf("%s %d is AS_TRANS (RFC 6793), never a real AS: use the 4-byte ASN itself", field, n)
	}
	return uint32(n), nil
}

// parseHoldTime reads a hold time: a duration ("90s", "3m") or whole
// seconds ("90"); 0 (no keepalives) or 3s..65535s; default 90s.
func parseHoldTime(s string) (int, error) {
	if s == "" {
		return defaultHoldTime, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		n, nerr := strconv.Atoi(s)
		if nerr != nil {
			return 0, fmt.Errorf("holdTime %q: want a duration such as 90s", s)
		}
		d = time.Duration(n) * time.Second
	}
	secs := int(d / time.Second)
	switch {
	case d%time.Second != 0:
		return 0, fmt.Errorf("holdTime %s: want whole seconds", s)
	case secs != 0 && (secs < minHoldTime || secs > maxHoldTime):
		return 0, fmt.Errorf("holdTime %s: want 0 (no keepalives) or %ds..%ds (RFC 4271)", s, minHoldTime, maxHoldTime)
	}
	return secs, nil
}

// PeerSpecOf is the inverse of ValidatePeer.
func PeerSpecOf(p store.BGPPeer) admin.BGPPeerSpec {
	return admin.BGPPeerSpec{Kind: admin.KindBGPPeer, Name: p.Name, PeerAddress: p.PeerAddress.String(),
		PeerASN: int64(p.PeerASN), MyASN: int64(p.MyASN), Hosts: slices.Clone(p.Hosts),
		HoldTime: (time.Duration(p.HoldTime) * time.Second).String(), Password: p.Password}
}

func samePool(a, b store.LBPool) bool {
	return a.Name == b.Name && a.Mode == b.Mode && slices.Equal(a.CIDRs, b.CIDRs)
}

func samePeer(a, b store.BGPPeer) bool {
	return a.Name == b.Name && a.PeerAddress == b.PeerAddress && a.PeerASN == b.PeerASN && a.MyASN == b.MyASN &&
		slices.Equal(a.Hosts, b.Hosts) && a.HoldTime == b.HoldTime && a.Password == b.Password
}
