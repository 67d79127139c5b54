package overlay

import (
	"maps"
	"net"
	"net/netip"
	"slices"
	"sort"
)

// view is what etcd says, as far as the overlay cares: the hosts' underlay
// addresses, which hosts are alive, and the blocks and addresses of the
// pools of the networks registered here. watch.go keeps it current.
type view struct {
	hosts map[string]netip.Addr // host → underlay (invalid if unusable)
	alive map[string]bool
	pools map[netip.Prefix]*poolView
	// hostsLoaded and aliveLoaded are set by the first snapshot of each.
	hostsLoaded, aliveLoaded bool
}

// poolView is one pool's share of the view.
type poolView struct {
	loaded bool
	refs   map[string]bool         // hosts using the pool
	blocks map[netip.Prefix]string // block → claiming host
	bits   map[int]int             // prefix lengths of the blocks → count
	addrs  map[netip.Addr]addrOwner
}

// addrOwner is the part of an address record that matters here.
type addrOwner struct {
	host      string
	container bool // gateway and aux addresses are never exceptions
}

func newView() *view {
	return &view{hosts: map[string]netip.Addr{}, alive: map[string]bool{}, pools: map[netip.Prefix]*poolView{}}
}

func newPoolView() *poolView {
	return &poolView{refs: map[string]bool{}, blocks: map[netip.Prefix]string{}, bits: map[int]int{}, addrs: map[netip.Addr]addrOwner{}}
}

func (p *poolView) setBlock(b netip.Prefix, host string) {
	if _, ok := p.blocks[b]; !ok {
		p.bits[b.Bits()]++
	}
	p.blocks[b] = host
}

func (p *poolView) delBlock(b netip.Prefix) {
	if _, ok := p.blocks[b]; !ok {
		return
	}
	delete(p.blocks, b)
	if p.bits[b.Bits()]--; p.bits[b.Bits()] == 0 {
		delete(p.bits, b.Bits())
	}
}

// claimant returns the host whose block holds a ("" if none).
func (p *poolView) claimant(a netip.Addr) string {
	for bits := range p.bits {
		b, err := a.Prefix(bits)
		if err != nil {
			continue
		}
		if h, ok := p.blocks[b]; ok {
			return h
		}
	}
	return ""
}

// local is this host's side of the computation.
type local struct {
	host     string
	underlay Underlay
	networks []Network // MTU resolved; any order
}

// desired is the kernel state the overlay wants, computed from a view.
type desired struct {
	devices map[string]*devState           // by device name
	routes  map[netip.Prefix]route         // by destination
	proxies map[string]map[netip.Addr]bool // bridge → IPv6 addresses it answers NDP for
}

// devState is what one VXLAN device holds: a permanent neighbor per remote
// host (its underlay address, and for IPv6 blocks a link-local next hop,
// both resolving to its VTEP MAC) and an FDB entry sending that MAC to the
// host's underlay address.
type devState struct {
	vni   int
	neigh map[netip.Addr]string // IP → MAC
	fdb   map[string]netip.Addr // MAC → underlay destination
	hosts map[string]netip.Addr // remote host → underlay, for logs
}

// route is one route the overlay owns.
type route struct {
	dst netip.Prefix
	// via is the next hop; invalid for a device route (scope link).
	via    netip.Addr
	dev    string
	onlink bool
	// host is where the route leads ("" = this host's bridge); vni and
	// exception (a /32 or /128 for one address) are for logs.
	host      string
	vni       int
	exception bool
}

// target is how a remote host is reached on one network.
type target struct {
	underlay netip.Addr
	mac      net.HardwareAddr
}

// computeDesired turns the view into the kernel state this host wants. It
// is a pure function of its inputs; warn (may be nil) reports data it had
// to ignore.
func computeDesired(l local, v *view, warn func(msg string, args ...any)) desired {
	if warn == nil {
		warn = func(string, ...any) {}
	}
	d := desired{devices: map[string]*devState{}, routes: map[netip.Prefix]route{}, proxies: map[string]map[netip.Addr]bool{}}
	nets := slices.Clone(l.networks)
	sort.Slice(nets, func(i, j int) bool { return nets[i].ID < nets[j].ID })
	for _, n := range nets {
		dev := DeviceName(n.VNI)
		if _, dup := d.devices[dev]; dup {
			warn("two networks share a VNI; ignoring the second", "vni", n.VNI, "network", n.ID)
			continue
		}
		ds := &devState{vni: n.VNI, neigh: map[netip.Addr]string{}, fdb: map[string]netip.Addr{}, hosts: map[string]netip.Addr{}}
		d.devices[dev] = ds
		targets := remoteTargets(l, v, n.VNI, warn)
		users := map[string]bool{}
		v6 := false
		for _, p := range n.Pools {
			pv := v.pools[p.Masked()]
			if pv == nil {
				continue
			}
			v6 = v6 || p.Addr().Is6()
			for h := range pv.refs {
				users[h] = true
			}
			for b, h := range pv.blocks {
				users[h] = true
				if t, ok := targets[h]; ok && h != l.host {
					d.addRoute(via(l, n, b, h, t), warn)
				}
			}
			exceptions(&d, l, n, pv, targets, users, warn)
		}
		// Neighbors and FDB for every remote alive host using the network.
		for h := range users {
			t, ok := targets[h]
			if !ok {
				continue
			}
			mac := t.mac.String()
			ds.neigh[t.underlay] = mac
			ds.fdb[mac] = t.underlay
			ds.hosts[h] = t.underlay
			if v6 {
				ds.neigh[linkLocal(t.mac)] = mac
			}
		}
	}
	return d
}

