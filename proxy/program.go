package proxy

import (
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/podnet/podnet/catalog"
	"github.com/podnet/podnet/dataplane"
	"github.com/podnet/podnet/store"
)

// dataplaneService is what the data plane of this host needs for a
// service of the catalog (nil: gone); ok is false when there is nothing
// to program (gone, or headless: no VIP).
func (p *Agent) dataplaneService(st *catalog.ServiceState) (dataplane.Service, bool) {
	if st == nil || st.Service.Headless || !st.Service.ClusterIP.IsValid() {
		return dataplane.Service{}, false
	}
	s := st.Service
	ps := dataplane.Service{Name: s.Name, ClusterIP: s.ClusterIP, LocalOnly: s.ExternalTrafficPolicy == store.TrafficPolicyLocal}
	for _, a := range s.ExternalIPs {
		if p.externalRefused(st, a) == nil {
			ps.ExternalIPs = append(ps.ExternalIPs, a)
		}
	}
	// A load-balancer address is one more external address of the
	// service: it arrives at the host that announces it (ARP/NDP or BGP)
	// and every host DNATs its own traffic to it. Never a host's own
	// address (pools cannot hold one, but a host may register later).
	if a := s.LoadBalancerIP; a.IsValid() && !slices.Contains(ps.ExternalIPs, a) && !st.LoadBalancerIPIsHost {
		ps.ExternalIPs = append(ps.ExternalIPs, a)
		slices.SortFunc(ps.ExternalIPs, netip.Addr.Compare)
	}
	if s.SessionAffinity == store.AffinityClientIP {
		ps.Affinity = time.Duration(s.AffinityTimeout) * time.Second
	}
	for _, sp := range s.Ports {
		ps.Ports = append(ps.Ports, dataplane.ServicePort{Name: sp.Name, Proto: dataplane.Proto(sp.Protocol.Lower()),
			Port: sp.Port, TargetPort: sp.TargetPort, NodePort: sp.NodePort})
	}
	for _, e := range st.Endpoints {
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

// externalRefused says why the agent leaves external IP a of a service
// out (nil: it programs it): the cluster's rules, or an address of a
// registered host.
func (p *Agent) externalRefused(st *catalog.ServiceState, a netip.Addr) error {
	if ok := p.cfg.ExternalIPOK; ok != nil {
		if err := ok(a); err != nil {
			return err
		}
	}
	if why := st.ReservedExternalIPs[a]; why != "" {
		return fmt.Errorf("external IP %s is %s, which podnet never takes over", a, why)
	}
	return nil
}

// refusedExternalIPs lists the external IPs of a service the agent
// leaves out and why (for its status).
func (p *Agent) refusedExternalIPs(st *catalog.ServiceState) []string {
	if st == nil {
		return nil
	}
	var out []string
	for _, a := range st.Service.ExternalIPs {
		if err := p.externalRefused(st, a); err != nil {
			out = append(out, err.Error()+" (left out)")
		}
	}
	return out
}
