package catalog

import (
	"net/netip"
	"slices"
	"strings"
)

// LoadBalancer is a LoadBalancer service as the announcers need it: its
// address, its traffic policy and the hosts with a ready endpoint (which
// alone announce it under externalTrafficPolicy Local).
type LoadBalancer struct {
	Service string
	IP      netip.Addr
	// Local is externalTrafficPolicy Local.
	Local bool
	// Hosts have at least one ready endpoint of the service, sorted.
	Hosts []string
}

// LoadBalancers returns every service with a load-balancer address, by
// name, consistent with one instant of the view.
func (c *Catalog) LoadBalancers() []LoadBalancer {
	c.mu.RLock()
	defer c.mu.RUnlock()
	var out []LoadBalancer
	for _, s := range c.services {
		if !s.LoadBalancerIP.IsValid() || s.Headless {
			continue
		}
		lb := LoadBalancer{Service: s.Name, IP: s.LoadBalancerIP, Local: s.ExternalTrafficPolicy == "Local"}
		for _, r := range c.resolveLocked(s) {
			if r.ready && !slices.Contains(lb.Hosts, r.m.key.host) {
				lb.Hosts = append(lb.Hosts, r.m.key.host)
			}
		}
		slices.Sort(lb.Hosts)
		out = append(out, lb)
	}
	slices.SortFunc(out, func(a, b LoadBalancer) int { return strings.Compare(a.Service, b.Service) })
	return out
}

// UnderlayHost returns the registered host whose underlay address is a.
func (c *Catalog) UnderlayHost(a netip.Addr) (string, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	for h, u := range c.underlay {
		if u == a {
			return h, true
		}
	}
	return "", false
}

// Subscribe returns a channel signalled (coalesced) after every update of
// the view, for readers other than the proxy agent, which takes Changed.
func (c *Catalog) Subscribe() <-chan struct{} {
	ch := make(chan struct{}, 1)
	c.mu.Lock()
	c.subs = append(c.subs, ch)
	c.mu.Unlock()
	return ch
}

// notifySubs signals every subscriber.
func (c *Catalog) notifySubs() {
	c.mu.RLock()
	defer c.mu.RUnlock()
	for _, ch := range c.subs {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}
