package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/podnet/podnet/catalog"
	"github.com/podnet/podnet/dataplane"
	"github.com/podnet/podnet/feed"
	"github.com/podnet/podnet/internal/testutil"
	"github.com/podnet/podnet/store"
	"github.com/podnet/podnet/store/storetest"
)

// recorder is a Programmer that records every call.
type recorder struct {
	mu    sync.Mutex
	calls []call
	// down makes every Apply of a change (not a Replace) fail.
	down bool
	// fail makes the data plane report an error for these services.
	fail map[string]error
	// setDelay is how long a Replace takes.
	setDelay time.Duration
}

type call struct {
	op      string // replace or change
	svcs    []dataplane.Service
	removed []string
}

func (r *recorder) Apply(_ context.Context, c dataplane.Change) (dataplane.Result, error) {
	start := time.Now()
	if c.Services.Replace {
		time.Sleep(r.setDelay)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.down && !c.Services.Replace {
		return dataplane.Result{}, errors.New("fake: data plane down")
	}
	op := "change"
	if c.Services.Replace {
		op = "replace"
	}
	r.calls = append(r.calls, call{op: op, svcs: c.Services.Upsert, removed: c.Services.Remove})
	res := dataplane.Result{Services: map[string]error{}, Took: time.Since(start)}
	for _, s := range c.Services.Upsert {
		res.Services[s.Name] = r.fail[s.Name]
	}
	return res, nil
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.calls)
}

// next waits for call number i.
func (r *recorder) next(t *testing.T, i int) call {
	t.Helper()
	testutil.Until(t, 10*time.Second, fmt.Sprintf("programmer call #%d", i+1), func() bool { return r.count() > i })
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.calls[i]
}

// quiet checks that no call beyond n arrives for a while (events were
// processed: a later sentinel change comes first).
func (r *recorder) quiet(t *testing.T, n int) {
	t.Helper()
	if c := r.count(); c != n {
		r.mu.Lock()
		defer r.mu.Unlock()
		t.Fatalf("%d calls, want %d: last %+v", c, n, r.calls[len(r.calls)-1])
	}
}

func startProxy(t *testing.T, st *store.Store, rec Programmer) *Agent {
	t.Helper()
	cat := catalog.New("h1", false, storetest.Logger(t))
	p := New(Config{Host: "h1", Store: st, Catalog: cat, Programmer: rec, Logger: storetest.Logger(t)})
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { cat.Run(ctx, feed.Start(ctx, st, storetest.Logger(t))) })
	wg.Go(func() { p.Run(ctx) })
	t.Cleanup(func() { cancel(); wg.Wait() })
	return p
}

func ep(addr string, local bool) dataplane.ServiceEndpoint {
	return dataplane.ServiceEndpoint{Addr: netip.MustParseAddr(addr), Local: local}
}

func meta(ep, ctr, ip string, ready bool, labels map[string]string) store.EndpointMeta {
	return store.EndpointMeta{Endpoint: ep, Container: ctr, Name: ctr, IPv4: netip.MustParseAddr(ip), Ready: ready, Labels: labels,
		Updated: time.Now().UTC()}
}

var web = map[string]string{"app": "web", "tier": "front"}

