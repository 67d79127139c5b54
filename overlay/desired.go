package overlay

import (
	"maps"
	"net"
	"net/netip"
	"slices"
	"sort"

	"github.com/podnet/podnet/overlay/wireguard"
)

// local is this host's side of the computation.
type local struct {
	host     string
	underlay Underlay
	networks []Network // MTU resolved; any order
	// wg is this host's WireGuard device when traffic between hosts is
	// encrypted (nil: it is not).
	wg *wgLocal
}

// wgLocal is what the computation needs of this host's WireGuard device.
type wgLocal struct {
	dev string
	key wireguard.Key // public
}

// desired is the kernel state the overlay wants, computed from a view.
type desired struct {
	devices map[string]*devState   // by device name
	routes  map[netip.Prefix]route // by destination
	// peers are the WireGuard peers by remote host (encryption only).
	peers map[string]wireguard.Peer
	// addrs are the addresses podnet puts on its devices: this host's
	// tunnel addresses, each on the device its pool's routes leave by
	// (device → address; one prefix each, /32 or /128).
	addrs map[string]map[netip.Addr]bool
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
	// src is the preferred source of this host's own packets (ip route
	// … src): its tunnel address in the pool, on routes to other hosts
	// that leave by a podnet device; invalid otherwise.
	src netip.Addr
	// host is where the route leads ("" = this host's bridge); vni and
	// exception (a /32 or /128 for one address) are for logs.
	host      string
	vni       int
	exception bool
}

// target is how a remote host is reached on one network: through its
// VTEP (underlay and MAC), or with encryption through WireGuard device wg.
type target struct {
	underlay netip.Addr
	mac      net.HardwareAddr
	wg       string
}

// computeDesired turns the view into the kernel state this host wants. It
// is a pure function of its inputs; warn (may be nil) reports data it had
// to ignore.
func computeDesired(l local, v *view, warn func(msg string, args ...any)) desired {
	return newModel(l, v, warn).full()
}

// macKey is a VTEP MAC as a map key.
type macKey [6]byte

// model answers, for one view and this host's networks, what each entry of
// the desired state should be: whole (full) for a full pass, or one key at
// a time for an incremental pass (incremental.go). Both use the same
// per-entry rules below, so they cannot disagree. Its only state besides
// the view is an index of the hosts by VTEP MAC, which incremental passes
// keep current with updateHost.
type model struct {
	l    local
	v    *view
	nets []Network // by ID; a network repeating an earlier one's VNI is dropped
	warn func(msg string, args ...any)
	// macs lists, per VNI, the eligible remote hosts by VTEP MAC, sorted
	// by name: the first one of a MAC is programmed, the others collide.
	macs map[int]map[macKey][]string
	// byUnderlay lists the eligible remote hosts by underlay address,
	// sorted: two hosts claiming one address (a misconfiguration) would
	// share a neighbor entry, so only the first is programmed. indexed is
	// the address each host is listed under.
	byUnderlay map[netip.Addr][]string
	indexed    map[string]netip.Addr
	// byKey and keyed do the same for WireGuard public keys (encryption):
	// two hosts with one key (a copied data dir) cannot both be peers.
	byKey map[wireguard.Key][]string
	keyed map[string]wireguard.Key
}

func newModel(l local, v *view, warn func(msg string, args ...any)) *model {
	if warn == nil {
		warn = func(string, ...any) {}
	}
	m := &model{l: l, v: v, warn: warn, macs: map[int]map[macKey][]string{},
		byUnderlay: map[netip.Addr][]string{}, indexed: map[string]netip.Addr{},
		byKey: map[wireguard.Key][]string{}, keyed: map[string]wireguard.Key{}}
	nets := slices.Clone(l.networks)
	sort.Slice(nets, func(i, j int) bool { return nets[i].ID < nets[j].ID })
	for _, n := range nets {
		if _, dup := m.macs[n.VNI]; dup {
			warn("two networks share a VNI; ignoring the second", "vni", n.VNI, "network", n.ID)
			continue
		}
		m.nets = append(m.nets, n)
		m.macs[n.VNI] = map[macKey][]string{}
	}
	names := make([]string, 0, len(v.alive))
	for h := range v.alive {
		if m.eligible(h) {
			names = append(names, h)
		}
	}
	sort.Strings(names)
	for _, h := range names {
		u := v.hosts[h]
		m.byUnderlay[u] = append(m.byUnderlay[u], h)
		m.indexed[h] = u
		if k := v.keys[h]; l.wg != nil && k.valid {
			m.byKey[k.key] = append(m.byKey[k.key], h)
			m.keyed[h] = k.key
		}
	}
	for vni, byMAC := range m.macs {
		for _, h := range names {
			k := macKey(VTEPMAC(h, vni))
			byMAC[k] = append(byMAC[k], h)
		}
	}
	return m
}

