package netpol

import (
	"context"
	"net/netip"
	"slices"
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

// fakeDP records what the agent programs.
type fakeDP struct {
	mu       sync.Mutex
	sets     []dataplane.Policy
	isolated [][]netip.Addr
}

func (f *fakeDP) SetPolicy(_ context.Context, p dataplane.Policy) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sets = append(f.sets, p)
	return nil
}

func (f *fakeDP) IsolatePending(_ context.Context, addrs []netip.Addr) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.isolated = append(f.isolated, addrs)
	return nil
}

// state is what the last SetPolicy says of address a: "in/out" groups
// or pending, "" when not in it.
func (f *fakeDP) state(a string) (ingress, egress string, ok bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.sets) == 0 {
		return "", "", false
	}
	p := f.sets[len(f.sets)-1]
	for _, ep := range p.Endpoints {
		if slices.Contains(ep.Addrs, netip.MustParseAddr(a)) {
			return ep.Ingress, ep.Egress, true
		}
	}
	return "", "", false
}

func (f *fakeDP) calls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.sets)
}

func addr(s string) []netip.Addr { return []netip.Addr{netip.MustParseAddr(s)} }

var db = store.NetworkPolicy{Name: "db", PodSelector: store.LabelSelector{MatchLabels: map[string]string{"app": "db"}},
	PolicyTypes: []string{store.PolicyIngress},
	Ingress:     []store.PolicyRule{{Peers: []store.PolicyPeer{{PodSelector: &store.LabelSelector{MatchLabels: map[string]string{"app": "web"}}}}}}}

func startAgent(t *testing.T, st *store.Store, dp *fakeDP) (*Agent, context.Context) {
	t.Helper()
	cat := catalog.New("h1", false, storetest.Logger(t))
	a := New(Config{Host: "h1", Catalog: cat, Programmer: dp, Logger: storetest.Logger(t)})
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait() })
	// A container started before the agent read etcd is isolated all the
	// same.
	if err := a.EndpointCreated(ctx, LocalEndpoint{ID: "e0", Network: "n1", Addrs: addr("10.0.0.10"), Enforced: true}); err != nil {
		t.Fatal(err)
	}
	if len(dp.isolated) != 1 {
		t.Fatalf("endpoint created before the first pass: isolated %v", dp.isolated)
	}
	wg.Go(func() { cat.Run(ctx, feed.Start(ctx, st, storetest.Logger(t))) })
	wg.Go(func() { a.Run(ctx) })
	testutil.Until(t, 10*time.Second, "first pass", func() bool { return dp.calls() > 0 })
	return a, ctx
}

func TestAgentIsolatesUntilLabelsKnown(t *testing.T) {
	st := storetest.New(t)
	storetest.Put(t, st, store.PolicyKey("db"), db)
	dp := &fakeDP{}
	a, ctx := startAgent(t, st, dp)
	if in, out, _ := dp.state("10.0.0.10"); in != dataplane.PolicyPending || out != "" {
		t.Fatalf("unknown container: ingress %q egress %q, want pending ingress only (no policy has Egress)", in, out)
	}
	// The watcher reports it: a web container, selected by nothing.
	a.Observe(ctx, store.EndpointMeta{Endpoint: "e0", Container: "c0", Name: "web-1", Labels: map[string]string{"app": "web"}})
	if _, _, ok := dp.state("10.0.0.10"); ok {
		t.Fatalf("web container still in the dispatch maps: %+v", dp.sets[len(dp.sets)-1].Endpoints)
	}
	// A db container: isolated by db, which allows web-1's address.
	if err := a.EndpointCreated(ctx, LocalEndpoint{ID: "e1", Network: "n1", Addrs: addr("10.0.0.11"), Enforced: true}); err != nil {
		t.Fatal(err)
	}
	if in, _, _ := dp.state("10.0.0.11"); in != dataplane.PolicyPending {
		t.Fatalf("new endpoint: ingress %q, want pending at once", in)
	}
	a.Observe(ctx, store.EndpointMeta{Endpoint: "e1", Container: "c1", Name: "db-1", Labels: map[string]string{"app": "db"}})
	in, _, _ := dp.state("10.0.0.11")
	p := dp.sets[len(dp.sets)-1]
	if in == "" || in == dataplane.PolicyPending || len(p.Groups) != 1 || len(p.AddrSets) != 1 {
		t.Fatalf("db-1: ingress %q, policy %+v", in, p)
	}
	for _, s := range p.AddrSets {
		if !slices.Equal(s, addr("10.0.0.10")) {
			t.Fatalf("web peers %v: want web-1's address, known in process before etcd", s)
		}
	}
	// A macvlan endpoint is not enforced.
	if err := a.EndpointCreated(ctx, LocalEndpoint{ID: "e2", Network: "lan", Addrs: addr("192.168.1.5")}); err != nil {
		t.Fatal(err)
	}
	if _, _, ok := dp.state("192.168.1.5"); ok {
		t.Fatal("a macvlan endpoint in the policy maps")
	}
	// Its rules go with the next pass, which Run makes at once (outside
	// the driver's request).
	a.EndpointDeleted(ctx, "e1")
	testutil.Until(t, 10*time.Second, "a deleted endpoint's rules gone", func() bool {
		_, _, ok := dp.state("10.0.0.11")
		return !ok
	})
}

