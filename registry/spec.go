package registry

import (
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"regexp"
	"slices"
	"strings"

	"github.com/podnet/podnet/admin"
	"github.com/podnet/podnet/internal/fault"
	"github.com/podnet/podnet/store"
)

// inputf is an error the operator must fix (a bad spec, a taken VIP or
// NodePort, a service that already exists): podnet's one kind of caller's
// fault, which the admin API answers with HTTP 400.
func inputf(format string, args ...any) error { return fault.Invalidf(format, args...) }

// NodePort range, as Kubernetes' default.
const (
	NodePortMin = 30000
	NodePortMax = 32767
)

// Affinity timeouts in seconds (Kubernetes' default and maximum).
const (
	defaultAffinityTimeout = 10800
	maxAffinityTimeout     = 86400
)

var (
	// serviceNameRE is a DNS label (RFC 1035): the name is a DNS name.
	serviceNameRE = regexp.MustCompile(`^[a-z]([-a-z0-9]*[a-z0-9])?$`)
	// portNameRE is an IANA service name (SRV's _name): lower case letters,
	// digits and inner dashes.
	portNameRE = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)
	hasLetter  = regexp.MustCompile(`[a-z]`)
)

// ValidServiceName: a DNS label (RFC 1035) of at most 63 characters.
func ValidServiceName(name string) bool {
	return len(name) <= 63 && serviceNameRE.MatchString(name)
}

// ServiceRange is the cluster's VIP range and the addresses in it that are
// never handed out.
type ServiceRange struct {
	CIDR netip.Prefix
	// Reserved holds the network address, .1, the cluster DNS address and
	// (IPv4) the broadcast address.
	Reserved map[netip.Addr]string
	// ExternalCIDRs is the cluster's allow-list of external IPs
	// (--external-ip-cidrs, canonical: ParseExternalIPCIDRs); empty
	// allows none.
	ExternalCIDRs []netip.Prefix
}

// NewServiceRange checks a service CIDR (IPv4 /12../28, IPv6 /108../124,
// as Kubernetes bounds it: VIPs are picked by scanning it) and reserves
// its first address, .1 and .10 (the cluster DNS), plus dnsAddr when it
// lies inside, and the IPv4 broadcast address.
func NewServiceRange(cidr netip.Prefix, dnsAddr netip.Addr) (ServiceRange, error) {
	if !cidr.IsValid() {
		return ServiceRange{}, errors.New("service CIDR: not a CIDR")
	}
	cidr = cidr.Masked()
	lo, hi := 12, 28
	if cidr.Addr().Is6() {
		lo, hi = 108, 124
	}
	if cidr.Bits() < lo || cidr.Bits() > hi {
		return ServiceRange{}, fmt.Errorf("service CIDR %s: want a prefix length from /%d to /%d", cidr, lo, hi)
	}
	r := ServiceRange{CIDR: cidr, Reserved: map[netip.Addr]string{}}
	first := cidr.Addr()
	r.Reserved[first] = "the network address"
	r.Reserved[nthAddr(first, 1)] = "reserved (.1)"
	r.Reserved[nthAddr(first, 10)] = "the cluster DNS address"
	if dnsAddr.IsValid() && cidr.Contains(dnsAddr) {
		r.Reserved[dnsAddr] = "the cluster DNS address"
	}
	if first.Is4() {
		r.Reserved[nthAddr(first, r.size()-1)] = "the broadcast address"
	}
	return r, nil
}

// size is the number of addresses of the range (at most 2^20).
func (r ServiceRange) size() uint32 { return 1 << (r.CIDR.Addr().BitLen() - r.CIDR.Bits()) }

// nthAddr is a + n (n stays within a service range: at most 2^20).
func nthAddr(a netip.Addr, n uint32) netip.Addr {
	b := a.As16()
	lo := binary.BigEndian.Uint64(b[8:])
	sum := lo + uint64(n)
	if sum < lo {
		binary.BigEndian.PutUint64(b[:8], binary.BigEndian.Uint64(b[:8])+1)
	}
	binary.BigEndian.PutUint64(b[8:], sum)
	out := netip.AddrFrom16(b)
	if a.Is4() {
		return out.Unmap()
	}
	return out
}

// addrIndex is a's offset from the range's first address.
func (r ServiceRange) addrIndex(a netip.Addr) uint32 {
	x, y := a.As16(), r.CIDR.Addr().As16()
	return binary.BigEndian.Uint32(x[12:]) - binary.BigEndian.Uint32(y[12:])
}