func TestProxyAgent(t *testing.T) {
	st := storetest.New(t)
	storetest.Put(t, st, store.AliveKey("h1"), store.HostAlive{Name: "h1"})
	storetest.Put(t, st, store.AliveKey("h2"), store.HostAlive{Name: "h2"})
	storetest.Put(t, st, store.HostKey("h1"), store.Host{Name: "h1", Underlay: netip.MustParseAddr("10.0.0.1")})
	storetest.Put(t, st, store.HostKey("h2"), store.Host{Name: "h2", Underlay: netip.MustParseAddr("10.0.0.2")})
	svc := store.Service{Name: "web", Selector: map[string]string{"app": "web"}, Type: "NodePort",
		ClusterIP: netip.MustParseAddr("10.96.0.20"), ExternalIPs: []netip.Addr{netip.MustParseAddr("192.0.2.1")},
		Ports:           []store.ServicePort{{Name: "http", Protocol: "TCP", Port: 80, TargetPort: 8080, NodePort: 30080}},
		SessionAffinity: "ClientIP", AffinityTimeout: 60, ExternalTrafficPolicy: "Local"}
	storetest.Put(t, st, store.ServiceKey("web"), svc)
	storetest.Put(t, st, store.ServiceKey("db"), store.Service{Name: "db", Selector: map[string]string{"app": "db"}, Headless: true,
		Ports: []store.ServicePort{{Protocol: "TCP", Port: 5432, TargetPort: 5432}}})
	storetest.Put(t, st, store.EndpointMetaKey("h1", "e1"), meta("e1", "c1", "10.244.0.5", true, web))
	storetest.Put(t, st, store.EndpointMetaKey("h2", "e2"), meta("e2", "c2", "10.244.1.5", true, web))
	storetest.Put(t, st, store.EndpointMetaKey("h2", "e3"), meta("e3", "c3", "10.244.1.6", false, web))
	storetest.Put(t, st, store.EndpointMetaKey("h1", "e4"), meta("e4", "c4", "10.244.0.9", true, map[string]string{"app": "db"}))
	// c1 on a second network: still one endpoint, at its lowest address.
	storetest.Put(t, st, store.EndpointMetaKey("h1", "e1b"), meta("e1b", "c1", "10.245.0.5", true, web))
	// A host-mode member on h2 and a container-mode member sharing c1.
	storetest.Put(t, st, store.ContainerMetaKey("h2", "c5"), store.ContainerMeta{Container: "c5", Mode: "host", Labels: web, Ready: true})
	storetest.Put(t, st, store.ContainerMetaKey("h1", "c6"), store.ContainerMeta{Container: "c6", Mode: "container", Parent: "c1", Labels: web, Ready: true})

	rec := &recorder{}
	p := startProxy(t, st, rec)
	first := rec.next(t, 0)
	if first.op != "replace" || len(first.svcs) != 1 {
		t.Fatalf("first call %+v: want a Replace with web alone (a headless service has no rules)", first)
	}
	want := dataplane.Service{Name: "web", ClusterIP: svc.ClusterIP, ExternalIPs: svc.ExternalIPs,
		Ports:     []dataplane.ServicePort{{Name: "http", Proto: dataplane.TCP, Port: 80, TargetPort: 8080, NodePort: 30080}},
		Endpoints: []dataplane.ServiceEndpoint{ep("10.0.0.2", false), ep("10.244.0.5", true), ep("10.244.1.5", false)},
		Affinity:  time.Minute, LocalOnly: true}
	if !sameProgram(first.svcs[0], want) {
		t.Fatalf("Replace got\n%+v\nwant\n%+v", first.svcs[0], want)
	}

	// No-op events (a rewrite with a new timestamp, a service nobody
	// selects changing) cause no call; the sentinel change after them
	// proves they were processed.
	storetest.Put(t, st, store.EndpointMetaKey("h1", "e1"), meta("e1", "c1", "10.244.0.5", true, web))
	storetest.Put(t, st, store.EndpointMetaKey("h1", "e4"), meta("e4", "c4", "10.244.0.9", false, map[string]string{"app": "db"}))
	storetest.Put(t, st, store.ServiceKey("db"), store.Service{Name: "db", Selector: map[string]string{"app": "db", "v": "2"}, Headless: true,
		Ports: []store.ServicePort{{Protocol: "TCP", Port: 5432, TargetPort: 5432}}})
	storetest.Put(t, st, store.EndpointMetaKey("h2", "e3"), meta("e3", "c3", "10.244.1.6", true, web))
	c := rec.next(t, 1)
	if c.op != "change" || len(c.svcs) != 1 || !slices.Contains(c.svcs[0].Endpoints, ep("10.244.1.6", false)) || len(c.svcs[0].Endpoints) != 4 {
		t.Fatalf("readiness: %+v", c)
	}
	rec.quiet(t, 2)

	// h2 dies: only h1's endpoint is left.
	storetest.Delete(t, st, store.AliveKey("h2"))
	c = rec.next(t, 2)
	if !slices.Equal(c.svcs[0].Endpoints, []dataplane.ServiceEndpoint{ep("10.244.0.5", true)}) {
		t.Fatalf("liveness: %+v", c.svcs[0].Endpoints)
	}
	// c1 stops: c6 shares its stack and goes with it; nothing is left.
	storetest.Delete(t, st, store.EndpointMetaKey("h1", "e1"))
	storetest.Delete(t, st, store.EndpointMetaKey("h1", "e1b"))
	testutil.Until(t, 10*time.Second, "web without endpoints", func() bool {
		s, ok := p.Programmed("web")
		return ok && len(s.Endpoints) == 0
	})
	n := rec.count()
	if last := rec.next(t, n-1); last.op != "change" || len(last.svcs[0].Endpoints) != 0 {
		t.Fatalf("scale to zero: %+v", last)
	}
	storetest.Delete(t, st, store.ServiceKey("web"))
	if c := rec.next(t, n); c.op != "change" || len(c.svcs) != 0 || !slices.Equal(c.removed, []string{"web"}) {
		t.Fatalf("removal: %+v", c)
	}
	rec.quiet(t, n+1)
}