// The connect-event shortcut: pending endpoints get their rules before
// the watcher could inspect their containers, when no mapping of
// endpoints to announced containers could make a difference, and only
// then.
func TestAgentShortcut(t *testing.T) {
	st := storetest.New(t)
	storetest.Put(t, st, store.PolicyKey("db"), db)
	dp := &fakeDP{}
	a, ctx := startAgent(t, st, dp)
	now := time.Now()
	create := func(id, ip string) {
		t.Helper()
		if err := a.EndpointCreated(ctx, LocalEndpoint{ID: id, Network: "n2", Addrs: addr(ip), Enforced: true}); err != nil {
			t.Fatal(err)
		}
	}
	pending := func(ip string) bool {
		in, _, _ := dp.state(ip)
		return in == dataplane.PolicyPending
	}
	// Two endpoints, two announced containers selected alike: both open.
	create("e1", "10.0.2.1")
	create("e2", "10.0.2.2")
	a.Connected(ctx, "n2", "c1", map[string]string{"app": "x"}, now)
	if !pending("10.0.2.1") {
		t.Fatal("one announcement for two pending endpoints: must wait")
	}
	a.Connected(ctx, "n2", "c2", map[string]string{"app": "y"}, now)
	if pending("10.0.2.1") || pending("10.0.2.2") {
		t.Fatal("two announced containers that no policy selects: their endpoints should be open")
	}
	// Two containers selected differently: wait for the watcher.
	create("e3", "10.0.2.3")
	create("e4", "10.0.2.4")
	a.Connected(ctx, "n2", "c3", map[string]string{"app": "db"}, now)
	a.Connected(ctx, "n2", "c4", map[string]string{"app": "x"}, now)
	if !pending("10.0.2.3") || !pending("10.0.2.4") {
		t.Fatal("a db and an x container: which endpoint is whose matters; both must stay pending")
	}
	a.Observe(ctx, store.EndpointMeta{Endpoint: "e3", Container: "c3", Labels: map[string]string{"app": "db"}})
	a.Observe(ctx, store.EndpointMeta{Endpoint: "e4", Container: "c4", Labels: map[string]string{"app": "x"}})
	if pending("10.0.2.3") || pending("10.0.2.4") {
		t.Fatal("known exactly: no longer pending")
	}
	// A pending endpoint went away after its container's announcement:
	// the announcement may be for it, not for the new one.
	create("e5", "10.0.2.5")
	a.EndpointDeleted(ctx, "e5")
	create("e6", "10.0.2.6")
	a.Connected(ctx, "n2", "c5", map[string]string{"app": "x"}, time.Now().Add(-100*time.Millisecond))
	if !pending("10.0.2.6") {
		t.Fatal("announcement older than the loss of a pending endpoint: must not be taken for the new one")
	}
}