// ValidateService checks spec and returns the canonical service: defaults filled
// in, names and protocols in their one spelling. The VIP (unless given or
// headless) and NodePorts left at 0 are chosen later, by the registry. It
// is the one validator of a service, whatever the spec came from (flags or
// a file).
func (r ServiceRange) ValidateService(spec admin.ServiceSpec) (store.Service, error) {
	s := store.Service{Name: spec.Name}
	if !ValidServiceName(spec.Name) {
		return s, inputf("service name %q: use lower case letters, digits and '-', starting with a letter, at most 63 characters (it is a DNS name)", spec.Name)
	}
	fail := func(format string, args ...any) (store.Service, error) {
		return s, inputf("service %s: "+format, append([]any{spec.Name}, args...)...)
	}
	if len(spec.Selector) == 0 {
		return fail("empty selector: give at least one KEY=VALUE label term (a service without one would select nothing)")
	}
	if len(spec.Selector) > store.MaxSelectorTerms {
		return fail("selector has %d terms: at most %d terms", len(spec.Selector), store.MaxSelectorTerms)
	}
	for k, v := range spec.Selector {
		if err := store.ValidLabel(k, v); err != nil {
			return fail("selector: %v", err)
		}
	}
	s.Selector = maps.Clone(spec.Selector)
	switch strings.ToLower(spec.Type) {
	case "", "clusterip":
		s.Type = store.ServiceTypeClusterIP
	case "nodeport":
		s.Type = store.ServiceTypeNodePort
	case "loadbalancer":
		s.Type = store.ServiceTypeLoadBalancer
	default:
		return fail("type %q is not supported: use ClusterIP, NodePort or LoadBalancer", spec.Type)
	}
	var err error
	if s.Ports, err = validatePorts(s.Type, spec.Ports); err != nil {
		return fail("%v", err)
	}
	if err := r.validateClusterIP(&s, spec.ClusterIP); err != nil {
		return fail("%v", err)
	}
	if s.ExternalIPs, err = r.validateExternalIPs(spec.ExternalIPs); err != nil {
		return fail("%v", err)
	}
	if s.LoadBalancerIP, err = r.validateLoadBalancerIP(s.Type, spec.LoadBalancerIP); err != nil {
		return fail("%v", err)
	}
	if err := validateAffinity(&s, spec); err != nil {
		return fail("%v", err)
	}
	switch strings.ToLower(spec.ExternalTrafficPolicy) {
	case "", "cluster":
		s.ExternalTrafficPolicy = store.TrafficPolicyCluster
	case "local":
		s.ExternalTrafficPolicy = store.TrafficPolicyLocal
		if !hasNodePorts(s.Type) && len(s.ExternalIPs) == 0 {
			return fail("externalTrafficPolicy Local applies to NodePort, LoadBalancer and external-IP traffic: use type NodePort or LoadBalancer, or give an external IP")
		}
	default:
		return fail("externalTrafficPolicy %q: use Cluster or Local", spec.ExternalTrafficPolicy)
	}
	if hc := spec.HealthCheckNodePort; hc != 0 {
		switch {
		case s.ExternalTrafficPolicy != store.TrafficPolicyLocal:
			return fail("healthCheckNodePort %d needs externalTrafficPolicy Local", hc)
		case hc < NodePortMin || hc > NodePortMax:
			return fail("healthCheckNodePort %d is outside the NodePort range %d-%d", hc, NodePortMin, NodePortMax)
		case slices.ContainsFunc(s.Ports, func(p store.ServicePort) bool { return int(p.NodePort) == hc }):
			return fail("healthCheckNodePort %d is also one of its NodePorts", hc)
		}
		s.HealthCheckNodePort = uint16(hc)
	}
	if s.Headless {
		switch {
		case hasNodePorts(s.Type):
			return fail("a headless service (clusterIP None) has no VIP to forward NodePorts or a load-balancer address to: use type ClusterIP")
		case len(s.ExternalIPs) > 0:
			return fail("a headless service (clusterIP None) has no VIP to forward external IPs to")
		case s.SessionAffinity == store.AffinityClientIP:
			return fail("session affinity needs a VIP: a headless service (clusterIP None) has none")
		}
	}
	return s, nil
}