func TestProxyReportsFailures(t *testing.T) {
	st := storetest.New(t)
	storetest.Put(t, st, store.AliveKey("h1"), store.HostAlive{Name: "h1"})
	storetest.Put(t, st, store.ServiceKey("web"), store.Service{Name: "web", Selector: web, ClusterIP: netip.MustParseAddr("10.96.0.20"),
		Ports: []store.ServicePort{{Protocol: "SCTP", Port: 80, TargetPort: 80}}})
	// A stale error of a previous run is cleared.
	storetest.Put(t, st, store.ServiceStatusKey("h1", "gone"), store.ServiceStatus{Host: "h1", Service: "gone", Error: "old"})
	storetest.Put(t, st, store.ServiceKey("api"), store.Service{Name: "api", Selector: web, ClusterIP: netip.MustParseAddr("10.96.0.21"),
		Ports: []store.ServicePort{{Protocol: "SCTP", Port: 80, TargetPort: 80}}})
	rec := &recorder{fail: map[string]error{"web": errors.New("no SCTP support in this kernel"), "api": errors.New("no SCTP support in this kernel")}}
	startProxy(t, st, rec)
	var revs []int64
	for _, name := range []string{"web", "api"} {
		testutil.Until(t, 10*time.Second, name+"'s error reported", func() bool {
			var s store.ServiceStatus
			rev, err := st.Get(context.Background(), store.ServiceStatusKey("h1", name), &s)
			if err == nil && s.Error == "no SCTP support in this kernel" {
				revs = append(revs, rev)
				return true
			}
			return false
		})
	}
	if revs[0] != revs[1] {
		t.Errorf("the two errors were written at revisions %v: want one transaction per round", revs)
	}
	if n := rec.count(); n != 1 {
		t.Errorf("%d calls to the data plane, want 1: the errors come with the Result", n)
	}
	storetest.Delete(t, st, store.ServiceKey("api"))
	testutil.Until(t, 10*time.Second, "the stale error cleared", func() bool { return len(storetest.Keys(t, st, store.ServiceStatusKey("h1", "gone"))) == 0 })
	storetest.Delete(t, st, store.ServiceKey("web"))
	testutil.Until(t, 10*time.Second, "the error cleared with the service", func() bool { return len(storetest.Keys(t, st, store.ServiceStatusPrefix(""))) == 0 })
}

// TestProxyRetriesRefused: a service whose rules the kernel refused is
// handed over again a second later, and its error goes once it is
// programmed.
func TestProxyRetriesRefused(t *testing.T) {
	st := storetest.New(t)
	storetest.Put(t, st, store.AliveKey("h1"), store.HostAlive{Name: "h1"})
	storetest.Put(t, st, store.ServiceKey("web"), store.Service{Name: "web", Selector: web, ClusterIP: netip.MustParseAddr("10.96.0.20"),
		Ports: []store.ServicePort{{Protocol: "TCP", Port: 80, TargetPort: 80}}})
	rec := &recorder{fail: map[string]error{"web": fmt.Errorf("%w: web: fake", dataplane.ErrServiceNotProgrammed)}}
	p := startProxy(t, st, rec)
	testutil.Until(t, 10*time.Second, "web reported failing", func() bool { return slices.Contains(p.Status().Failing, "web") })
	rec.mu.Lock()
	rec.fail = nil
	rec.mu.Unlock()
	c := rec.next(t, 1)
	if c.op != "change" || len(c.svcs) != 1 || c.svcs[0].Name != "web" {
		t.Fatalf("retry: %+v", c)
	}
	testutil.Until(t, 10*time.Second, "web programmed", func() bool {
		_, ok := p.Programmed("web")
		return ok && len(p.Status().Failing) == 0
	})
}

