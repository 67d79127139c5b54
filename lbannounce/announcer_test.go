package lbannounce

import (
	"context"
	"maps"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/podnet/podnet/catalog"
	"github.com/podnet/podnet/internal/testutil"
	"github.com/podnet/podnet/store"
	"github.com/podnet/podnet/store/storetest"
)

// fakeCatalog hands out a settable list of load balancers.
type fakeCatalog struct {
	mu   sync.Mutex
	lbs  []catalog.LoadBalancer
	subs []chan struct{}
}

func (c *fakeCatalog) Loaded() bool                           { return true }
func (c *fakeCatalog) UnderlayHost(netip.Addr) (string, bool) { return "", false }
func (c *fakeCatalog) LoadBalancers() []catalog.LoadBalancer {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.lbs)
}
func (c *fakeCatalog) Subscribe() <-chan struct{} { return c.sub() }
func (c *fakeCatalog) sub() chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := make(chan struct{}, 1)
	c.subs = append(c.subs, ch)
	return ch
}
func (c *fakeCatalog) set(lbs ...catalog.LoadBalancer) {
	c.mu.Lock()
	c.lbs = lbs
	subs := c.subs
	c.mu.Unlock()
	signalAll(subs)
}
func signalAll(subs []chan struct{}) {
	for _, ch := range subs {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// fakeL2 records what it answers for.
type fakeL2 struct {
	mu  sync.Mutex
	now map[netip.Addr]string
}

func (f *fakeL2) Set(m map[netip.Addr]string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.now = maps.Clone(m)
	return nil
}
func (f *fakeL2) Close() { _ = f.Set(nil) }
func (f *fakeL2) answers(a netip.Addr) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	_, ok := f.now[a]
	return ok
}

// fakeRouter records the peers and routes it is given.
type fakeRouter struct {
	mu     sync.Mutex
	peers  []store.BGPPeer
	routes []netip.Addr
	ch     chan struct{}
}

func (f *fakeRouter) Apply(p []store.BGPPeer, r []netip.Addr) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.peers, f.routes = p, slices.Clone(r)
	return nil
}
func (f *fakeRouter) Sessions() []store.BGPSession { return nil }
func (f *fakeRouter) Changed() <-chan struct{}     { return f.ch }
func (f *fakeRouter) Stop()                        { _ = f.Apply(nil, nil) }
func (f *fakeRouter) announces(a netip.Addr) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Contains(f.routes, a)
}

type upIface struct{}

func (upIface) For(netip.Addr) string { return "eth0" }

// host is one announcer on the shared etcd.
type host struct {
	name   string
	l2     *fakeL2
	router *fakeRouter
	stop   func()
}

func startHosts(t *testing.T, e *storetest.Etcd, cat *fakeCatalog, names ...string) map[string]*host {
	t.Helper()
	out := map[string]*host{}
	for _, n := range names {
		h := &host{name: n, l2: &fakeL2{}, router: &fakeRouter{ch: make(chan struct{})}}
		a := New(Config{Host: n, Store: e.Client(t, ""), Catalog: cat, L2: h.l2, Router: h.router, Interfaces: upIface{},
			TTL: 2 * time.Second, ClaimDelay: 100 * time.Millisecond, Logger: storetest.Logger(t)})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { defer close(done); a.Run(ctx) }()
		var once sync.Once
		h.stop = func() { once.Do(func() { cancel(); <-done }) }
		t.Cleanup(h.stop)
		out[n] = h
	}
	return out
}

// answering lists the hosts answering for a.
func answering(hosts map[string]*host, a netip.Addr) []string {
	var out []string
	for _, h := range hosts {
		if h.l2.answers(a) {
			out = append(out, h.name)
		}
	}
	slices.Sort(out)
	return out
}

var (
	l2Addr  = netip.MustParseAddr("192.0.2.241")
	bgpAddr = netip.MustParseAddr("198.51.100.7")
)

func seed(t *testing.T, st *store.Store) {
	t.Helper()
	storetest.Put(t, st, store.LBPoolKey("lan"), store.LBPool{Name: "lan", Mode: store.LBModeL2, CIDRs: []netip.Prefix{netip.MustParsePrefix("192.0.2.240/28")}})
	storetest.Put(t, st, store.LBPoolKey("routed"), store.LBPool{Name: "routed", Mode: store.LBModeBGP, CIDRs: []netip.Prefix{netip.MustParsePrefix("198.51.100.0/24")}})
	storetest.Put(t, st, store.BGPPeerKey("tor"), store.BGPPeer{Name: "tor", PeerAddress: netip.MustParseAddr("192.0.2.1"), PeerASN: 64513, MyASN: 64512, Hosts: []string{"h1", "h2"}})
}

