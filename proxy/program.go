package proxy

import (
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/podnet/podnet/dataplane"
	"github.com/podnet/podnet/store"
)

// program is what the data plane of this host needs for service name;
// ok is false when there is no such service or it is headless (no VIP:
// nothing to program).
func (p *Agent) program(name string) (dataplane.Service, bool) {
	s, ok := p.cat.Service(name)
	if !ok || s.Headless || !s.ClusterIP.IsValid() {
		return dataplane.Service{}, false
	}
	ps := dataplane.Service{Name: s.Name, ClusterIP: s.ClusterIP, ExternalIPs: slices.Clone(s.ExternalIPs),
		LocalOnly: s.ExternalTrafficPolicy == store.TrafficPolicyLocal}
	// A load-balancer address is one more external address of the
	// service: it arrives at the host that announces it (ARP/NDP or BGP)
	// and every host DNATs its own traffic to it. Never a host's own
	// address (pools cannot hold one, but a host may register later).
	if a := s.LoadBalancerIP; a.IsValid() && !slices.Contains(ps.ExternalIPs, a) {
		if _, isHost := p.cat.UnderlayHost(a); !isHost {
			ps.ExternalIPs = append(ps.ExternalIPs, a)
			slices.SortFunc(ps.ExternalIPs, netip.Addr.Compare)
		}
	}
	if s.SessionAffinity == store.AffinityClientIP {
		ps.Affinity = time.Duration(s.AffinityTimeout) * time.Second
	}
	for _, sp := range s.Ports {
		ps.Ports = append(ps.Ports, dataplane.ServicePort{Name: sp.Name, Proto: dataplane.Proto(strings.ToLower(sp.Protocol)),
			Port: sp.Port, TargetPort: sp.TargetPort, NodePort: sp.NodePort})
	}
	for _, e := range p.cat.Ready(s) {
		ps.Endpoints = append(ps.Endpoints, dataplane.ServiceEndpoint{Addr: e.Addr, Local: e.Local})
	}
	return ps, true
}

// sameProgram compares two data-plane services.
func sameProgram(a, b dataplane.Service) bool {
	return a.Name == b.Name && a.ClusterIP == b.ClusterIP && slices.Equal(a.ExternalIPs, b.ExternalIPs) &&
		slices.Equal(a.Ports, b.Ports) && slices.Equal(a.Endpoints, b.Endpoints) &&
		a.Affinity == b.Affinity && a.LocalOnly == b.LocalOnly
}