// encrypted reports whether traffic to other hosts goes through WireGuard.
func (m *model) encrypted() bool { return m.l.wg != nil }

// eligible reports whether a remote host may be programmed at all: alive,
// registered with a usable IPv4 underlay address that is not this host's,
// and encrypted exactly when this host is (fail closed: an encrypted host
// sends nothing in clear to a host without a key, and a host without
// encryption sends nothing to one that takes only WireGuard). With
// encryption its key must be valid and not this host's own.
func (m *model) eligible(h string) bool {
	u, ok := m.v.hosts[h]
	if h == m.l.host || !m.v.alive[h] || !ok || !u.Is4() {
		return false
	}
	if u == m.l.underlay.Addr {
		m.warn("remote host claims this host's underlay address; ignoring it", "host", h, "underlay", u)
		return false
	}
	k := m.v.keys[h]
	switch {
	case !m.encrypted():
		return !k.set
	case !k.valid:
		return false
	case k.key == m.l.wg.key:
		m.warn("remote host has this host's WireGuard key (a copied data dir?); ignoring it", "host", h,
			"fingerprint", wireguard.Fingerprint(k.key))
		return false
	}
	return true
}

// target is how host h is reached on vni, if it may be programmed: it is
// eligible, no eligible host that sorts before it claims its underlay
// address, and its VTEP MAC collides neither with this host's nor with
// an eligible host's that sorts before it (a collision would send one
// host's traffic to both).
func (m *model) target(vni int, h string) (target, bool) {
	if m.encrypted() {
		return m.wgTarget(h)
	}
	mac := VTEPMAC(h, vni)
	hosts := m.macs[vni][macKey(mac)]
	i := slices.Index(hosts, h)
	switch {
	case i < 0:
		return target{}, false
	case m.byUnderlay[m.v.hosts[h]][0] != h:
		m.warn("two hosts claim one underlay address; ignoring the later by name", "host", h,
			"other", m.byUnderlay[m.v.hosts[h]][0], "underlay", m.v.hosts[h])
		return target{}, false
	case mac.String() == VTEPMAC(m.l.host, vni).String():
		m.warn("VTEP MAC collision; ignoring host", "host", h, "other", m.l.host, "vni", vni, "mac", mac)
		return target{}, false
	case i > 0:
		m.warn("VTEP MAC collision; ignoring host", "host", h, "other", hosts[0], "vni", vni, "mac", mac)
		return target{}, false
	}
	return target{underlay: m.v.hosts[h], mac: mac}, true
}

// updateHost refreshes h's place in the MAC index after its liveness or
// underlay changed. It returns the other hosts sharing one of its MACs,
// whose targets may change with it.
func (m *model) updateHost(h string) []string {
	ok := m.eligible(h)
	var partners []string
	relist := func(u netip.Addr, add bool) {
		hosts := slices.DeleteFunc(m.byUnderlay[u], func(x string) bool { return x == h })
		if add {
			i, _ := slices.BinarySearch(hosts, h)
			hosts = slices.Insert(hosts, i, h)
		}
		if len(hosts) == 0 {
			delete(m.byUnderlay, u)
		} else {
			m.byUnderlay[u] = hosts
		}
		for _, x := range hosts {
			if x != h {
				partners = append(partners, x)
			}
		}
	}
	if u, was := m.indexed[h]; was {
		relist(u, false)
		delete(m.indexed, h)
	}
	if ok {
		u := m.v.hosts[h]
		relist(u, true)
		m.indexed[h] = u
	}
	partners = append(partners, m.updateKey(h, ok)...)
	for vni, byMAC := range m.macs {
		k := macKey(VTEPMAC(h, vni))
		hosts := slices.DeleteFunc(byMAC[k], func(x string) bool { return x == h })
		if ok {
			i, _ := slices.BinarySearch(hosts, h)
			hosts = slices.Insert(hosts, i, h)
		}
		if len(hosts) == 0 {
			delete(byMAC, k)
		} else {
			byMAC[k] = hosts
		}
		for _, x := range hosts {
			if x != h {
				partners = append(partners, x)
			}
		}
	}
	return partners
}

