package overlay

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"runtime/debug"
	"slices"
	"sort"
	"strconv"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// syncOptions tune one programming pass.
type syncOptions struct {
	// full diffs against the kernel even when the desired state is the one
	// the previous pass applied (periodic resync: repairs drift).
	full bool
	// gcOrphans also deletes podnet routes outside the pools of every
	// registered network (left by networks removed while podnetd was down).
	gcOrphans bool
}

// program is one programming pass: what is wanted, what the kernel has,
// and the changes made so far.
type program struct {
	o       *Overlay
	nk      nlKernel
	want    desired
	model   *model
	nets    []Network
	names   map[netip.Addr]string // underlay or link-local next hop → host, for logs
	warns   [][]any               // what computeDesired ignored: message, then key/values
	ifindex map[string]int        // device, bridge and underlay indices
	// lookup resolves interfaces missing from ifindex as needed
	// (incremental passes); a full pass resolves them all first.
	lookup  bool
	changes Changes
	errs    []error
	// remote is how an incremental pass moved the remote counts.
	remote remoteCounts
}

func (p *program) err() error { return errors.Join(p.errs...) }

// sync computes the desired state from the view and makes the kernel match
// it: devices first, then neighbors and FDB entries, then routes, and only
// then deletions, so that no route ever points at a missing neighbor.
// Existing correct entries are never touched. When the desired state is
// exactly what the previous pass applied, the kernel is not even read
// unless opts.full.
func (o *Overlay) sync(opts syncOptions) (Changes, error) {
	start := time.Now()
	o.kmu.Lock()
	defer o.kmu.Unlock()
	p := o.plan()
	o.model = p.model
	if !opts.full && o.applied != nil && o.applied.equal(p.want) {
		o.mu.Lock()
		o.stats.Syncs++
		o.stats.LastSync = time.Now()
		o.stats.LastSyncDuration = time.Since(start)
		o.mu.Unlock()
		observeUnchanged(start)
		return Changes{}, nil
	}
	o.applied = nil
	want := p.want.clone()
	for _, w := range dedupe(p.warns) { // only when the state changed, not per event
		o.log.Warn(w[0].(string), w[1:]...)
	}
	p.ensureDevices()
	p.resolve()
	p.addAddrs()
	peers := p.addPeers()
	for _, dev := range sortedKeys(p.want.devices) {
		p.addDeviceEntries(dev, p.want.devices[dev])
	}
	p.syncRoutes(opts)
	for _, dev := range sortedKeys(p.want.devices) {
		p.deleteDeviceEntries(dev, p.want.devices[dev])
	}
	p.deletePeers(peers)
	p.deleteAddrs()
	p.removeProxies()
	err := p.err()
	var remote *remoteCounts
	if err == nil {
		o.applied = &want
		hosts, blocks := want.remote()
		o.remote = remoteCounts{hosts: hosts, blocks: blocks}
		remote = &o.remote
	}
	o.ifindex = p.ifindex
	o.mu.Lock()
	first := o.stats.Syncs == 0
	o.stats.Syncs++
	o.stats.LastSync = time.Now()
	o.stats.LastSyncDuration = time.Since(start)
	o.stats.Changes.add(p.changes)
	o.stats.Errors += len(p.errs)
	o.mu.Unlock()
	p.observe(opts.full, start, remote)
	if p.want.size() > bigPass {
		// Listing the kernel's routes, neighbors and FDB entries at 5000
		// hosts allocates ~200 MB that is garbage once the pass is done;
		// give it back to the system now instead of carrying it (as
		// resident memory) until the scavenger gets to it. One forced
		// collection per full pass: a few tens of ms a minute.
		debug.FreeOSMemory()
	}
	switch n := p.changes.Total(); {
	case first:
		// What a restart found out of place (0: nothing): an operator's,
		// and a test's, proof that a restart is idempotent.
		o.log.Info("first overlay pass", "changes", n, "errors", len(p.errs), "took", time.Since(start))
	case n > 0 || err != nil:
		o.log.Debug("overlay synced", "changes", n, "errors", len(p.errs), "took", time.Since(start))
	}
	return p.changes, err
}

