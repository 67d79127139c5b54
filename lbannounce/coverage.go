package lbannounce

import (
	"net/netip"

	"github.com/podnet/podnet/catalog"
	"github.com/podnet/podnet/internal/metrics"
	"github.com/podnet/podnet/store"
)

// Coverage: after each pass, podnet_lb_unannounced_addresses counts the
// load-balancer addresses that some host could announce but that none
// does, as this host's view shows them, so an address unreachable from
// outside raises an alert whichever host Prometheus asks. An address
// could be announced when its service is Cluster, or Local with a ready
// endpoint somewhere (a Local service without one is down by design, not
// by a fault of the announcers). It is announced when, for an L2 pool,
// some host holds its claim (this pass's own winnings included), and for
// a BGP pool when it is among the routes of a host whose speaker record
// shows an established session (records come one pass late: failover
// and session changes take seconds, the alert waits a minute).

// unannounced counts, by pool mode, the addresses of lbs that could be
// announced and are not; held are the L2 addresses this host answers
// for after this pass.
func unannounced(lbs []catalog.LoadBalancer, snap snapshot, held map[netip.Addr]string) (l2, bgp int) {
	routed := map[netip.Addr]bool{}
	for _, rec := range snap.speakers {
		if !established(rec.Sessions) {
			continue
		}
		for _, a := range rec.Announced {
			routed[a] = true
		}
	}
	for _, lb := range lbs {
		if lb.Local && len(lb.Hosts) == 0 {
			continue
		}
		p, ok := snap.poolOf(lb.IP)
		if !ok {
			continue
		}
		switch p.Mode {
		case store.LBModeL2:
			_, claimed := snap.claims[lb.IP]
			if _, mine := held[lb.IP]; !claimed && !mine {
				l2++
			}
		case store.LBModeBGP:
			if !routed[lb.IP] {
				bgp++
			}
		}
	}
	return l2, bgp
}

func established(ss []store.BGPSession) bool {
	for _, s := range ss {
		if s.State == "Established" {
			return true
		}
	}
	return false
}

// observeCoverage sets podnet_lb_unannounced_addresses after a pass.
func observeCoverage(lbs []catalog.LoadBalancer, snap snapshot, held map[netip.Addr]string) {
	l2, bgp := unannounced(lbs, snap, held)
	metrics.LBUnannounced.WithLabelValues("l2").Set(float64(l2))
	metrics.LBUnannounced.WithLabelValues("bgp").Set(float64(bgp))
}
