package clusterdns

import (
	"maps"
	"net/netip"
	"slices"
	"strings"

	"github.com/miekg/dns"
	"github.com/podnet/podnet/catalog"
	"github.com/podnet/podnet/store"
)

// Service names on the cluster DNS. For a service NAME in the cluster
// domain D (podnetd --cluster-domain, default podnet.local):
//
//	NAME, NAME.svc.D                   A/AAAA: the VIP; headless: the ready endpoints' addresses
//	_PORT._PROTO.NAME.svc.D            SRV per named port: NAME.svc.D:port; headless: one per
//	                                   ready endpoint, A-B-C-D.NAME.svc.D:targetPort
//	A-B-C-D.NAME.svc.D                 A: a ready endpoint of a headless service
//	reverse of a VIP                   PTR: NAME.svc.D
//
// A service shadows a container of the same name for the short form; the
// .svc.D form is unambiguous (and Docker's own DNS answers same-host
// container names before asking podnet at all). Names under svc.D that
// are no service get an authoritative NXDOMAIN: podnet owns that zone, so
// forwarding them would only leak them upstream.

// dnsService is what DNS needs of one service.
type dnsService struct {
	name     string
	vip      netip.Addr
	headless bool
	ports    []store.ServicePort
	// addrs are a headless service's ready endpoint addresses.
	addrs []netip.Addr
}

// lookupService returns service name of c as DNS answers it.
func lookupService(c *catalog.Catalog, name string) (dnsService, bool) {
	st, ok := c.Lookup(name)
	if !ok {
		return dnsService{}, false
	}
	return dnsServiceOf(st), true
}

func dnsServiceOf(st catalog.ServiceState) dnsService {
	s := st.Service
	out := dnsService{name: s.Name, vip: s.ClusterIP, headless: s.Headless, ports: s.Ports}
	if s.Headless {
		for _, e := range st.Endpoints {
			out.addrs = append(out.addrs, e.Addr)
		}
	}
	return out
}

// exportServices returns every service of c as DNS answers it, sorted by
// name (one snapshot of the catalog).
func exportServices(c *catalog.Catalog) []dnsService {
	all := c.Snapshot()
	out := make([]dnsService, 0, len(all))
	for _, name := range slices.Sorted(maps.Keys(all)) {
		out = append(out, dnsServiceOf(*all[name]))
	}
	return out
}

// serviceAnswer answers req when it asks about a service, or returns nil.
func (d *Server) serviceAnswer(req *dns.Msg) *dns.Msg {
	c := d.cfg.Services
	if c == nil {
		return nil
	}
	q := req.Question[0]
	zone := "svc." + d.cfg.Domain
	if addr, ok := parseReverse(q.Name); ok {
		name, ok := d.serviceByVIP(c, addr)
		if !ok {
			return nil
		}
		m := d.reply(req)
		if q.Qtype == dns.TypePTR || q.Qtype == dns.TypeANY {
			m.Answer = append(m.Answer, &dns.PTR{Hdr: d.hdr(q.Name, dns.TypePTR), Ptr: dns.Fqdn(name + "." + zone)})
		}
		return m
	}
	name, ok := normalizeName(q.Name)
	if !ok {
		return nil
	}
	rest, inZone := strings.CutSuffix(name, "."+zone)
	if !inZone {
		if strings.Contains(name, ".") {
			return nil
		}
		rest = name
	}
	labels := strings.Split(rest, ".")
	svc, ok := d.serviceLookup(c, labels[len(labels)-1])
	if !ok {
		if inZone || name == zone {
			m := d.reply(req)
			m.Rcode = dns.RcodeNameError
			return m
		}
		return nil
	}
	m := d.reply(req)
	switch {
	case len(labels) == 1:
		d.addrAnswers(m, q, svc.addresses())
	case !inZone:
		return nil
	case len(labels) == 2:
		a, ok := dashedAddr(labels[0])
		if !ok || !svc.headless || !slices.Contains(svc.addrs, a) {
			m.Rcode = dns.RcodeNameError
			return m
		}
		d.addrAnswers(m, q, []netip.Addr{a})
	case len(labels) == 3 && strings.HasPrefix(labels[0], "_") && strings.HasPrefix(labels[1], "_"):
		if !d.srvAnswers(m, q, svc, labels[0][1:], labels[1][1:], zone) {
			m.Rcode = dns.RcodeNameError
		}
	default:
		m.Rcode = dns.RcodeNameError
	}
	return m
}

// addresses is what NAME resolves to.
func (s dnsService) addresses() []netip.Addr {
	if s.headless {
		return s.addrs
	}
	return []netip.Addr{s.vip}
}

// addrAnswers adds the A or AAAA records of addrs that q asks for.
func (d *Server) addrAnswers(m *dns.Msg, q dns.Question, addrs []netip.Addr) {
	for _, a := range addrs {
		if a.Is4() && (q.Qtype == dns.TypeA || q.Qtype == dns.TypeANY) {
			m.Answer = append(m.Answer, &dns.A{Hdr: d.hdr(q.Name, dns.TypeA), A: a.AsSlice()})
		}
		if a.Is6() && (q.Qtype == dns.TypeAAAA || q.Qtype == dns.TypeANY) {
			m.Answer = append(m.Answer, &dns.AAAA{Hdr: d.hdr(q.Name, dns.TypeAAAA), AAAA: a.AsSlice()})
		}
	}
}

// srvAnswers answers _port._proto.NAME.svc.D; false when the service has
// no such named port.
func (d *Server) srvAnswers(m *dns.Msg, q dns.Question, s dnsService, port, proto, zone string) bool {
	var p *store.ServicePort
	for i := range s.ports {
		if s.ports[i].Name == port && s.ports[i].Protocol.Lower() == strings.ToLower(proto) {
			p = &s.ports[i]
		}
	}
	if p == nil {
		return false
	}
	if q.Qtype != dns.TypeSRV && q.Qtype != dns.TypeANY {
		return true
	}
	target := dns.Fqdn(s.name + "." + zone)
	add := func(target string, port uint16, a netip.Addr) {
		m.Answer = append(m.Answer, &dns.SRV{Hdr: d.hdr(q.Name, dns.TypeSRV), Priority: 0, Weight: 100,
			Port: port, Target: target})
		if a.Is4() {
			m.Extra = append(m.Extra, &dns.A{Hdr: d.hdr(target, dns.TypeA), A: a.AsSlice()})
		} else {
			m.Extra = append(m.Extra, &dns.AAAA{Hdr: d.hdr(target, dns.TypeAAAA), AAAA: a.AsSlice()})
		}
	}
	if !s.headless {
		add(target, p.Port, s.vip)
		return true
	}
	for _, a := range s.addrs {
		add(dns.Fqdn(dashed(a)+"."+s.name+"."+zone), p.TargetPort, a)
	}
	return true
}

// dashed is the DNS label of an address (10-244-0-5), as Kubernetes names
// a headless service's endpoints.
func dashed(a netip.Addr) string {
	if a.Is4() {
		return strings.ReplaceAll(a.String(), ".", "-")
	}
	return strings.ReplaceAll(a.StringExpanded(), ":", "-")
}

func dashedAddr(label string) (netip.Addr, bool) {
	if strings.Count(label, "-") == 3 {
		a, err := netip.ParseAddr(strings.ReplaceAll(label, "-", "."))
		return a, err == nil
	}
	a, err := netip.ParseAddr(strings.ReplaceAll(label, "-", ":"))
	return a, err == nil && a.Is6()
}

// DefaultDomain is the domain of service names (podnetd
// --cluster-domain).
const DefaultDomain = "podnet.local"
