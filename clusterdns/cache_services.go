package clusterdns

import (
	"net/netip"
	"slices"

	"github.com/podnet/podnet/catalog"
	"github.com/podnet/podnet/registry"
	"github.com/podnet/podnet/store"
)

// Services on disk: the file holding the answerable endpoints also holds
// what the service names answer, so that a podnetd restarted while etcd
// is down answers them too (its proxy rules stay in the kernel meanwhile,
// so a VIP a client resolves still works). Until the catalog has read
// etcd once, service names are answered from what was saved; from then
// on only from the catalog.

// cachedService is one service's saved DNS answers.
type cachedService struct {
	Name     string              `json:"name"`
	VIP      netip.Addr          `json:"vip,omitzero"`
	Headless bool                `json:"headless,omitempty"`
	Ports    []store.ServicePort `json:"ports,omitempty"`
	// Addrs are a headless service's ready endpoints.
	Addrs []netip.Addr `json:"addrs,omitempty"`
}

// savedServices are the services loaded from disk, by name and by VIP.
type savedServices struct {
	byName map[string]dnsService
	byVIP  map[netip.Addr]string
}

// serviceLookup answers name from the catalog, or from the saved services
// until the catalog is loaded.
func (d *Server) serviceLookup(c *catalog.Catalog, name string) (dnsService, bool) {
	if s := d.savedUntilLoaded(c); s != nil {
		svc, ok := s.byName[name]
		return svc, ok
	}
	return lookupService(c, name)
}

// serviceByVIP is serviceLookup for a VIP's PTR.
func (d *Server) serviceByVIP(c *catalog.Catalog, a netip.Addr) (string, bool) {
	if s := d.savedUntilLoaded(c); s != nil {
		n, ok := s.byVIP[a.Unmap()]
		return n, ok
	}
	return c.ServiceByVIP(a)
}

// savedUntilLoaded returns the saved services while the catalog has not
// read etcd yet, nil once it has (and forgets them then).
func (d *Server) savedUntilLoaded(c *catalog.Catalog) *savedServices {
	s := d.savedSvcs.Load()
	if s == nil {
		return nil
	}
	if c.Loaded() {
		d.savedSvcs.CompareAndSwap(s, nil)
		return nil
	}
	return s
}

// cachedServices is what the file keeps of the catalog's services.
func cachedServices(svcs []dnsService) []cachedService {
	out := make([]cachedService, 0, len(svcs))
	for _, s := range svcs {
		out = append(out, cachedService{Name: s.name, VIP: s.vip, Headless: s.headless,
			Ports: slices.Clone(s.ports), Addrs: slices.Clone(s.addrs)})
	}
	return out
}

// restoreServices checks saved services as the catalog would check them
// from etcd (a valid name, a VIP unless headless, valid addresses) and
// indexes the good ones; nil when none is.
func restoreServices(cs []cachedService) *savedServices {
	s := &savedServices{byName: map[string]dnsService{}, byVIP: map[netip.Addr]string{}}
	for _, c := range cs {
		if len(s.byName) == maxCachedEndpoints {
			break
		}
		if _, dup := s.byName[c.Name]; dup || !registry.ValidServiceName(c.Name) {
			continue
		}
		vip := c.VIP.Unmap()
		if c.Headless != !vip.IsValid() {
			continue
		}
		svc := dnsService{name: c.Name, vip: vip, headless: c.Headless, ports: slices.Clone(c.Ports)}
		for _, a := range c.Addrs {
			if a = a.Unmap(); a.IsValid() && a.Zone() == "" {
				svc.addrs = append(svc.addrs, a)
			}
		}
		s.byName[c.Name] = svc
		if vip.IsValid() {
			s.byVIP[vip] = c.Name
		}
	}
	if len(s.byName) == 0 {
		return nil
	}
	return s
}
