package clusterdns

import (
	"context"
	"fmt"
	"net/netip"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/podnet/podnet/catalog"
	"github.com/podnet/podnet/feed"
	"github.com/podnet/podnet/internal/testutil"
	"github.com/podnet/podnet/store"
	"github.com/podnet/podnet/store/storetest"
)

// web selects the containers of service web.
var web = map[string]string{"app": "web", "tier": "front"}

// meta is a ready or unready endpoint record of container ctr at ip.
func meta(ep, ctr, ip string, ready bool, labels map[string]string) store.EndpointMeta {
	return store.EndpointMeta{Endpoint: ep, Container: ctr, Name: ctr, IPv4: netip.MustParseAddr(ip), Ready: ready, Labels: labels,
		Updated: time.Now().UTC()}
}

// putWebAndDB writes host h1 alive, a VIP service web (10.96.0.20, port
// http 80→8080), a headless service db (port pg 5432→5433) and db's one
// ready endpoint 10.244.0.9.
func putWebAndDB(t *testing.T, st *store.Store) {
	t.Helper()
	storetest.Put(t, st, store.AliveKey("h1"), store.HostAlive{Name: "h1"})
	storetest.Put(t, st, store.ServiceKey("web"), store.Service{Name: "web", Selector: web, ClusterIP: netip.MustParseAddr("10.96.0.20"),
		Ports: []store.ServicePort{{Name: "http", Protocol: "TCP", Port: 80, TargetPort: 8080}}})
	storetest.Put(t, st, store.ServiceKey("db"), store.Service{Name: "db", Selector: map[string]string{"app": "db"}, Headless: true,
		Ports: []store.ServicePort{{Name: "pg", Protocol: "TCP", Port: 5432, TargetPort: 5433}}})
	storetest.Put(t, st, store.EndpointMetaKey("h1", "e1"), meta("e1", "c1", "10.244.0.9", true, map[string]string{"app": "db"}))
}

// runCatalog follows st as host h1's catalog until the test ends.
func runCatalog(t *testing.T, st *store.Store) *catalog.Catalog {
	cat := catalog.New("h1", false, storetest.Logger(t))
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { cat.Run(ctx, feed.Start(ctx, st, storetest.Logger(t))) })
	t.Cleanup(func() { cancel(); wg.Wait() })
	return cat
}

func TestDNSServices(t *testing.T) {
	st := storetest.New(t)
	putWebAndDB(t, st)
	storetest.Put(t, st, store.EndpointMetaKey("h1", "e2"), meta("e2", "c2", "10.244.0.7", true, map[string]string{"app": "db"}))
	storetest.Put(t, st, store.EndpointMetaKey("h1", "e3"), meta("e3", "c3", "10.244.0.8", false, map[string]string{"app": "db"}))
	// A container called web: the service shadows it for the short name.
	storetest.Put(t, st, store.EndpointMetaKey("h1", "e4"), store.EndpointMeta{Endpoint: "e4", Container: "c4", Name: "web", IPv4: netip.MustParseAddr("10.244.0.4"), Ready: true})

	_, srv := startDNSWith(t, Config{Feeds: feeds(t, st), Upstreams: []string{}, Services: runCatalog(t, st), Domain: "podnet.local."})

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
	storetest.Delete(t, st, store.ServiceKey("web"))
	waitAnswer(t, srv, "web.svc.podnet.local.", dns.TypeA, dns.RcodeNameError)
	waitAnswer(t, srv, "web.", dns.TypeA, dns.RcodeSuccess, "10.244.0.4")
}