func validatePorts(typ string, in []admin.ServicePortSpec) ([]store.ServicePort, error) {
	if len(in) == 0 {
		return nil, errors.New("no port: give at least one (--port PORT[:TARGET][/PROTO])")
	}
	out := make([]store.ServicePort, 0, len(in))
	names := map[string]bool{}
	type pp struct {
		port  uint16
		proto store.Protocol
	}
	seen, nodes := map[pp]bool{}, map[pp]bool{}
	for _, p := range in {
		what := fmt.Sprintf("port %d", p.Port)
		if p.Name != "" {
			what = fmt.Sprintf("port %s (%d)", p.Name, p.Port)
		}
		sp := store.ServicePort{Name: p.Name}
		proto, ok := store.ParseProtocol(p.Protocol)
		if !ok {
			return nil, fmt.Errorf("%s: unknown protocol %q: use TCP, UDP or SCTP", what, p.Protocol)
		}
		sp.Protocol = proto
		if p.Port < 1 || p.Port > 65535 {
			return nil, fmt.Errorf("port %d is out of range 1-65535", p.Port)
		}
		sp.Port = uint16(p.Port)
		switch {
		case p.TargetPort == 0:
			sp.TargetPort = sp.Port
		case p.TargetPort < 1 || p.TargetPort > 65535:
			return nil, fmt.Errorf("%s: target port %d is out of range 1-65535", what, p.TargetPort)
		default:
			sp.TargetPort = uint16(p.TargetPort)
		}
		if p.Name != "" {
			if len(p.Name) > 15 || !portNameRE.MatchString(p.Name) || !hasLetter.MatchString(p.Name) {
				return nil, fmt.Errorf("port name %q: use at most 15 lower case letters, digits and inner '-', with at least one letter (it names an SRV record)", p.Name)
			}
			if names[p.Name] {
				return nil, fmt.Errorf("duplicate port name %q", p.Name)
			}
			names[p.Name] = true
		}
		key := pp{sp.Port, sp.Protocol}
		if seen[key] {
			return nil, fmt.Errorf("duplicate port %d/%s", sp.Port, sp.Protocol)
		}
		seen[key] = true
		if p.NodePort != 0 {
			if !hasNodePorts(typ) {
				return nil, fmt.Errorf("%s: nodePort %d needs type NodePort or LoadBalancer", what, p.NodePort)
			}
			if p.NodePort < NodePortMin || p.NodePort > NodePortMax {
				return nil, fmt.Errorf("%s: nodePort %d is outside the NodePort range %d-%d", what, p.NodePort, NodePortMin, NodePortMax)
			}
			nk := pp{uint16(p.NodePort), sp.Protocol}
			if nodes[nk] {
				return nil, fmt.Errorf("nodePort %d/%s is given twice", p.NodePort, sp.Protocol)
			}
			nodes[nk] = true
			sp.NodePort = uint16(p.NodePort)
		}
		out = append(out, sp)
	}
	return out, nil
}

func (r ServiceRange) validateClusterIP(s *store.Service, in string) error {
	switch {
	case in == "":
		return nil
	case strings.EqualFold(in, "None"):
		s.Headless = true
		return nil
	}
	a, err := netip.ParseAddr(in)
	if err != nil {
		return fmt.Errorf("clusterIP %q: want an IP address of the service CIDR %s, or None", in, r.CIDR)
	}
	a = a.Unmap()
	if !r.CIDR.Contains(a) {
		return fmt.Errorf("clusterIP %s is outside the service CIDR %s", a, r.CIDR)
	}
	if why, ok := r.Reserved[a]; ok {
		return fmt.Errorf("clusterIP %s is %s of the service CIDR %s and is never handed out", a, why, r.CIDR)
	}
	s.ClusterIP = a
	return nil
}

func (r ServiceRange) validateExternalIPs(in []string) ([]netip.Addr, error) {
	var out []netip.Addr
	for _, x := range in {
		a, err := netip.ParseAddr(x)
		if err != nil {
			return nil, fmt.Errorf("external IP %q is not an IP address", x)
		}
		a = a.Unmap()
		if err := r.CheckExternalIP(a); err != nil {
			return nil, err
		}
		if slices.Contains(out, a) {
			return nil, fmt.Errorf("external IP %s is given twice", a)
		}
		out = append(out, a)
	}
	slices.SortFunc(out, netip.Addr.Compare)
	return out, nil
}

// hasNodePorts: NodePort and LoadBalancer services get NodePorts (as in
// Kubernetes, whose default allocateLoadBalancerNodePorts is true).
func hasNodePorts(typ string) bool {
	return typ == store.ServiceTypeNodePort || typ == store.ServiceTypeLoadBalancer
}