// full computes the whole desired state.
func (m *model) full() desired {
	d := desired{devices: map[string]*devState{}, routes: map[netip.Prefix]route{},
		peers: map[string]wireguard.Peer{}, addrs: map[string]map[netip.Addr]bool{}}
	self := m.l.host
	for _, n := range m.nets {
		ds := &devState{vni: n.VNI, neigh: map[netip.Addr]string{}, fdb: map[string]netip.Addr{}, hosts: map[string]netip.Addr{}}
		d.devices[DeviceName(n.VNI)] = ds
		for _, a := range n.Tunnels {
			d.addAddr(m.tunnelDevice(n), a)
		}
		users := map[string]bool{}
		for _, p := range n.Pools {
			pv := m.v.pools[p.Masked()]
			if pv == nil {
				continue
			}
			for h := range pv.refs {
				users[h] = true
			}
			for b, h := range pv.blocks {
				users[h] = true
				if r, ok := m.blockRoute(n, pv, b); ok {
					d.addRoute(r, m.warn)
				}
			}
			for a, o := range pv.candidates() {
				if !o.container || o.host == "" {
					continue
				}
				if o.host != self {
					users[o.host] = true
				}
				if r, ok := m.exceptionRoute(n, pv, a, o); ok {
					d.addRoute(r, m.warn)
				}
			}
		}
		// Neighbors and FDB for every remote alive host using the network
		// (none with encryption: nothing goes out a VXLAN device).
		v6 := m.hasV6(n)
		for h := range users {
			if t, ok := m.target(n.VNI, h); ok && !m.encrypted() {
				ds.add(h, t, v6)
			}
		}
	}
	if m.encrypted() {
		m.fullPeers(&d)
	}
	return d
}

// blockRoute is the route of block b of a pool of n, if it leads to a
// remote host that may be programmed.
func (m *model) blockRoute(n Network, pv *poolView, b netip.Prefix) (route, bool) {
	h, ok := pv.blocks[b]
	if !ok || h == m.l.host {
		return route{}, false
	}
	t, ok := m.target(n.VNI, h)
	if !ok {
		return route{}, false
	}
	return via(m.l, n, b, h, t), true
}

// exceptionRoute is the /32 (/128) route of a container address whose
// owner is not its block's claimant: to the owner if remote and alive, to
// this host's bridge if the owner is this host and a remote host claims
// the block (its block route would shadow the container).
func (m *model) exceptionRoute(n Network, pv *poolView, a netip.Addr, o addrOwner) (route, bool) {
	if !o.container || o.host == "" {
		return route{}, false
	}
	claimant := pv.claimant(a)
	if claimant == o.host {
		return route{}, false
	}
	dst := netip.PrefixFrom(a, a.BitLen())
	if o.host == m.l.host {
		if claimant == "" || n.Bridge == "" {
			return route{}, false // no block route to be shadowed by
		}
		return route{dst: dst, dev: n.Bridge, vni: n.VNI, exception: true}, true
	}
	t, ok := m.target(n.VNI, o.host)
	if !ok {
		return route{}, false
	}
	return via(m.l, n, dst, o.host, t), true
}

// hasV6 reports whether n has an IPv6 pool in the view: its remote hosts
// then also get a link-local neighbor (the next hop of IPv6 routes).
func (m *model) hasV6(n Network) bool {
	for _, p := range n.Pools {
		if p.Addr().Is6() && m.v.pools[p.Masked()] != nil {
			return true
		}
	}
	return false
}

// add programs remote host h on the device: its underlay address (and for
// IPv6 a link-local next hop) resolving to its VTEP MAC, and that MAC
// sent to its underlay address.
func (ds *devState) add(h string, t target, v6 bool) {
	mac := t.mac.String()
	ds.neigh[t.underlay] = mac
	ds.fdb[mac] = t.underlay
	ds.hosts[h] = t.underlay
	if v6 {
		ds.neigh[linkLocal(t.mac)] = mac
	}
}