// plan snapshots the registered networks and computes the desired state.
// What the view recorded as changed is part of it: the changes are
// cleared.
func (o *Overlay) plan() *program {
	o.mu.Lock()
	nets := make([]Network, 0, len(o.networks))
	for _, n := range o.networks {
		nets = append(nets, n)
	}
	sort.Slice(nets, func(i, j int) bool { return nets[i].ID < nets[j].ID })
	var warns [][]any
	m := newModel(o.local(nets), o.view, func(msg string, args ...any) {
		warns = append(warns, append([]any{msg}, args...))
	})
	want := m.full()
	m.warn = func(string, ...any) {}
	o.recompute = false
	o.view.dirty = newDirtySet()
	for _, pv := range o.view.pools {
		pv.dirty = o.view.dirty
	}
	names := map[netip.Addr]string{}
	for h, u := range o.view.hosts {
		names[u] = h
	}
	o.mu.Unlock()
	for _, ds := range want.devices {
		for h := range ds.hosts {
			names[linkLocal(VTEPMAC(h, ds.vni))] = h
		}
	}
	return &program{o: o, nk: nlKernel{h: o.k.NL}, want: want, model: m, nets: nets, names: names, warns: warns, ifindex: map[string]int{}}
}

// dedupe drops repeated warnings (the same host can be ignored for every
// route that would lead to it).
func dedupe(warns [][]any) [][]any {
	seen := map[string]bool{}
	out := warns[:0]
	for _, w := range warns {
		k := fmt.Sprint(w...)
		if !seen[k] {
			seen[k] = true
			out = append(out, w)
		}
	}
	return out
}

// ensureDevices re-checks every device: one deleted or changed behind our
// back is recreated, and this pass then refills it.
func (p *program) ensureDevices() {
	if p.o.wg != nil {
		created, err := p.o.wg.Ensure()
		if err != nil {
			p.errs = append(p.errs, err)
		} else if created {
			p.o.log.Warn("WireGuard device was missing and has been recreated", "iface", p.o.wg.Name())
		}
		// IPv6 pods are routed into it too: IPv6 forwarding out of a
		// device needs IPv6 enabled on it.
		if slices.ContainsFunc(p.nets, func(n Network) bool { return hasV6(n.Pools) }) {
			if err := p.o.sysctl("net/ipv6/conf/"+p.o.wg.Name()+"/disable_ipv6", "0"); err != nil {
				p.errs = append(p.errs, err)
			}
		}
	}
	for _, n := range p.nets {
		created, err := p.o.ensureDevice(n)
		if err != nil {
			p.errs = append(p.errs, err)
			delete(p.want.devices, DeviceName(n.VNI))
			continue
		}
		if created {
			p.o.log.Warn("VXLAN device was missing or wrong and has been recreated", "iface", DeviceName(n.VNI), "vni", n.VNI)
		}
	}
}

// resolve looks up the interface indices the desired state refers to
// (ip link show NAME).
func (p *program) resolve() {
	names := []string{p.o.underlay.Dev}
	if p.o.wg != nil {
		names = append(names, p.o.wg.Name())
	}
	for dev := range p.want.devices {
		names = append(names, dev)
	}
	for _, r := range p.want.routes {
		names = append(names, r.dev)
	}
	for dev := range p.want.addrs {
		names = append(names, dev)
	}
	for _, name := range names {
		if _, done := p.ifindex[name]; done {
			continue
		}
		l, err := p.o.k.NL.LinkByName(name)
		if err != nil {
			p.o.log.Debug("interface missing; its entries wait for the next sync", "iface", name, "err", err)
			p.ifindex[name] = 0
			continue
		}
		p.ifindex[name] = l.Attrs().Index
	}
}

// deviceEntries is what a VXLAN device holds: permanent neighbors (IP →
// MAC) and FDB entries.
type deviceEntries struct {
	neigh map[netip.Addr]string
	fdb   []fdbEntry
}

// readDevice lists a device's entries (ok=false if it cannot).
func (p *program) readDevice(idx int) (deviceEntries, bool) {
	var have deviceEntries
	neigh, err := p.nk.listNeigh(idx)
	if err != nil {
		p.errs = append(p.errs, err)
		return have, false
	}
	if have.fdb, err = p.nk.listFDB(idx); err != nil {
		p.errs = append(p.errs, err)
		return have, false
	}
	have.neigh = make(map[netip.Addr]string, len(neigh))
	for _, n := range neigh {
		if a, ok := netip.AddrFromSlice(n.IP); ok {
			have.neigh[a.Unmap()] = n.HardwareAddr.String()
		}
	}
	return have, true
}