// validateLoadBalancerIP checks what the spec alone can tell of a
// requested load-balancer address; which pool holds it is the
// registry's to check.
func (r ServiceRange) validateLoadBalancerIP(typ, in string) (netip.Addr, error) {
	if in == "" {
		return netip.Addr{}, nil
	}
	if typ != store.ServiceTypeLoadBalancer {
		return netip.Addr{}, fmt.Errorf("loadBalancerIP %s needs type LoadBalancer", in)
	}
	a, err := netip.ParseAddr(in)
	if err != nil {
		return a, fmt.Errorf("loadBalancerIP %q is not an IP address", in)
	}
	a = a.Unmap()
	switch {
	case a.Is4() != r.CIDR.Addr().Is4():
		return a, fmt.Errorf("loadBalancerIP %s: the service CIDR %s is of the other address family", a, r.CIDR)
	case r.CIDR.Contains(a):
		return a, fmt.Errorf("loadBalancerIP %s lies in the service CIDR %s: give an address of a LoadBalancerPool", a, r.CIDR)
	}
	return a, nil
}

func validateAffinity(s *store.Service, spec admin.ServiceSpec) error {
	var timeout *int
	if c := spec.SessionAffinityConfig; c != nil && c.ClientIP != nil {
		timeout = c.ClientIP.TimeoutSeconds
	}
	switch strings.ToLower(spec.SessionAffinity) {
	case "", "none":
		s.SessionAffinity = store.AffinityNone
		if timeout != nil {
			return errors.New("an affinity timeout needs sessionAffinity ClientIP")
		}
	case "clientip":
		s.SessionAffinity = store.AffinityClientIP
		switch {
		case timeout == nil:
			s.AffinityTimeout = defaultAffinityTimeout
		case *timeout < 1 || *timeout > maxAffinityTimeout:
			return fmt.Errorf("affinity timeout %ds: want 1s to %ds (24h)", *timeout, maxAffinityTimeout)
		default:
			s.AffinityTimeout = *timeout
		}
	default:
		return fmt.Errorf("sessionAffinity %q: use None or ClientIP", spec.SessionAffinity)
	}
	return nil
}

// SpecOf is the inverse of ValidateService: the spec of a stored service, with
// everything allocated written out (so applying it again is a no-op).
func SpecOf(s store.Service) admin.ServiceSpec {
	out := admin.ServiceSpec{Name: s.Name, Selector: maps.Clone(s.Selector), Type: s.Type,
		SessionAffinity: s.SessionAffinity, ExternalTrafficPolicy: s.ExternalTrafficPolicy,
		HealthCheckNodePort: int(s.HealthCheckNodePort)}
	for _, p := range s.Ports {
		out.Ports = append(out.Ports, admin.ServicePortSpec{Name: p.Name, Protocol: string(p.Protocol), Port: int(p.Port),
			TargetPort: int(p.TargetPort), NodePort: int(p.NodePort)})
	}
	switch {
	case s.Headless:
		out.ClusterIP = "None"
	case s.ClusterIP.IsValid():
		out.ClusterIP = s.ClusterIP.String()
	}
	for _, a := range s.ExternalIPs {
		out.ExternalIPs = append(out.ExternalIPs, a.String())
	}
	if s.LoadBalancerIP.IsValid() {
		out.LoadBalancerIP = s.LoadBalancerIP.String()
	}
	if s.SessionAffinity == store.AffinityClientIP {
		out.SessionAffinityConfig = &admin.SessionAffinityConfig{ClientIP: &admin.ClientIPConfig{TimeoutSeconds: &s.AffinityTimeout}}
	}
	return out
}

// sameSpec compares two canonical services, timestamps aside.
func sameSpec(a, b store.Service) bool {
	return a.Name == b.Name && maps.Equal(a.Selector, b.Selector) && a.Type == b.Type &&
		slices.Equal(a.Ports, b.Ports) && a.ClusterIP == b.ClusterIP && a.Headless == b.Headless &&
		slices.Equal(a.ExternalIPs, b.ExternalIPs) && a.LoadBalancerIP == b.LoadBalancerIP && a.SessionAffinity == b.SessionAffinity &&
		a.AffinityTimeout == b.AffinityTimeout && a.ExternalTrafficPolicy == b.ExternalTrafficPolicy &&
		a.HealthCheckNodePort == b.HealthCheckNodePort
}
