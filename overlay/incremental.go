package overlay

import (
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/podnet/podnet/internal/link"
)

// An incremental pass programs what the events since the last pass
// changed, and nothing else: the view's dirty set names hosts, blocks,
// addresses and users; each is expanded to the entries it can affect
// (a host: its neighbor and FDB entries, its blocks' routes and its
// exceptions'; a block: its route and the candidates inside it); each
// entry is recomputed with the same rules a full pass uses (model) and
// compared with what the kernel holds (applied, the state the last passes
// left there); only the differences become netlink calls. An address
// record that changes nothing costs a few map lookups and no kernel call.

// hostEntry is one remote host's share of one device: what is applied and
// what is wanted (ok false: nothing).
type hostEntry struct {
	dev      string
	vni      int
	host     string
	old      netip.Addr // underlay applied; invalid if none
	want     target
	wantOK   bool
	v6       bool
	oldLLMAC net.HardwareAddr // VTEP MAC whose link-local neighbor is applied
}

type routeEntry struct {
	dst       netip.Prefix
	old, want route
	had, ok   bool
}

// stepPlan is the work of one incremental pass.
type stepPlan struct {
	hosts  []hostEntry
	routes []routeEntry
	peers  []peerEntry
	keys   int // entries recomputed
}

// step runs an incremental pass. It reports done=false, having done
// nothing, when only a full computation will do: nothing applied yet, or
// the registered networks changed.
func (o *Overlay) step() (Changes, bool, error) {
	start := time.Now()
	o.kmu.Lock()
	defer o.kmu.Unlock()
	o.mu.Lock()
	if o.applied == nil || o.model == nil || o.recompute || o.model.v != o.view {
		o.mu.Unlock()
		return Changes{}, false, nil
	}
	dirty := o.view.dirty
	if dirty.empty() {
		o.mu.Unlock()
		return Changes{}, true, nil
	}
	o.view.dirty = newDirtySet()
	for _, pv := range o.view.pools {
		pv.dirty = o.view.dirty
	}
	var warns [][]any
	o.model.warn = func(msg string, args ...any) { warns = append(warns, append([]any{msg}, args...)) }
	sp := o.model.plan(dirty, o.applied)
	names := map[netip.Addr]string{} // next hops → hosts, for logs
	for _, h := range sp.hosts {
		if h.old.IsValid() {
			names[h.old] = h.host
		}
		if h.oldLLMAC != nil {
			names[linkLocal(h.oldLLMAC)] = h.host
		}
		if h.wantOK {
			names[h.want.underlay] = h.host
			names[linkLocal(h.want.mac)] = h.host
		}
	}
	o.mu.Unlock()
	for _, w := range dedupe(warns) {
		o.log.Warn(w[0].(string), w[1:]...)
	}

	p := &program{o: o, nk: nlKernel{h: o.k.NL}, names: names, ifindex: o.ifindex, lookup: true}
	p.applyStep(sp)
	err := p.err()
	switch {
	case err != nil:
		p.observe(false, start, nil)
		o.applied = nil // the next pass diffs against the kernel
	case p.changes.Total() > 0:
		// The step kept applied current: the remote counts move with it.
		o.remote.hosts += p.remote.hosts
		o.remote.blocks += p.remote.blocks
		p.observe(false, start, &o.remote)
	default:
		observeUnchanged(start)
	}
	o.mu.Lock()
	o.stats.Steps++
	o.stats.StepKeys += sp.keys
	o.stats.LastStepDuration = time.Since(start)
	o.stats.Changes.add(p.changes)
	o.stats.Errors += len(p.errs)
	o.mu.Unlock()
	if n := p.changes.Total(); n > 0 || err != nil {
		o.log.Debug("overlay updated", "changes", n, "errors", len(p.errs), "keys", sp.keys, "took", time.Since(start))
	}
	return p.changes, true, err
}

// plan expands dirty into the entries it may affect and computes each
// against applied. Called with the view locked.
func (m *model) plan(dirty *dirtySet, applied *desired) stepPlan {
	var sp stepPlan
	all := map[string]bool{}
	for h := range dirty.hosts {
		all[h] = true
		for _, x := range m.updateHost(h) {
			all[x] = true
		}
	}
	neigh, dsts := dirty.neigh, dirty.dsts
	for h := range all {
		neigh[h] = true
		for _, n := range m.nets {
			for _, p := range n.Pools {
				pv := m.v.pools[p.Masked()]
				if pv == nil {
					continue
				}
				if u := pv.users[h]; u != nil {
					for _, b := range u.blocks {
						dsts[b] = true
					}
					for _, a := range u.owned {
						dirty.addr(a)
					}
				}
			}
		}
	}
	for h := range neigh {
		for _, n := range m.nets {
			sp.hosts = append(sp.hosts, m.hostEntry(n, h, applied))
		}
	}
	for dst := range dsts {
		e := routeEntry{dst: dst}
		e.old, e.had = applied.routes[dst]
		e.want, e.ok = m.routeFor(dst)
		if e.had != e.ok || e.old != e.want {
			sp.routes = append(sp.routes, e)
		}
	}
	m.planPeers(&sp, all, applied)
	sp.keys = len(neigh)*len(m.nets) + len(dsts)
	return sp
}