// addDeviceEntries adds the missing or wrong neighbor and FDB entries of
// one VXLAN device.
func (p *program) addDeviceEntries(dev string, ds *devState) {
	idx := p.ifindex[dev]
	if idx == 0 {
		return
	}
	have, ok := p.readDevice(idx)
	if !ok {
		return
	}
	for _, ip := range sortedAddrs(ds.neigh) {
		mac := ds.neigh[ip]
		if have.neigh[ip] == mac {
			continue
		}
		hw, _ := net.ParseMAC(mac)
		if p.do(p.nk.setNeigh(idx, ip, hw)) {
			p.changes.NeighAdded++
			p.logHost("remote host added", ip, dev, ds.vni)
		}
	}
	haveFDB := make(map[fdbEntry]bool, len(have.fdb))
	for _, e := range have.fdb {
		haveFDB[e] = true
	}
	for _, mac := range sortedKeys(ds.fdb) {
		dst := ds.fdb[mac]
		if haveFDB[fdbEntry{mac: mac, dst: dst}] {
			continue
		}
		hw, _ := net.ParseMAC(mac)
		if p.do(p.nk.setFDB(idx, hw, dst)) {
			p.changes.FDBAdded++
			p.o.log.Debug("fdb entry added", "iface", dev, "mac", mac, "dst", dst)
		}
	}
}

// deleteDeviceEntries removes the neighbor and FDB entries of one VXLAN
// device that are not wanted (any more).
func (p *program) deleteDeviceEntries(dev string, ds *devState) {
	idx := p.ifindex[dev]
	if idx == 0 {
		return
	}
	have, ok := p.readDevice(idx)
	if !ok {
		return
	}
	for _, e := range have.fdb {
		if dst, ok := ds.fdb[e.mac]; ok && dst == e.dst {
			continue
		}
		if p.do(p.nk.delFDB(idx, e)) {
			p.changes.FDBDeleted++
			p.o.log.Debug("fdb entry removed", "iface", dev, "mac", e.mac, "dst", e.dst)
		}
	}
	for _, ip := range sortedAddrs(have.neigh) {
		if _, ok := ds.neigh[ip]; ok {
			continue
		}
		if p.do(p.nk.delNeigh(idx, ip)) {
			p.changes.NeighDeleted++
			p.logHost("remote host removed", ip, dev, ds.vni)
		}
	}
}

func (p *program) logHost(msg string, ip netip.Addr, dev string, vni int) {
	if ip.Is4() {
		p.o.log.Info(msg, "host", p.names[ip], "vni", vni, "via", ip, "iface", dev)
		return
	}
	p.o.log.Debug(msg, "host", p.names[ip], "vni", vni, "via", ip, "iface", dev)
}

// syncRoutes adds missing routes, fixes wrong ones and deletes podnet
// routes nobody wants: those inside a registered network's pools or on its
// devices, and with gcOrphans every other podnet route too.
func (p *program) syncRoutes(opts syncOptions) {
	have, err := p.nk.listRoutes()
	if err != nil {
		p.errs = append(p.errs, err)
		return
	}
	ours := map[int]bool{}
	for dev := range p.want.devices {
		if idx := p.ifindex[dev]; idx != 0 {
			ours[idx] = true
		}
	}
	var pools []netip.Prefix
	for _, n := range p.nets {
		pools = append(pools, n.Pools...)
	}
	seen := map[netip.Prefix]bool{}
	var stale []netlink.Route
	for _, r := range have {
		dst, ok := ipNetToPrefix(r.Dst)
		w, wanted := p.want.routes[dst]
		if ok && wanted && !seen[dst] {
			seen[dst] = true
			nr := p.nlRoute(w)
			if nr == nil || sameRoute(r, nr) {
				continue
			}
			if p.do(p.nk.replaceRoute(nr)) {
				p.changes.RoutesReplaced++
				p.logRoute("route changed", w)
			}
			if r.Priority == nr.Priority || dst.Addr().Is6() && r.Priority == 1024 && nr.Priority == 0 {
				continue // replaced in place
			}
		}
		if ok && !opts.gcOrphans && !inPools(dst, pools) && !ours[r.LinkIndex] {
			continue // may belong to a network not registered yet
		}
		stale = append(stale, r)
	}
	for _, dst := range sortedPrefixes(p.want.routes) {
		if seen[dst] {
			continue
		}
		w := p.want.routes[dst]
		if nr := p.nlRoute(w); nr != nil && p.do(p.nk.replaceRoute(nr)) {
			p.changes.RoutesAdded++
			p.logRoute("route added", w)
		}
	}
	for i := range stale {
		r := &stale[i]
		if p.do(p.nk.delRoute(r)) {
			p.changes.RoutesDeleted++
			dst, _ := ipNetToPrefix(r.Dst)
			gw, _ := netip.AddrFromSlice(r.Gw)
			p.o.log.Info("route removed", "host", p.names[gw.Unmap()], "vni", p.vniOf(dst), "block", dst, "via", viaString(gw, r.LinkIndex))
		}
	}
}

// bigPass is the number of kernel entries (routes, neighbors, FDB
// entries) above which a full pass returns its garbage to the system.
const bigPass = 10000