// Exactly one host answers for an L2 address; Local moves it to the host
// with the endpoint; a clean stop hands it over at once; BGP addresses
// are announced by every selected host (Cluster) or only those with an
// endpoint (Local).
func TestAnnouncerElection(t *testing.T) {
	e := storetest.Start(t)
	st := e.Client(t, "")
	seed(t, st)
	cat := &fakeCatalog{}
	cat.set(catalog.LoadBalancer{Service: "web", IP: l2Addr}, catalog.LoadBalancer{Service: "api", IP: bgpAddr})
	hosts := startHosts(t, e, cat, "h1", "h2", "h3")
	one := func(what string, want ...string) string {
		t.Helper()
		var got []string
		testutil.Until(t, 10*time.Second, what, func() bool {
			got = answering(hosts, l2Addr)
			return len(got) == 1 && (len(want) == 0 || slices.Contains(want, got[0]))
		})
		var c store.L2Claim
		if _, err := st.Get(context.Background(), store.L2ClaimKey(l2Addr), &c); err != nil || c.Host != got[0] {
			t.Fatalf("%s: claim %+v %v, answering %v", what, c, err, got)
		}
		return got[0]
	}
	first := one("one host answers for the L2 address")
	testutil.Until(t, 5*time.Second, "h1 and h2 (the peer's hosts) announce the BGP address, h3 does not", func() bool {
		return hosts["h1"].router.announces(bgpAddr) && hosts["h2"].router.announces(bgpAddr) && !hosts["h3"].router.announces(bgpAddr)
	})

	// Local: only a host with an endpoint answers or announces.
	other := "h1"
	if first == "h1" {
		other = "h2"
	}
	cat.set(catalog.LoadBalancer{Service: "web", IP: l2Addr, Local: true, Hosts: []string{other}},
		catalog.LoadBalancer{Service: "api", IP: bgpAddr, Local: true, Hosts: []string{"h2"}})
	one("the L2 address moves to the host with the endpoint", other)
	testutil.Until(t, 5*time.Second, "only h2 announces the BGP address", func() bool {
		return !hosts["h1"].router.announces(bgpAddr) && hosts["h2"].router.announces(bgpAddr)
	})
	cat.set(catalog.LoadBalancer{Service: "web", IP: l2Addr, Local: true},
		catalog.LoadBalancer{Service: "api", IP: bgpAddr, Local: true})
	testutil.Until(t, 5*time.Second, "nobody answers or announces without an endpoint", func() bool {
		return len(answering(hosts, l2Addr)) == 0 && !hosts["h2"].router.announces(bgpAddr)
	})

	// A clean stop hands over within the claim delays, not the lease.
	cat.set(catalog.LoadBalancer{Service: "web", IP: l2Addr})
	holder := one("one host answers again")
	start := time.Now()
	hosts[holder].stop()
	next := one("another host takes over after a clean stop")
	if took := time.Since(start); next == holder || took > 1500*time.Millisecond {
		t.Fatalf("handover to %s took %v (lease TTL 2s): a clean stop must hand over at once", next, took)
	}
	// The service goes: the claim goes.
	cat.set()
	testutil.Until(t, 5*time.Second, "the claim is released with the service", func() bool {
		return len(storetest.Keys(t, st, store.L2ClaimsPrefix)) == 0 && len(answering(hosts, l2Addr)) == 0
	})
}

// A host that dies without a word (its lease runs out) loses its
// addresses within the announcer TTL.
func TestAnnouncerLeaseExpiry(t *testing.T) {
	e := storetest.Start(t)
	st := e.Client(t, "")
	seed(t, st)
	cat := &fakeCatalog{}
	cat.set(catalog.LoadBalancer{Service: "web", IP: l2Addr})
	// A claim of a host that is gone, on a lease nobody renews.
	lease, err := st.Grant(context.Background(), 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := st.Txn(context.Background(), nil, []store.Op{store.PutLeased(store.L2ClaimKey(l2Addr),
		store.L2Claim{Host: "gone", Service: "web", Lease: lease}, lease)}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	hosts := startHosts(t, e, cat, "h1", "h2")
	testutil.Until(t, 10*time.Second, "a live host takes the address of the dead one", func() bool {
		return len(answering(hosts, l2Addr)) == 1
	})
	if took := time.Since(start); took > 2*time.Second+3*time.Second {
		t.Fatalf("takeover took %v: want within the TTL (2s) + 3s", took)
	}
}
