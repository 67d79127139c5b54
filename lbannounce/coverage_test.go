package lbannounce

import (
	"net/netip"
	"testing"
	"time"

	"github.com/podnet/podnet/catalog"
	"github.com/podnet/podnet/internal/metrics"
	"github.com/podnet/podnet/internal/metrics/metricstest"
	"github.com/podnet/podnet/internal/testutil"
	"github.com/podnet/podnet/store"
	"github.com/podnet/podnet/store/storetest"
)

// TestUnannounced: an address counts when some host could announce it and
// none does: an L2 address without a claim (unless this pass just won
// it), a BGP address in no route list of a host with an established
// session; a Local service without endpoints, or an address in no pool,
// never counts.
func TestUnannounced(t *testing.T) {
	pools := []store.LBPool{
		{Name: "lan", Mode: store.LBModeL2, CIDRs: []netip.Prefix{netip.MustParsePrefix("192.0.2.240/28")}},
		{Name: "routed", Mode: store.LBModeBGP, CIDRs: []netip.Prefix{netip.MustParsePrefix("198.51.100.0/24")}},
	}
	a := func(s string) netip.Addr { return netip.MustParseAddr(s) }
	lbs := []catalog.LoadBalancer{
		{Service: "claimed", IP: a("192.0.2.241")},
		{Service: "won-now", IP: a("192.0.2.242")},
		{Service: "free", IP: a("192.0.2.243")},
		{Service: "local-nobody", IP: a("192.0.2.244"), Local: true},
		{Service: "local-free", IP: a("192.0.2.245"), Local: true, Hosts: []string{"h2"}},
		{Service: "routed", IP: a("198.51.100.1")},
		{Service: "routed-no-session", IP: a("198.51.100.2")},
		{Service: "not-routed", IP: a("198.51.100.3")},
		{Service: "no-pool", IP: a("203.0.113.9")},
	}
	snap := snapshot{pools: pools, loaded: true,
		claims: map[netip.Addr]claim{a("192.0.2.241"): {L2Claim: store.L2Claim{Host: "h2", Service: "claimed"}}},
		speakers: map[string]store.LBSpeaker{
			"h1": {Host: "h1", Announced: []netip.Addr{a("198.51.100.1")},
				Sessions: []store.BGPSession{{Peer: "tor", State: "Active"}, {Peer: "tor2", State: "Established"}}},
			"h2": {Host: "h2", Announced: []netip.Addr{a("198.51.100.1"), a("198.51.100.2")},
				Sessions: []store.BGPSession{{Peer: "tor", State: "Connect"}}},
		}}
	held := map[netip.Addr]string{a("192.0.2.242"): "eth0"}
	l2, bgp := unannounced(lbs, snap, held)
	if l2 != 2 || bgp != 2 {
		t.Fatalf("unannounced: l2 %d, bgp %d; want 2 (free, local-free) and 2 (routed-no-session, not-routed)", l2, bgp)
	}
}

// TestCoverageMetric: announcers running against etcd set
// podnet_lb_unannounced_addresses: an L2 address is covered once a host
// claims it; a BGP address stays uncovered while no host has an
// established session (the fake router has none); a Local service
// without endpoints counts for neither.
func TestCoverageMetric(t *testing.T) {
	e := storetest.Start(t)
	st := e.Client(t, "")
	seed(t, st)
	cat := &fakeCatalog{}
	cat.set(catalog.LoadBalancer{Service: "web", IP: l2Addr}, catalog.LoadBalancer{Service: "api", IP: bgpAddr})
	gauge := func(mode string) float64 { return metricstest.Value(metrics.LBUnannounced.WithLabelValues(mode)) }
	startHosts(t, e, cat, "h1", "h2")
	testutil.Until(t, 10*time.Second, "the L2 address covered, the BGP one not", func() bool {
		return gauge("l2") == 0 && gauge("bgp") == 1 && len(storetest.Keys(t, st, store.L2ClaimsPrefix)) == 1
	})
	cat.set(catalog.LoadBalancer{Service: "web", IP: l2Addr, Local: true}, catalog.LoadBalancer{Service: "api", IP: bgpAddr, Local: true})
	testutil.Until(t, 10*time.Second, "Local services without endpoints count for neither", func() bool {
		return gauge("l2") == 0 && gauge("bgp") == 0
	})
}
