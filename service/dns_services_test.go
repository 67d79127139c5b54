package service

import (
	"context"
	"net/netip"
	"sync"
	"testing"

	"github.com/miekg/dns"
	"github.com/podnet/podnet/store"
	"github.com/podnet/podnet/store/storetest"
)

func TestDNSServices(t *testing.T) {
	st := storetest.New(t)
	put(t, st, store.AliveKey("h1"), store.HostAlive{Name: "h1"})
	put(t, st, store.ServiceKey("web"), store.Service{Name: "web", Selector: web, ClusterIP: netip.MustParseAddr("10.96.0.20"),
		Ports: []store.ServicePort{{Name: "http", Protocol: "TCP", Port: 80, TargetPort: 8080}}})
	put(t, st, store.ServiceKey("db"), store.Service{Name: "db", Selector: map[string]string{"app": "db"}, Headless: true,
		Ports: []store.ServicePort{{Name: "pg", Protocol: "TCP", Port: 5432, TargetPort: 5433}}})
	put(t, st, store.EndpointMetaKey("h1", "e1"), meta("e1", "c1", "10.244.0.9", true, map[string]string{"app": "db"}))
	put(t, st, store.EndpointMetaKey("h1", "e2"), meta("e2", "c2", "10.244.0.7", true, map[string]string{"app": "db"}))
	put(t, st, store.EndpointMetaKey("h1", "e3"), meta("e3", "c3", "10.244.0.8", false, map[string]string{"app": "db"}))
	// A container called web: the service shadows it for the short name.
	put(t, st, store.EndpointMetaKey("h1", "e4"), store.EndpointMeta{Endpoint: "e4", Container: "c4", Name: "web", IPv4: netip.MustParseAddr("10.244.0.4"), Ready: true})

	cat := NewCatalog("h1", false, storetest.Logger(t))
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { cat.Run(ctx, st) })
	t.Cleanup(func() { cancel(); wg.Wait() })
	_, srv := startDNSWith(t, DNSConfig{Store: st, Upstreams: []string{}, Services: cat, Domain: "podnet.local."})

	waitAnswer(t, srv, "web.svc.podnet.local.", dns.TypeA, dns.RcodeSuccess, "10.96.0.20")
	waitAnswer(t, srv, "WEB.Svc.Podnet.Local.", dns.TypeA, dns.RcodeSuccess, "10.96.0.20")
	waitAnswer(t, srv, "web.", dns.TypeA, dns.RcodeSuccess, "10.96.0.20")
	waitAnswer(t, srv, "web.svc.podnet.local.", dns.TypeAAAA, dns.RcodeSuccess)
	waitAnswer(t, srv, "db.svc.podnet.local.", dns.TypeA, dns.RcodeSuccess, "10.244.0.7", "10.244.0.9")
	waitAnswer(t, srv, "db.", dns.TypeA, dns.RcodeSuccess, "10.244.0.7", "10.244.0.9")
	waitAnswer(t, srv, "10-244-0-9.db.svc.podnet.local.", dns.TypeA, dns.RcodeSuccess, "10.244.0.9")
	waitAnswer(t, srv, "10-244-0-8.db.svc.podnet.local.", dns.TypeA, dns.RcodeNameError) // not ready
	waitAnswer(t, srv, "nope.svc.podnet.local.", dns.TypeA, dns.RcodeNameError)
	waitAnswer(t, srv, "_http._udp.web.svc.podnet.local.", dns.TypeSRV, dns.RcodeNameError)

	m := query(t, srv, "udp", "_http._tcp.web.svc.podnet.local.", dns.TypeSRV, false)
	if len(m.Answer) != 1 || m.Answer[0].(*dns.SRV).Port != 80 || m.Answer[0].(*dns.SRV).Target != "web.svc.podnet.local." ||
		len(m.Extra) != 1 || m.Extra[0].(*dns.A).A.String() != "10.96.0.20" {
		t.Fatalf("SRV of a VIP service: %v", m)
	}
	m = query(t, srv, "udp", "_pg._tcp.db.svc.podnet.local.", dns.TypeSRV, false)
	if len(m.Answer) != 2 || m.Answer[0].(*dns.SRV).Port != 5433 || m.Answer[0].(*dns.SRV).Target != "10-244-0-7.db.svc.podnet.local." {
		t.Fatalf("SRV of a headless service: %v", m)
	}
	m = query(t, srv, "udp", "20.0.96.10.in-addr.arpa.", dns.TypePTR, false)
	if len(m.Answer) != 1 || m.Answer[0].(*dns.PTR).Ptr != "web.svc.podnet.local." {
		t.Fatalf("PTR of a VIP: %v", m)
	}

	// The service goes: the short name falls back to the container, the
	// zone name is NXDOMAIN.
	del(t, st, store.ServiceKey("web"))
	waitAnswer(t, srv, "web.svc.podnet.local.", dns.TypeA, dns.RcodeNameError)
	waitAnswer(t, srv, "web.", dns.TypeA, dns.RcodeSuccess, "10.244.0.4")
}