// via is the route to dst (a block, or one address) on host h. A route
// that leaves by a podnet device carries this host's tunnel address in
// the pool as its source (see "This host's own traffic" in doc.go).
func via(l local, n Network, dst netip.Prefix, h string, t target) route {
	r := route{dst: dst, host: h, vni: n.VNI, exception: dst.IsSingleIP(), src: n.tunnel(dst)}
	switch {
	case t.wg != "":
		// Encryption: every block and address of another host goes into
		// WireGuard, which picks the peer by its allowed IPs (direct
		// routing too: nothing leaves in clear).
		r.dev = t.wg
	case dst.Addr().Is6():
		// IPv6 routes cannot have an IPv4 next hop (RTA_VIA is refused
		// for IPv6): the next hop is the host's VTEP link-local address,
		// a permanent neighbor resolving to its VTEP MAC.
		r.via, r.dev, r.onlink = linkLocal(t.mac), DeviceName(n.VNI), true
	case n.DirectRouting && l.underlay.Prefix.Contains(t.underlay):
		// The underlay address is the source, as for any neighbor on
		// the underlay; the other host routes it back directly.
		r.via, r.dev, r.src = t.underlay, l.underlay.Dev, netip.Addr{}
	default:
		r.via, r.dev, r.onlink = t.underlay, DeviceName(n.VNI), true
	}
	return r
}

// tunnel is this host's tunnel address in the pool of n holding dst
// (invalid if it has none there).
func (n Network) tunnel(dst netip.Prefix) netip.Addr {
	for _, p := range n.Pools {
		if p.Bits() > dst.Bits() || !p.Contains(dst.Addr()) {
			continue
		}
		for _, a := range n.Tunnels {
			if p.Contains(a) {
				return a
			}
		}
	}
	return netip.Addr{}
}

// tunnelDevice is the device n's tunnel addresses go on: the one its
// routes to other hosts leave by.
func (m *model) tunnelDevice(n Network) string {
	if m.encrypted() {
		return m.l.wg.dev
	}
	return DeviceName(n.VNI)
}

func (d *desired) addAddr(dev string, a netip.Addr) {
	if d.addrs[dev] == nil {
		d.addrs[dev] = map[netip.Addr]bool{}
	}
	d.addrs[dev][a] = true
}

func (d *desired) addRoute(r route, warn func(string, ...any)) {
	if old, ok := d.routes[r.dst]; ok && old != r {
		warn("two routes for one destination; keeping the first", "block", r.dst, "host", old.host, "other", r.host)
		return
	}
	d.routes[r.dst] = r
}

// equal reports whether d and e want the same kernel state.
func (d desired) equal(e desired) bool {
	if !maps.Equal(d.routes, e.routes) || len(d.devices) != len(e.devices) ||
		!maps.EqualFunc(d.peers, e.peers, wireguard.Peer.Equal) ||
		!maps.EqualFunc(d.addrs, e.addrs, maps.Equal[map[netip.Addr]bool]) {
		return false
	}
	for dev, a := range d.devices {
		b, ok := e.devices[dev]
		if !ok || a.vni != b.vni || !maps.Equal(a.neigh, b.neigh) || !maps.Equal(a.fdb, b.fdb) {
			return false
		}
	}
	return true
}

// clone copies d deeply enough that later edits of d do not show.
func (d desired) clone() desired {
	c := desired{devices: make(map[string]*devState, len(d.devices)), routes: maps.Clone(d.routes), peers: make(map[string]wireguard.Peer, len(d.peers)),
		addrs: make(map[string]map[netip.Addr]bool, len(d.addrs))}
	for dev, as := range d.addrs {
		c.addrs[dev] = maps.Clone(as)
	}
	for h, p := range d.peers {
		p.AllowedIPs = slices.Clone(p.AllowedIPs)
		c.peers[h] = p
	}
	for dev, ds := range d.devices {
		c.devices[dev] = &devState{vni: ds.vni, neigh: maps.Clone(ds.neigh), fdb: maps.Clone(ds.fdb), hosts: maps.Clone(ds.hosts)}
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