// TestDNSServesSavedServicesWithEtcdDown: service names are saved with
// the container names; a DNS restarted while etcd is down answers the
// VIP, a headless service's endpoints, SRV and PTR from disk, and an
// unknown service name still gets NXDOMAIN.
func TestDNSServesSavedServicesWithEtcdDown(t *testing.T) {
	st := storetest.New(t)
	putWebAndDB(t, st)
	file := filepath.Join(t.TempDir(), "dns-records.json")

	_, srv := startDNSWith(t, Config{Feeds: feeds(t, st), Upstreams: []string{}, Services: runCatalog(t, st), CacheFile: file})
	waitAnswer(t, srv, "db.svc.podnet.local.", dns.TypeA, dns.RcodeSuccess, "10.244.0.9")
	testutil.Until(t, 10*time.Second, "both services on disk", func() bool {
		f, err := readCache(file)
		return err == nil && len(f.Services) == 2
	})
	// A service change alone (no endpoint record changes) is saved too.
	storetest.Put(t, st, store.ServiceKey("api"), store.Service{Name: "api", Selector: web, ClusterIP: netip.MustParseAddr("10.96.0.21"),
		Ports: []store.ServicePort{{Protocol: "TCP", Port: 443, TargetPort: 8443}}})
	testutil.Until(t, 10*time.Second, "the new service on disk", func() bool {
		f, err := readCache(file)
		return err == nil && len(f.Services) == 3
	})

	dead, err := store.Open(store.Config{Endpoints: []string{fmt.Sprintf("http://127.0.0.1:%d", testutil.FreePort(t))},
		Logger: storetest.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dead.Close() })
	_, srv = startDNSWith(t, Config{Feeds: feeds(t, dead), Upstreams: []string{}, Services: runCatalog(t, dead), CacheFile: file})
	waitAnswer(t, srv, "web.svc.podnet.local.", dns.TypeA, dns.RcodeSuccess, "10.96.0.20")
	waitAnswer(t, srv, "api.", dns.TypeA, dns.RcodeSuccess, "10.96.0.21")
	waitAnswer(t, srv, "db.svc.podnet.local.", dns.TypeA, dns.RcodeSuccess, "10.244.0.9")
	waitAnswer(t, srv, "10-244-0-9.db.svc.podnet.local.", dns.TypeA, dns.RcodeSuccess, "10.244.0.9")
	waitAnswer(t, srv, "nope.svc.podnet.local.", dns.TypeA, dns.RcodeNameError)
	m := query(t, srv, "udp", "_http._tcp.web.svc.podnet.local.", dns.TypeSRV, false)
	if len(m.Answer) != 1 || m.Answer[0].(*dns.SRV).Port != 80 {
		t.Fatalf("SRV from disk: %v", m)
	}
	m = query(t, srv, "udp", "20.0.96.10.in-addr.arpa.", dns.TypePTR, false)
	if len(m.Answer) != 1 || m.Answer[0].(*dns.PTR).Ptr != "web.svc.podnet.local." {
		t.Fatalf("PTR from disk: %v", m)
	}
}

// Saved services are checked as etcd's would be: a bad name, a VIP on a
// headless service or none on a VIP service, a duplicate are dropped.
func TestSavedServicesAreChecked(t *testing.T) {
	vip := netip.MustParseAddr("10.96.0.5")
	s := restoreServices([]cachedService{
		{Name: "good", VIP: vip},
		{Name: "Bad_Name", VIP: netip.MustParseAddr("10.96.0.6")},
		{Name: "novip"},
		{Name: "both", VIP: netip.MustParseAddr("10.96.0.7"), Headless: true},
		{Name: "good", VIP: netip.MustParseAddr("10.96.0.8")},
		{Name: "hl", Headless: true, Addrs: []netip.Addr{netip.MustParseAddr("10.244.0.1"), {}}},
	})
	if s == nil || len(s.byName) != 2 || s.byName["good"].vip != vip || len(s.byName["hl"].addrs) != 1 {
		t.Fatalf("restored %+v; want good (10.96.0.5) and hl with one address", s)
	}
	if n, ok := s.byVIP[vip]; !ok || n != "good" || len(s.byVIP) != 1 {
		t.Fatalf("by VIP: %v", s.byVIP)
	}
	if restoreServices(nil) != nil {
		t.Fatal("no services restored as a non-nil set")
	}
}