// hostEntry computes host h's entries on n's device.
func (m *model) hostEntry(n Network, h string, applied *desired) hostEntry {
	dev := DeviceName(n.VNI)
	e := hostEntry{dev: dev, vni: n.VNI, host: h, v6: m.hasV6(n)}
	if ds := applied.devices[dev]; ds != nil {
		e.old = ds.hosts[h]
		if e.old.IsValid() {
			mac := VTEPMAC(h, n.VNI)
			if _, ok := ds.neigh[linkLocal(mac)]; ok {
				e.oldLLMAC = mac
			}
		}
	}
	used := false
	for _, p := range n.Pools {
		if pv := m.v.pools[p.Masked()]; pv != nil && pv.users[h].uses() {
			used = true
			break
		}
	}
	if used && !m.encrypted() { // with encryption no VXLAN device holds entries
		e.want, e.wantOK = m.target(n.VNI, h)
	}
	return e
}

// unchanged reports whether the applied entries already are the wanted.
func (e hostEntry) unchanged() bool {
	if !e.wantOK {
		return !e.old.IsValid()
	}
	return e.old == e.want.underlay && (e.oldLLMAC != nil) == e.v6
}

// netOf finds the registered network and pool holding dst.
func (m *model) netOf(dst netip.Prefix) (Network, *poolView, bool) {
	for _, n := range m.nets {
		for _, p := range n.Pools {
			if pv := m.v.pools[p.Masked()]; pv != nil && p.Bits() <= dst.Bits() && p.Contains(dst.Addr()) {
				return n, pv, true
			}
		}
	}
	return Network{}, nil, false
}

// routeFor is the route wanted for dst, as full() would compute it: a
// block's route wins over an exception of the same prefix.
func (m *model) routeFor(dst netip.Prefix) (route, bool) {
	n, pv, ok := m.netOf(dst)
	if !ok {
		return route{}, false
	}
	if r, ok := m.blockRoute(n, pv, dst); ok {
		return r, true
	}
	if !dst.IsSingleIP() {
		return route{}, false
	}
	o, ok := pv.candidates()[dst.Addr()]
	if !ok {
		return route{}, false
	}
	return m.exceptionRoute(n, pv, dst.Addr(), o)
}

// applyStep makes the changes of sp in the order a full pass uses: new
// neighbors and FDB entries, then routes, then route deletions, then the
// neighbors and FDB entries nobody wants. applied follows every change
// that succeeded.
func (p *program) applyStep(sp stepPlan) {
	applied := p.o.applied
	for _, e := range sp.peers {
		if e.ok {
			p.setPeer(applied, e)
		}
	}
	for _, e := range sp.hosts {
		if e.wantOK && !e.unchanged() {
			p.addHostEntries(applied, e)
		}
	}
	for _, e := range sp.routes {
		if e.ok {
			p.setRoute(applied, e)
		}
	}
	for _, e := range sp.routes {
		if !e.ok && e.had {
			p.delRoute(applied, e)
		}
	}
	for _, e := range sp.peers {
		p.delPeer(applied, e)
	}
	// What hosts wanted in this pass hold is kept even if a host leaving
	// it had the same entry (two hosts with one MAC or one underlay
	// address, of which the one that sorts first takes over).
	keep := map[string]bool{}
	for _, e := range sp.hosts {
		if e.wantOK {
			keep[e.dev+" "+e.want.underlay.String()] = true
			keep[e.dev+" "+e.want.mac.String()] = true
			if e.v6 {
				keep[e.dev+" "+linkLocal(e.want.mac).String()] = true
			}
		}
	}
	for _, e := range sp.hosts {
		if !e.unchanged() {
			p.delHostEntries(applied, e, keep)
		}
	}
}

// index is the interface index of name (ip link show NAME), 0 while the
// interface is missing: its entries then wait, as in a full pass, for the
// pass that follows its creation.
func (p *program) index(name string) int {
	if idx := p.ifindex[name]; idx != 0 {
		return idx
	}
	l, err := p.o.k.NL.LinkByName(name)
	switch {
	case link.IsNotFound(err):
		p.o.log.Debug("interface missing; its entries wait for the next sync", "iface", name)
		return 0
	case err != nil:
		p.errs = append(p.errs, fmt.Errorf("look up %s: %w", name, err))
		return 0
	}
	p.ifindex[name] = l.Attrs().Index
	return l.Attrs().Index
}