// remoteTargets lists the hosts that may be programmed for a VNI: alive,
// registered with a usable IPv4 underlay address that is not this host's,
// and whose VTEP MAC collides with no other host's (a collision would
// send one host's traffic to both).
func remoteTargets(l local, v *view, vni int, warn func(string, ...any)) map[string]target {
	names := make([]string, 0, len(v.alive))
	for h := range v.alive {
		names = append(names, h)
	}
	sort.Strings(names)
	out := make(map[string]target, len(names))
	macs := map[string]string{VTEPMAC(l.host, vni).String(): l.host}
	for _, h := range names {
		u, ok := v.hosts[h]
		if h == l.host || !ok || !u.Is4() {
			continue
		}
		if u == l.underlay.Addr {
			warn("remote host claims this host's underlay address; ignoring it", "host", h, "underlay", u)
			continue
		}
		mac := VTEPMAC(h, vni)
		if other, dup := macs[mac.String()]; dup {
			warn("VTEP MAC collision; ignoring host", "host", h, "other", other, "vni", vni, "mac", mac)
			continue
		}
		macs[mac.String()] = h
		out[h] = target{underlay: u, mac: mac}
	}
	return out
}

// exceptions adds the /32 (/128) routes of container addresses whose owner
// is not their block's claimant: to the owner if remote and alive, to this
// host's bridge if the owner is this host and a remote host claims the
// block (its block route would shadow the container). IPv6 has no proxy
// ARP: the bridge answers neighbor solicitations only for addresses listed
// as proxy entries, so every remote container address of an IPv6 pool gets
// one.
func exceptions(d *desired, l local, n Network, pv *poolView, targets map[string]target, users map[string]bool, warn func(string, ...any)) {
	for a, o := range pv.addrs {
		if !o.container || o.host == "" {
			continue
		}
		t, reachable := targets[o.host]
		if o.host != l.host {
			users[o.host] = true
			if reachable && a.Is6() && n.Bridge != "" {
				d.addProxy(n.Bridge, a)
			}
		}
		claimant := pv.claimant(a)
		if claimant == o.host {
			continue
		}
		host := netip.PrefixFrom(a, a.BitLen())
		switch {
		case o.host == l.host && claimant != "" && n.Bridge != "":
			d.addRoute(route{dst: host, dev: n.Bridge, vni: n.VNI, exception: true}, warn)
		case o.host != l.host && reachable:
			d.addRoute(via(l, n, host, o.host, t), warn)
		}
	}
}

// via is the route to dst (a block, or one address) on host h.
func via(l local, n Network, dst netip.Prefix, h string, t target) route {
	r := route{dst: dst, host: h, vni: n.VNI, exception: dst.IsSingleIP()}
	switch {
	case dst.Addr().Is6():
		// IPv6 routes cannot have an IPv4 next hop (RTA_VIA is refused
		// for IPv6): the next hop is the host's VTEP link-local address,
		// a permanent neighbor resolving to its VTEP MAC.
		r.via, r.dev, r.onlink = linkLocal(t.mac), DeviceName(n.VNI), true
	case n.DirectRouting && l.underlay.Prefix.Contains(t.underlay):
		r.via, r.dev = t.underlay, l.underlay.Dev
	default:
		r.via, r.dev, r.onlink = t.underlay, DeviceName(n.VNI), true
	}
	return r
}

func (d *desired) addRoute(r route, warn func(string, ...any)) {
	if old, ok := d.routes[r.dst]; ok && old != r {
		warn("two routes for one destination; keeping the first", "block", r.dst, "host", old.host, "other", r.host)
		return
	}
	d.routes[r.dst] = r
}

func (d *desired) addProxy(bridge string, a netip.Addr) {
	if d.proxies[bridge] == nil {
		d.proxies[bridge] = map[netip.Addr]bool{}
	}
	d.proxies[bridge][a] = true
}

// equal reports whether d and e want the same kernel state.
func (d desired) equal(e desired) bool {
	if !maps.Equal(d.routes, e.routes) || len(d.devices) != len(e.devices) || len(d.proxies) != len(e.proxies) {
		return false
	}
	for dev, a := range d.devices {
		b, ok := e.devices[dev]
		if !ok || a.vni != b.vni || !maps.Equal(a.neigh, b.neigh) || !maps.Equal(a.fdb, b.fdb) {
			return false
		}
	}
	for br, a := range d.proxies {
		if b, ok := e.proxies[br]; !ok || !maps.Equal(a, b) {
			return false
		}
	}
	return true
}

// clone copies d deeply enough that later edits of d do not show.
func (d desired) clone() desired {
	c := desired{devices: make(map[string]*devState, len(d.devices)), routes: maps.Clone(d.routes),
		proxies: make(map[string]map[netip.Addr]bool, len(d.proxies))}
	for dev, ds := range d.devices {
		c.devices[dev] = &devState{vni: ds.vni, neigh: maps.Clone(ds.neigh), fdb: maps.Clone(ds.fdb), hosts: maps.Clone(ds.hosts)}
	}
	for br, m := range d.proxies {
		c.proxies[br] = maps.Clone(m)
	}
	return c
}

// linkLocal is the EUI-64 link-local address of mac (fe80::…ff:fe…).
func linkLocal(mac net.HardwareAddr) netip.Addr {
	var b [16]byte
	b[0], b[1] = 0xfe, 0x80
	b[8], b[9], b[10] = mac[0]^0x02, mac[1], mac[2]
	b[11], b[12] = 0xff, 0xfe
	b[13], b[14], b[15] = mac[3], mac[4], mac[5]
	return netip.AddrFrom16(b)
}