// TestProxySyncDuration: the agent's status says how long the data plane
// took to take the whole set (what a restart costs, benchmark B14).
func TestProxySyncDuration(t *testing.T) {
	st := storetest.New(t)
	storetest.Put(t, st, store.AliveKey("h1"), store.HostAlive{Name: "h1"})
	storetest.Put(t, st, store.ServiceKey("web"), store.Service{Name: "web", Selector: web, ClusterIP: netip.MustParseAddr("10.96.0.20"),
		Ports: []store.ServicePort{{Protocol: "TCP", Port: 80, TargetPort: 80}}})
	p := startProxy(t, st, &recorder{setDelay: 50 * time.Millisecond})
	testutil.Until(t, 10*time.Second, "the agent synced", func() bool { return p.Status().Synced })
	if st := p.Status(); st.LastSyncDuration < 50*time.Millisecond || st.LastSyncDuration > 5*time.Second || st.LastSync.IsZero() {
		t.Fatalf("status after a 50 ms Replace: %+v", st)
	}
}

// TestProxyOneChangePerRound: changes that reach many services at once
// (a host with endpoints of each dies, a transaction rewrites many
// records) are handed over as one change set holding just those services,
// and a single change is a change set of one.
func TestProxyOneChangePerRound(t *testing.T) {
	st := storetest.New(t)
	storetest.Put(t, st, store.AliveKey("h1"), store.HostAlive{Name: "h1"})
	storetest.Put(t, st, store.AliveKey("h2"), store.HostAlive{Name: "h2"})
	const n = 20
	var h2 []store.Op
	for i := range n + 1 {
		name := fmt.Sprintf("s%d", i)
		lbl := map[string]string{"app": name}
		storetest.Put(t, st, store.ServiceKey(name), store.Service{Name: name, Selector: lbl,
			ClusterIP: netip.AddrFrom4([4]byte{10, 96, 1, byte(i + 1)}), Ports: []store.ServicePort{{Protocol: "TCP", Port: 80, TargetPort: 80}}})
		storetest.Put(t, st, store.EndpointMetaKey("h1", "a"+name), meta("a"+name, "ca"+name, fmt.Sprintf("10.244.0.%d", i+1), true, lbl))
		if i == n {
			continue // s20 has no endpoint on h2: the burst does not touch it
		}
		storetest.Put(t, st, store.EndpointMetaKey("h2", "b"+name), meta("b"+name, "cb"+name, fmt.Sprintf("10.244.1.%d", i+1), true, lbl))
		h2 = append(h2, store.Put(store.EndpointMetaKey("h2", "b"+name), meta("b"+name, "cb"+name, fmt.Sprintf("10.244.1.%d", i+1), false, lbl)))
	}
	rec := &recorder{}
	p := startProxy(t, st, rec)
	if c := rec.next(t, 0); c.op != "replace" || len(c.svcs) != n+1 {
		t.Fatalf("first call: %s of %d services", c.op, len(c.svcs))
	}
	// Every endpoint on h2 fails its health check, in one transaction.
	if _, _, err := st.Txn(context.Background(), nil, h2); err != nil {
		t.Fatal(err)
	}
	c := rec.next(t, 1)
	if c.op != "change" || len(c.svcs) != n {
		t.Fatalf("%d services changed at once: got a %s of %d services, want one change set of exactly those", n, c.op, len(c.svcs))
	}
	for _, s := range c.svcs {
		if len(s.Endpoints) != 1 || s.Endpoints[0].Addr.As4()[2] != 0 {
			t.Fatalf("%s without h2's endpoints: %+v", s.Name, s.Endpoints)
		}
	}
	testutil.Until(t, 10*time.Second, "the burst's lags recorded", func() bool { return p.Status().LagCount >= n })
	// h1 dies: every service loses its last endpoint, in one change set.
	storetest.Delete(t, st, store.AliveKey("h1"))
	if c := rec.next(t, 2); c.op != "change" || len(c.svcs) != n+1 || len(c.svcs[0].Endpoints) != 0 {
		t.Fatalf("h1 died: %+v", c)
	}
	// A single change is a change set of one.
	storetest.Put(t, st, store.EndpointMetaKey("h2", "bs3"), meta("bs3", "cbs3", "10.244.1.4", true, map[string]string{"app": "s3"}))
	if c := rec.next(t, 3); c.op != "change" || len(c.svcs) != 1 || c.svcs[0].Name != "s3" || len(c.svcs[0].Endpoints) != 1 {
		t.Fatalf("one change: %+v", c)
	}
	rec.quiet(t, 4)
}

