package overlay

import (
	"net/netip"
	"slices"
)

// view is what etcd says, as far as the overlay cares: the hosts' underlay
// addresses, which hosts are alive (and which of those run a podnetd older
// than exception records), and per pool of a network registered here its
// references, blocks and exception candidates. watch.go keeps it current
// through the set/del methods below, which also record in dirty what each
// change may affect, so that a pass after an event recomputes only that
// (incremental.go). Tests may build a view by writing its maps directly;
// only full passes (computeDesired) read such a view.
type view struct {
	hosts map[string]netip.Addr // host → underlay (invalid if unusable)
	// keys are the hosts' WireGuard parts (absent: the record has none).
	keys  map[string]hostKey
	alive map[string]bool
	// old holds the alive hosts whose podnetd does not keep exception
	// records (HostAlive.IPAMLayout < store.IPAMLayoutExceptions): while
	// one is alive, exceptions come from the address records themselves.
	old   map[string]bool
	pools map[netip.Prefix]*poolView
	// hostsLoaded and aliveLoaded are set by the first snapshot of each.
	hostsLoaded, aliveLoaded bool
	// underlaysChanged is set when a host's underlay address appears,
	// changes or goes: the VXLAN peers are recomputed only then
	// (publishPeers clears it), not after every batch of host records.
	underlaysChanged bool
	dirty                    *dirtySet
}

// dirtySet is what changed in the view since the last pass: the keys of
// the desired state to recompute.
type dirtySet struct {
	hosts map[string]bool       // liveness or underlay: every entry of the host
	neigh map[string]bool       // use of a network: the host's neighbor and FDB entries
	dsts  map[netip.Prefix]bool // a block or one address: its route
}

func newDirtySet() *dirtySet {
	return &dirtySet{hosts: map[string]bool{}, neigh: map[string]bool{}, dsts: map[netip.Prefix]bool{}}
}

func (d *dirtySet) empty() bool {
	return len(d.hosts)+len(d.neigh)+len(d.dsts) == 0
}

// addr marks the entries a change of the candidate at a may affect: its
// route. (Its owners' neighbors are marked
// by poolView.user when their use of the pool starts or ends.)
func (d *dirtySet) addr(a netip.Addr) {
	d.dsts[netip.PrefixFrom(a, a.BitLen())] = true
}

func newView() *view {
	return &view{hosts: map[string]netip.Addr{}, keys: map[string]hostKey{}, alive: map[string]bool{}, old: map[string]bool{},
		pools: map[netip.Prefix]*poolView{}, dirty: newDirtySet()}
}

// setHost records a host's underlay address and WireGuard part (a zero
// hostKey: none).
func (v *view) setHost(name string, u netip.Addr, k hostKey) {
	if old, ok := v.hosts[name]; ok && old == u && v.keys[name] == k {
		return
	}
	if old, ok := v.hosts[name]; !ok || old != u {
		v.underlaysChanged = true
	}
	v.hosts[name] = u
	if k.set {
		v.keys[name] = k
	} else {
		delete(v.keys, name)
	}
	v.dirty.hosts[name] = true
}

func (v *view) delHost(name string) {
	if _, ok := v.hosts[name]; !ok {
		return
	}
	delete(v.hosts, name)
	delete(v.keys, name)
	v.underlaysChanged = true
	v.dirty.hosts[name] = true
}

// setAlive records a liveness key; old says its podnetd predates exception
// records.
func (v *view) setAlive(name string, old bool) {
	if old {
		v.old[name] = true
	} else {
		delete(v.old, name)
	}
	if v.alive[name] {
		return
	}
	v.alive[name] = true
	v.dirty.hosts[name] = true
}

func (v *view) delAlive(name string) {
	delete(v.old, name)
	if !v.alive[name] {
		return
	}
	delete(v.alive, name)
	v.dirty.hosts[name] = true
}

// legacy reports whether a podnetd older than exception records is alive.
func (v *view) legacy() bool { return len(v.old) > 0 }

// poolView is one pool's share of the view.
type poolView struct {
	// loaded is set when the whole pool was listed at once (tests); Run
	// follows the pool's kinds of keys separately and tracks each in
	// scopes (kind → listed).
	loaded bool
	scopes map[string]bool
	refs   map[string]bool         // hosts using the pool
	blocks map[netip.Prefix]string // block → claiming host
	bits   map[int]int             // prefix lengths of the blocks → count
	// addrs are address records (followed only while an old podnetd is
	// alive or its writes are not repaired); exc are exception records. fromAddrs says which of the
	// two holds the exception candidates.
	addrs     map[netip.Addr]addrOwner
	exc       map[netip.Addr]addrOwner
	fromAddrs bool
	// consistent is false while the exception records may disagree with
	// the address records (an old podnetd wrote addresses); repair.go
	// sets it once they agree.
	consistent bool

	// users indexes, for incremental passes, what makes each host a user
	// of the pool (reference, blocks, container candidates it owns) and
	// so finds its routes; kept by the set/del methods.
	users map[string]*poolUser
	dirty *dirtySet
}

// poolUser is one host's share of a pool.
type poolUser struct {
	ref    bool
	blocks []netip.Prefix
	owned  []netip.Addr // container candidates it owns
}

func (u *poolUser) uses() bool { return u != nil && (u.ref || len(u.blocks) > 0 || len(u.owned) > 0) }

// addrOwner is the part of an address or exception record that matters
// here, with the revision it was read at (for repairs).
type addrOwner struct {
	host      string
	container bool // gateway and aux addresses are never exceptions
	rev       int64
}