// addHostEntries adds h's neighbor(s) and FDB entry on its device.
func (p *program) addHostEntries(applied *desired, e hostEntry) {
	ds := applied.devices[e.dev]
	idx := p.index(e.dev)
	if ds == nil || idx == 0 {
		return
	}
	mac := e.want.mac.String()
	ips := []netip.Addr{e.want.underlay}
	if e.v6 {
		ips = append(ips, linkLocal(e.want.mac))
	}
	for _, ip := range ips {
		if ds.neigh[ip] == mac {
			continue
		}
		if p.do(p.nk.setNeigh(idx, ip, e.want.mac)) {
			ds.neigh[ip] = mac
			p.changes.NeighAdded++
			p.logHost("remote host added", ip, e.dev, e.vni)
		}
	}
	if ds.fdb[mac] != e.want.underlay {
		if p.do(p.nk.setFDB(idx, e.want.mac, e.want.underlay)) {
			ds.fdb[mac] = e.want.underlay
			p.changes.FDBAdded++
			p.o.log.Debug("fdb entry added", "iface", e.dev, "mac", mac, "dst", e.want.underlay)
		}
	}
	if _, ok := ds.hosts[e.host]; !ok && !applied.hostElsewhere(e.dev, e.host) {
		p.remote.hosts++
	}
	ds.hosts[e.host] = e.want.underlay
}

// delHostEntries removes what h had on its device and no longer needs:
// everything when it is gone, the old underlay's entries when it moved.
func (p *program) delHostEntries(applied *desired, e hostEntry, keep map[string]bool) {
	ds := applied.devices[e.dev]
	idx := p.index(e.dev)
	if ds == nil || idx == 0 || !e.old.IsValid() {
		return
	}
	mac := VTEPMAC(e.host, e.vni)
	if !e.wantOK || e.want.underlay != e.old {
		// A host that moved had its FDB entry replaced; one that is gone
		// loses it.
		if !e.wantOK && !keep[e.dev+" "+mac.String()] && p.do(p.nk.delFDB(idx, fdbEntry{mac: mac.String(), dst: e.old})) {
			delete(ds.fdb, mac.String())
			p.changes.FDBDeleted++
			p.o.log.Debug("fdb entry removed", "iface", e.dev, "mac", mac, "dst", e.old)
		}
		if !keep[e.dev+" "+e.old.String()] && p.do(p.nk.delNeigh(idx, e.old)) {
			delete(ds.neigh, e.old)
			p.changes.NeighDeleted++
			p.logHost("remote host removed", e.old, e.dev, e.vni)
		}
	}
	if e.oldLLMAC != nil && (!e.wantOK || !e.v6) {
		ll := linkLocal(e.oldLLMAC)
		if !keep[e.dev+" "+ll.String()] && p.do(p.nk.delNeigh(idx, ll)) {
			delete(ds.neigh, ll)
			p.changes.NeighDeleted++
			p.logHost("remote host removed", ll, e.dev, e.vni)
		}
	}
	if !e.wantOK {
		if _, ok := ds.hosts[e.host]; ok && !applied.hostElsewhere(e.dev, e.host) {
			p.remote.hosts--
		}
		delete(ds.hosts, e.host)
	}
}

// setRoute installs or replaces one route: ip route replace.
func (p *program) setRoute(applied *desired, e routeEntry) {
	nr := p.nlRoute(e.want)
	if nr == nil {
		return
	}
	if p.do(p.nk.replaceRoute(nr)) {
		p.countRoute(applied, e.dst, -1)
		applied.routes[e.dst] = e.want
		p.countRoute(applied, e.dst, +1)
		if e.had {
			p.changes.RoutesReplaced++
			p.logRoute("route changed", e.want)
		} else {
			p.changes.RoutesAdded++
			p.logRoute("route added", e.want)
		}
	}
}

// countRoute moves the remote block count by sign if applied's route to
// dst leads to a remote block.
func (p *program) countRoute(applied *desired, dst netip.Prefix, sign int) {
	if r, ok := applied.routes[dst]; ok && remoteBlock(r) {
		p.remote.blocks += sign
	}
}

// delRoute removes one route: ip route del.
func (p *program) delRoute(applied *desired, e routeEntry) {
	nr := p.nlRoute(e.old)
	if nr == nil {
		p.countRoute(applied, e.dst, -1)
		delete(applied.routes, e.dst) // its interface is gone, and the route with it
		return
	}
	if p.do(p.nk.delRoute(nr)) {
		p.countRoute(applied, e.dst, -1)
		delete(applied.routes, e.dst)
		p.changes.RoutesDeleted++
		p.logRoute("route removed", e.old)
	}
}