// size is the number of kernel entries d holds.
func (d desired) size() int {
	n := len(d.routes)
	for _, ds := range d.devices {
		n += len(ds.neigh) + len(ds.fdb)
	}
	return n
}

func (p *program) logRoute(msg string, r route) {
	via := r.dev
	if r.via.IsValid() {
		via = r.via.String() + " dev " + r.dev
	}
	if r.src.IsValid() {
		via += " src " + r.src.String()
	}
	host := r.host
	if host == "" {
		host = p.o.host
	}
	p.o.log.Info(msg, "host", host, "vni", r.vni, "block", r.dst, "via", via)
}

// vniOf is the VNI of the registered network whose pools hold dst (0 if
// none: an orphan).
func (p *program) vniOf(dst netip.Prefix) int {
	for _, n := range p.nets {
		if inPools(dst, n.Pools) {
			return n.VNI
		}
	}
	return 0
}

func viaString(gw netip.Addr, ifindex int) string {
	if gw.IsValid() {
		return gw.Unmap().String()
	}
	return "link " + strconv.Itoa(ifindex)
}

// nlRoute is the netlink form of r, nil while its interface is missing.
func (p *program) nlRoute(r route) *netlink.Route {
	idx := p.ifindex[r.dev]
	if p.lookup {
		idx = p.index(r.dev)
	}
	if idx == 0 {
		return nil
	}
	nr := &netlink.Route{
		LinkIndex: idx,
		Dst:       prefixToIPNet(r.dst),
		Protocol:  RouteProtocol,
		Table:     unix.RT_TABLE_MAIN,
		Family:    family(r.dst.Addr()),
		Scope:     netlink.SCOPE_UNIVERSE,
	}
	if r.src.IsValid() {
		nr.Src = r.src.AsSlice()
	}
	if !r.via.IsValid() {
		if r.dst.Addr().Is4() { // IPv6 routes have no scope (always universe)
			nr.Scope = netlink.SCOPE_LINK
		}
		return nr
	}
	nr.Gw = r.via.AsSlice()
	if r.onlink {
		nr.Flags = int(netlink.FLAG_ONLINK)
	}
	return nr
}

// sameRoute reports whether the kernel's route have already is want.
func sameRoute(have netlink.Route, want *netlink.Route) bool {
	return have.LinkIndex == want.LinkIndex &&
		have.Gw.Equal(want.Gw) &&
		have.Src.Equal(want.Src) &&
		have.Flags&int(netlink.FLAG_ONLINK) == want.Flags&int(netlink.FLAG_ONLINK) &&
		have.Scope == want.Scope &&
		len(have.MultiPath) == 0 &&
		(have.Type == 0 || have.Type == unix.RTN_UNICAST) &&
		have.Via == nil
}

// removeProxies deletes the proxy neighbor entries podnetds before the
// NDP responders (ndp.go) put on the bridges of IPv6 pools, one per remote
// container address: nothing wants them any more, and an upgrade must
// leave no such state behind.
func (p *program) removeProxies() {
	for _, n := range p.nets {
		if n.Bridge == "" || !hasV6(n.Pools) {
			continue
		}
		idx := p.ifindex[n.Bridge]
		if idx == 0 {
			l, err := p.o.k.NL.LinkByName(n.Bridge)
			if err != nil {
				continue // no bridge, no entries
			}
			idx = l.Attrs().Index
		}
		have, err := p.nk.listProxy(idx)
		if err != nil {
			p.errs = append(p.errs, err)
			continue
		}
		for _, a := range have {
			if p.do(p.nk.delProxy(idx, a)) {
				p.changes.ProxyDeleted++
				p.o.log.Debug("proxy neighbor of an older podnetd removed", "iface", n.Bridge, "addr", a)
			}
		}
	}
}

// do records err and reports whether the operation succeeded.
func (p *program) do(err error) bool {
	if err != nil {
		p.errs = append(p.errs, err)
		p.o.log.Warn("overlay kernel change failed", "err", err)
		return false
	}
	return true
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func sortedPrefixes[V any](m map[netip.Prefix]V) []netip.Prefix {
	out := make([]netip.Prefix, 0, len(m))
	for p := range m {
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Addr() != out[j].Addr() {
			return out[i].Addr().Less(out[j].Addr())
		}
		return out[i].Bits() < out[j].Bits()
	})
	return out
}

func sortedAddrs[V any](m map[netip.Addr]V) []netip.Addr {
	out := make([]netip.Addr, 0, len(m))
	for a := range m {
		out = append(out, a)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Less(out[j]) })
	return out
}