// TestProxyHealth: the agent is unhealthy until it programmed the
// services once, healthy then, and unhealthy again when changes wait for a
// failing data plane longer than the bound.
func TestProxyHealth(t *testing.T) {
	st := storetest.New(t)
	storetest.Put(t, st, store.AliveKey("h1"), store.HostAlive{Name: "h1"})
	storetest.Put(t, st, store.ServiceKey("web"), store.Service{Name: "web", Selector: web, ClusterIP: netip.MustParseAddr("10.96.0.20"),
		Ports: []store.ServicePort{{Protocol: "TCP", Port: 80, TargetPort: 80}}})
	cat := catalog.New("h1", false, storetest.Logger(t))
	rec := &recorder{}
	p := New(Config{Host: "h1", Store: st, Catalog: cat, Programmer: rec, Logger: storetest.Logger(t), HealthTimeout: 500 * time.Millisecond})
	if err := p.Health(); err == nil {
		t.Fatal("healthy before the first sync")
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { cat.Run(ctx, feed.Start(ctx, st, storetest.Logger(t))) })
	wg.Go(func() { p.Run(ctx) })
	t.Cleanup(func() { cancel(); wg.Wait() })
	testutil.Until(t, 10*time.Second, "healthy after the first sync", func() bool { return p.Health() == nil })
	rec.mu.Lock()
	rec.down = true
	rec.mu.Unlock()
	storetest.Put(t, st, store.EndpointMetaKey("h1", "e1"), meta("e1", "c1", "10.244.0.5", true, web))
	testutil.Until(t, 10*time.Second, "unhealthy with a change waiting", func() bool {
		err := p.Health()
		return err != nil && strings.Contains(err.Error(), "waited")
	})
	if p.Pending() == 0 {
		t.Error("no change pending while the data plane refuses it")
	}
	rec.mu.Lock()
	rec.down = false
	rec.mu.Unlock()
	testutil.Until(t, 10*time.Second, "healthy once the change is programmed", func() bool { return p.Health() == nil && p.Pending() == 0 })
}

// TestHealthCheckNodePort: a Local service's health-check NodePort
// answers 200 with the number of its endpoints on this host, 503 with
// none, and closes with the service (kube-proxy's healthCheckNodePort).
func TestHealthCheckNodePort(t *testing.T) {
	st := storetest.New(t)
	storetest.Put(t, st, store.AliveKey("h1"), store.HostAlive{Name: "h1"})
	storetest.Put(t, st, store.AliveKey("h2"), store.HostAlive{Name: "h2"})
	port := testutil.FreePort(t)
	svc := store.Service{Name: "web", Selector: web, Type: "NodePort", ClusterIP: netip.MustParseAddr("10.96.0.20"),
		Ports:                 []store.ServicePort{{Protocol: "TCP", Port: 80, TargetPort: 80, NodePort: 30080}},
		ExternalTrafficPolicy: "Local", HealthCheckNodePort: uint16(port)}
	storetest.Put(t, st, store.ServiceKey("web"), svc)
	storetest.Put(t, st, store.EndpointMetaKey("h1", "e1"), meta("e1", "c1", "10.244.0.5", true, web))
	storetest.Put(t, st, store.EndpointMetaKey("h2", "e2"), meta("e2", "c2", "10.244.1.5", true, web))
	cat := catalog.New("h1", false, storetest.Logger(t))
	p := New(Config{Host: "h1", Store: st, Catalog: cat, Programmer: &recorder{}, Logger: storetest.Logger(t), HealthCheckHost: "127.0.0.1"})
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { cat.Run(ctx, feed.Start(ctx, st, storetest.Logger(t))) })
	wg.Go(func() { p.Run(ctx) })
	t.Cleanup(func() { cancel(); wg.Wait() })
	url := fmt.Sprintf("http://127.0.0.1:%d/", port)
	check := func(wantCode int, wantBody string) func() bool {
		return func() bool {
			resp, err := http.Get(url)
			if err != nil {
				return wantCode == 0
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			return resp.StatusCode == wantCode && strings.Contains(string(b), wantBody)
		}
	}
	testutil.Until(t, 10*time.Second, "200 with one local endpoint", check(http.StatusOK, `"name":"web"},"localEndpoints":1`))
	storetest.Put(t, st, store.EndpointMetaKey("h1", "e1"), meta("e1", "c1", "10.244.0.5", false, web))
	testutil.Until(t, 10*time.Second, "503 with none local (h2's does not count)", check(http.StatusServiceUnavailable, `"localEndpoints":0`))
	storetest.Delete(t, st, store.ServiceKey("web"))
	testutil.Until(t, 10*time.Second, "the port closed with the service", check(0, ""))
}

