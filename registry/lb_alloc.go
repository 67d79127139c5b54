package registry

import (
	"net/netip"
	"slices"
	"strings"

	"github.com/podnet/podnet/store"
)

// checkLoadBalancerIP refuses a requested load-balancer address that no
// pool of lb holds, or that pools never hand out.
func (lb *lbState) checkLoadBalancerIP(s store.Service) error {
	a := s.LoadBalancerIP
	if !a.IsValid() {
		return nil
	}
	p, ok := lb.poolOf(a)
	if !ok {
		return inputf("service %s: loadBalancerIP %s is outside every load-balancer pool (%s)", s.Name, a, lb.poolsText())
	}
	for _, c := range p.CIDRs {
		if c.Contains(a) && !poolAddrUsable(c, a) {
			return inputf("service %s: loadBalancerIP %s is the first or last address of %s (pool %s), which are never handed out: pick another",
				s.Name, a, c, p.Name)
		}
	}
	return nil
}

// allocateLBFrom gives a LoadBalancer service its address from lb (read
// with listClaims): the one it asked for, checked against the pools, or
// the lowest free one of the first pool (by name) of the service's
// address family that has one, which is then taken in lb. held are claim
// keys the service already owns. The condition returned holds the
// address's pool as read.
func (r *Registry) allocateLBFrom(lb *lbState, s *store.Service, held []string) ([]store.Cmp, error) {
	if s.Type != store.ServiceTypeLoadBalancer {
		s.LoadBalancerIP = netip.Addr{}
		return nil, nil
	}
	taken := func(a netip.Addr) bool {
		owner, ok := lb.claims[a]
		return ok && owner != s.Name && !slices.Contains(held, store.LBIPKey(a))
	}
	if a := s.LoadBalancerIP; a.IsValid() {
		if err := lb.checkLoadBalancerIP(*s); err != nil {
			return nil, err
		}
		if taken(a) {
			return nil, inputf("service %s: loadBalancerIP %s is taken by service %s", s.Name, a, lb.claims[a])
		}
		p, _ := lb.poolOf(a)
		return []store.Cmp{store.ModRevIs(store.LBPoolKey(p.Name), lb.poolRevs[p.Name])}, nil
	}
	v4 := r.svcRange.CIDR.Addr().Is4()
	pools := slices.Clone(lb.pools)
	slices.SortFunc(pools, func(a, b store.LBPool) int { return strings.Compare(a.Name, b.Name) })
	family := false
	for _, p := range pools {
		for _, c := range p.CIDRs {
			if c.Addr().Is4() != v4 {
				continue
			}
			family = true
			if a, ok := firstFreeLB(c, taken, len(lb.claims)); ok {
				s.LoadBalancerIP = a
				lb.claims[a] = s.Name
				return []store.Cmp{store.ModRevIs(store.LBPoolKey(p.Name), lb.poolRevs[p.Name])}, nil
			}
		}
	}
	if !family {
		fam := "IPv4"
		if !v4 {
			fam = "IPv6"
		}
		return nil, inputf("service %s: no load-balancer pool has %s addresses (%s)", s.Name, fam, lb.poolsText())
	}
	return nil, inputf("service %s: no free address left in the load-balancer pools (%s)", s.Name, lb.poolsText())
}

// firstFreeLB is the lowest usable address of c that is not taken. At
// most claims+3 addresses are looked at: beyond them one must be free.
func firstFreeLB(c netip.Prefix, taken func(netip.Addr) bool, claims int) (netip.Addr, bool) {
	a := c.Addr()
	for range claims + 3 {
		if !c.Contains(a) {
			return netip.Addr{}, false
		}
		if poolAddrUsable(c, a) && !taken(a) {
			return a, true
		}
		a = a.Next()
	}
	return netip.Addr{}, false
}