// newPoolView returns an empty pool view whose exceptions come from
// address records (the authoritative source; Run switches IPv4 pools to
// exception records).
func newPoolView() *poolView {
	return &poolView{scopes: map[string]bool{}, refs: map[string]bool{}, blocks: map[netip.Prefix]string{}, bits: map[int]int{},
		addrs: map[netip.Addr]addrOwner{}, exc: map[netip.Addr]addrOwner{}, fromAddrs: true, consistent: true,
		users: map[string]*poolUser{},
		dirty: newDirtySet()}
}

// candidates are the records exceptions are derived from.
func (p *poolView) candidates() map[netip.Addr]addrOwner {
	if p.fromAddrs {
		return p.addrs
	}
	return p.exc
}

// user edits h's share of the pool, marking its neighbor entries when it
// starts or stops using the pool.
func (p *poolView) user(h string, edit func(u *poolUser)) {
	if h == "" {
		return
	}
	u := p.users[h]
	before := u.uses()
	if u == nil {
		u = &poolUser{}
		p.users[h] = u
	}
	edit(u)
	if after := u.uses(); !after {
		delete(p.users, h)
		if before {
			p.dirty.neigh[h] = true
		}
	} else if !before {
		p.dirty.neigh[h] = true
	}
}

func (p *poolView) setRef(h string) {
	if p.refs[h] {
		return
	}
	p.refs[h] = true
	p.user(h, func(u *poolUser) { u.ref = true })
}

func (p *poolView) delRef(h string) {
	if !p.refs[h] {
		return
	}
	delete(p.refs, h)
	p.user(h, func(u *poolUser) { u.ref = false })
}

func (p *poolView) setBlock(b netip.Prefix, host string) {
	old, ok := p.blocks[b]
	if ok && old == host {
		return
	}
	if ok {
		p.unindexBlock(b, old)
	} else {
		p.bits[b.Bits()]++
	}
	p.blocks[b] = host
	p.user(host, func(u *poolUser) { u.blocks = append(u.blocks, b) })
	p.blockChanged(b)
}

func (p *poolView) delBlock(b netip.Prefix) {
	old, ok := p.blocks[b]
	if !ok {
		return
	}
	delete(p.blocks, b)
	if p.bits[b.Bits()]--; p.bits[b.Bits()] == 0 {
		delete(p.bits, b.Bits())
	}
	p.unindexBlock(b, old)
	p.blockChanged(b)
}

func (p *poolView) unindexBlock(b netip.Prefix, host string) {
	p.user(host, func(u *poolUser) { u.blocks = without(u.blocks, b) })
}

// without removes x from s (a host's few blocks or addresses).
func without[T comparable](s []T, x T) []T {
	if i := slices.Index(s, x); i >= 0 {
		s[i] = s[len(s)-1]
		s = s[:len(s)-1]
	}
	return s
}

// blockChanged marks the block's route and every candidate inside it (its
// claimant decides whether it is an exception): the smaller of the block's
// addresses and the pool's candidates is walked.
func (p *poolView) blockChanged(b netip.Prefix) {
	p.dirty.dsts[b] = true
	cands := p.candidates()
	if size := b.Addr().BitLen() - b.Bits(); size < 16 && 1<<size < len(cands) {
		for a := b.Addr(); a.IsValid() && b.Contains(a); a = a.Next() {
			if _, ok := cands[a]; ok {
				p.dirty.addr(a)
			}
		}
		return
	}
	for a := range cands {
		if b.Contains(a) {
			p.dirty.addr(a)
		}
	}
}

// setAddr and delAddr keep address records, setExc and delExc exception
// records; whichever is the candidates' source also updates the indexes.
func (p *poolView) setAddr(a netip.Addr, o addrOwner) { p.setRecord(p.addrs, p.fromAddrs, a, o) }
func (p *poolView) delAddr(a netip.Addr)              { p.delRecord(p.addrs, p.fromAddrs, a) }
func (p *poolView) setExc(a netip.Addr, o addrOwner)  { p.setRecord(p.exc, !p.fromAddrs, a, o) }
func (p *poolView) delExc(a netip.Addr)               { p.delRecord(p.exc, !p.fromAddrs, a) }

func (p *poolView) setRecord(m map[netip.Addr]addrOwner, active bool, a netip.Addr, o addrOwner) {
	old, had := m[a]
	m[a] = o
	if !active || had && old.host == o.host && old.container == o.container {
		return
	}
	if had {
		p.unindexCandidate(a, old)
	}
	p.indexCandidate(a, o)
	p.dirty.addr(a)
}

func (p *poolView) delRecord(m map[netip.Addr]addrOwner, active bool, a netip.Addr) {
	old, had := m[a]
	if !had {
		return
	}
	delete(m, a)
	if active {
		p.unindexCandidate(a, old)
		p.dirty.addr(a)
	}
}

func (p *poolView) indexCandidate(a netip.Addr, o addrOwner) {
	if !o.container || o.host == "" {
		return
	}
	p.user(o.host, func(u *poolUser) { u.owned = append(u.owned, a) })
}

func (p *poolView) unindexCandidate(a netip.Addr, o addrOwner) {
	if !o.container || o.host == "" {
		return
	}
	p.user(o.host, func(u *poolUser) { u.owned = without(u.owned, a) })
}

// setSource switches the candidates between address and exception
// records, marking every candidate of both.
func (p *poolView) setSource(fromAddrs bool) {
	if p.fromAddrs == fromAddrs {
		return
	}
	for a, o := range p.candidates() {
		p.unindexCandidate(a, o)
		p.dirty.addr(a)
	}
	p.fromAddrs = fromAddrs
	for a, o := range p.candidates() {
		p.indexCandidate(a, o)
		p.dirty.addr(a)
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