// TestProxyProgramsReachableEndpoints: h1 programs the endpoints it can
// reach: its own bridge network's, other hosts' on a vxlan network and on
// a macvlan network; not h2's bridge or --internal network's, nor its own
// macvlan endpoint without host access. A service with nothing reachable
// gets no endpoints (the data plane rejects at once); the catalog's view
// says from where each endpoint is reachable.
func TestProxyProgramsReachableEndpoints(t *testing.T) {
	st := storetest.New(t)
	for _, h := range []string{"h1", "h2"} {
		storetest.Put(t, st, store.AliveKey(h), store.HostAlive{Name: h})
	}
	nets := map[string]store.Network{
		"h1/br": {Mode: "bridge"}, "h2/br": {Mode: "bridge"}, "h2/vx": {Mode: "vxlan"},
		"h2/vxint": {Mode: "vxlan", Internal: true}, "h1/mv": {Mode: "macvlan"}, "h2/mv": {Mode: "macvlan"},
	}
	for k, n := range nets {
		host, id, _ := strings.Cut(k, "/")
		n.ID, n.Host = id, host
		storetest.Put(t, st, store.NetworkKey(host, id), n)
	}
	m := func(ep, net, ip string) store.EndpointMeta {
		rec := meta(ep, "c-"+ep, ip, true, web)
		rec.Network = net
		return rec
	}
	storetest.Put(t, st, store.EndpointMetaKey("h1", "a"), m("a", "br", "10.1.0.2"))
	storetest.Put(t, st, store.EndpointMetaKey("h2", "b"), m("b", "br", "10.2.0.2"))
	storetest.Put(t, st, store.EndpointMetaKey("h2", "c"), m("c", "vx", "10.244.1.2"))
	storetest.Put(t, st, store.EndpointMetaKey("h2", "d"), m("d", "vxint", "10.245.1.2"))
	storetest.Put(t, st, store.EndpointMetaKey("h1", "e"), m("e", "mv", "192.168.1.10"))
	storetest.Put(t, st, store.EndpointMetaKey("h2", "f"), m("f", "mv", "192.168.1.11"))
	storetest.Put(t, st, store.ServiceKey("web"), store.Service{Name: "web", Selector: map[string]string{"app": "web"},
		ClusterIP: netip.MustParseAddr("10.96.0.20"), Ports: []store.ServicePort{{Protocol: "TCP", Port: 80, TargetPort: 80}}})
	rec := &recorder{}
	startProxy(t, st, rec)
	first := rec.next(t, 0)
	want := []dataplane.ServiceEndpoint{ep("10.1.0.2", true), ep("10.244.1.2", false), ep("192.168.1.11", false)}
	if len(first.svcs) != 1 || !slices.Equal(first.svcs[0].Endpoints, want) {
		t.Fatalf("h1 programs %+v, want %v", first.svcs, want)
	}
	cat, err := catalog.Load(context.Background(), st, "h1", false)
	if err != nil {
		t.Fatal(err)
	}
	s, _ := cat.Lookup("web")
	reach := map[string]string{}
	for _, v := range cat.EndpointViews(s.Service) {
		reach[v.Container] = v.Reach
	}
	for ctr, want := range map[string]string{
		"c-a": "only from host h1: a single-host (bridge) network", "c-c": "",
		"c-d": "only from host h2: an --internal network",
		"c-e": "not from host h1: a macvlan network without podnet.host-access (its host cannot reach it)",
	} {
		if reach[ctr] != want {
			t.Errorf("%s: reach %q, want %q", ctr, reach[ctr], want)
		}
	}
}
