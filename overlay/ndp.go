package overlay

import (
	"net/netip"
	"slices"
	"sync"

	"github.com/podnet/podnet/internal/metrics"
	"github.com/podnet/podnet/internal/nd"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// responders are the NDP responders of the bridges of IPv6 pools (doc.go,
// "IPv6"), by bridge name.
type responders struct {
	mu     sync.Mutex
	by     map[string]*responder
	failed map[string]string // bridge → last error logged, so a lasting one is logged once
}

// responder answers on one bridge for its network's IPv6 pools.
type responder struct {
	proxy *nd.Proxy
	nl    *netlink.Handle // route lookups, in the bridge's namespace
	pools []netip.Prefix
}

func (r *responder) close() {
	r.proxy.Close()
	r.nl.Close()
}

// syncResponders runs one responder on the bridge of every registered
// network with an IPv6 pool, and none elsewhere: a responder whose bridge
// was recreated (new index) or whose pools changed is replaced.
func (o *Overlay) syncResponders() {
	o.mu.Lock()
	want := map[string][]netip.Prefix{}
	for _, n := range o.networks {
		for _, p := range n.Pools {
			if n.Bridge != "" && p.Addr().Is6() {
				want[n.Bridge] = append(want[n.Bridge], p.Masked())
			}
		}
	}
	o.mu.Unlock()
	rs := &o.responders
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if rs.by == nil {
		rs.by, rs.failed = map[string]*responder{}, map[string]string{}
	}
	for name, r := range rs.by {
		pools := want[name]
		slices.SortFunc(pools, netip.Prefix.Compare)
		if l, err := o.k.NL.LinkByName(name); err == nil && l.Attrs().Index == r.proxy.Index() && slices.Equal(pools, r.pools) {
			continue
		}
		r.close()
		delete(rs.by, name)
		o.log.Info("no longer answering neighbor solicitations for the IPv6 pools", "iface", name)
	}
	for name := range rs.failed {
		if want[name] == nil {
			delete(rs.failed, name)
		}
	}
	for name, pools := range want {
		if rs.by[name] != nil {
			continue
		}
		slices.SortFunc(pools, netip.Prefix.Compare)
		r, err := o.openResponder(name, pools)
		if err != nil {
			if rs.failed[name] != err.Error() {
				o.log.Warn("IPv6 containers on this bridge cannot reach other hosts' containers until its NDP responder starts; retrying", "iface", name, "err", err)
				rs.failed[name] = err.Error()
			}
			continue
		}
		delete(rs.failed, name)
		rs.by[name] = r
		o.log.Info("answering neighbor solicitations for other hosts' addresses of the IPv6 pools", "iface", name, "pools", pools)
	}
}

// openResponder starts the responder of one bridge, in the namespace
// the overlay programs.
func (o *Overlay) openResponder(bridge string, pools []netip.Prefix) (*responder, error) {
	l, err := o.k.NL.LinkByName(bridge)
	if err != nil {
		return nil, err
	}
	idx := l.Attrs().Index
	r := &responder{pools: pools}
	err = o.inNetNS(func() error {
		h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
		if err != nil {
			return err
		}
		p, err := nd.Listen(bridge, func(t netip.Addr) bool { return answers(h, idx, pools, t) },
			func(outcome string) { metrics.OverlayNDP.WithLabelValues(outcome).Inc() }, o.log)
		if err != nil {
			h.Close()
			return err
		}
		r.nl, r.proxy = h, p
		return nil
	})
	if err != nil {
		return nil, err
	}
	return r, nil
}

// closeResponders stops every responder (Run returning).
func (o *Overlay) closeResponders() {
	rs := &o.responders
	rs.mu.Lock()
	defer rs.mu.Unlock()
	for name, r := range rs.by {
		r.close()
		delete(rs.by, name)
	}
}

// ResponderStats returns the counts of each bridge's NDP responder.
func (o *Overlay) ResponderStats() map[string]nd.Stats {
	rs := &o.responders
	rs.mu.Lock()
	defer rs.mu.Unlock()
	out := map[string]nd.Stats{}
	for name, r := range rs.by {
		out[name] = r.proxy.Stats()
	}
	return out
}

// answers decides, as the kernel's proxy_arp does for IPv4, whether the
// bridge (index bridge) answers a solicitation for target: only for an
// address of one of its pools that this host routes elsewhere than back
// out of the bridge — another host's container, by its block or exception
// route into pnx<VNI> or pnwg. A local container (the pool's on-link route
// or its exception route leads to the bridge), the gateway (a local
// address) and an address nobody routes are not answered.
func answers(h *netlink.Handle, bridge int, pools []netip.Prefix, target netip.Addr) bool {
	if !slices.ContainsFunc(pools, func(p netip.Prefix) bool { return p.Contains(target) }) {
		return false
	}
	rs, err := h.RouteGet(target.AsSlice())
	if err != nil || len(rs) == 0 {
		return false
	}
	r := rs[0]
	return r.Type == unix.RTN_UNICAST && r.LinkIndex != 0 && r.LinkIndex != bridge
}
