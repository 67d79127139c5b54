package overlay

import (
	"bytes"
	"maps"
	"net/netip"
	"slices"

	"github.com/podnet/podnet/overlay/wireguard"
)

// Encryption (see "Encryption" in doc.go): with a WireGuard device every
// route to another host's block or address leads into it, and each remote
// host is a peer whose allowed IPs are exactly the destinations routed to
// it. The model decides both with the same per-entry rules as the rest:
// full passes derive the peers from the routes, incremental passes
// recompute the peers of the hosts an event touched from the hosts' own
// blocks and addresses (poolView.users), so a block changing hands costs
// two peers, not the cluster.

// local is this host's side of the model.
func (o *Overlay) local(nets []Network) local {
	l := local{host: o.host, underlay: o.underlay, networks: nets}
	if o.wg != nil {
		l.wg = &wgLocal{dev: o.wg.Name(), key: o.wg.PublicKey()}
	}
	return l
}

// hostKey is a host record's WireGuard part as the view holds it.
type hostKey struct {
	set   bool // the record has a WireGuard part: the host takes only WireGuard
	valid bool // and its public key parses
	key   wireguard.Key
	port  int
}

// wgTarget is host h reached through WireGuard: eligible (alive, keyed,
// encrypted), and neither its underlay address nor its key claimed by an
// eligible host that sorts before it.
func (m *model) wgTarget(h string) (target, bool) {
	u, ok := m.indexed[h]
	if !ok {
		return target{}, false
	}
	if first := m.byUnderlay[u][0]; first != h {
		m.warn("two hosts claim one underlay address; ignoring the later by name", "host", h, "other", first, "underlay", u)
		return target{}, false
	}
	k, ok := m.keyed[h]
	if !ok {
		return target{}, false
	}
	if first := m.byKey[k][0]; first != h {
		m.warn("two hosts have one WireGuard key (a copied data dir?); ignoring the later by name", "host", h, "other", first,
			"fingerprint", wireguard.Fingerprint(k))
		return target{}, false
	}
	return target{underlay: u, wg: m.l.wg.dev}, true
}

// updateKey refreshes h's place in the key index (eligible: ok) and
// returns the hosts sharing its key, whose peers may change with it.
func (m *model) updateKey(h string, ok bool) []string {
	if !m.encrypted() {
		return nil
	}
	var partners []string
	relist := func(k wireguard.Key, add bool) {
		hosts := slices.DeleteFunc(m.byKey[k], func(x string) bool { return x == h })
		if add {
			i, _ := slices.BinarySearch(hosts, h)
			hosts = slices.Insert(hosts, i, h)
		}
		if len(hosts) == 0 {
			delete(m.byKey, k)
		} else {
			m.byKey[k] = hosts
		}
		for _, x := range hosts {
			if x != h {
				partners = append(partners, x)
			}
		}
	}
	if k, was := m.keyed[h]; was {
		relist(k, false)
		delete(m.keyed, h)
	}
	if k := m.v.keys[h]; ok && k.valid {
		relist(k.key, true)
		m.keyed[h] = k.key
	}
	return partners
}

// peerBase is h's peer without allowed IPs, if h is a peer at all: every
// live, keyed, encrypted host is, whether or not it shares a network with
// this one.
func (m *model) peerBase(h string) (wireguard.Peer, bool) {
	t, ok := m.wgTarget(h)
	if !ok {
		return wireguard.Peer{}, false
	}
	k := m.v.keys[h]
	return wireguard.Peer{Key: k.key, Endpoint: netip.AddrPortFrom(t.underlay, uint16(k.port))}, true
}

// fullPeers fills d.peers from d.routes: each peer's allowed IPs are the
// destinations routed into WireGuard towards it.
func (m *model) fullPeers(d *desired) {
	for h := range m.keyed {
		if p, ok := m.peerBase(h); ok {
			d.peers[h] = p
		}
	}
	for dst, r := range d.routes {
		if p, ok := d.peers[r.host]; ok && r.dev == m.l.wg.dev {
			p.AllowedIPs = append(p.AllowedIPs, dst)
			d.peers[r.host] = p
		}
	}
	for h, p := range d.peers {
		wireguard.SortPrefixes(p.AllowedIPs)
		d.peers[h] = p
	}
}

// peerFor is h's peer with its allowed IPs, computed from h's own blocks
// and addresses (incremental passes): what fullPeers derives from the
// routes, at the cost of h's entries only.
func (m *model) peerFor(h string) (wireguard.Peer, bool) {
	p, ok := m.peerBase(h)
	if !ok {
		return p, false
	}
	seen := map[netip.Prefix]bool{}
	add := func(dst netip.Prefix) {
		if seen[dst] {
			return
		}
		seen[dst] = true
		if r, ok := m.routeFor(dst); ok && r.host == h && r.dev == m.l.wg.dev {
			p.AllowedIPs = append(p.AllowedIPs, dst)
		}
	}
	for _, n := range m.nets {
		for _, pool := range n.Pools {
			pv := m.v.pools[pool.Masked()]
			if pv == nil || pv.users[h] == nil {
				continue
			}
			for _, b := range pv.users[h].blocks {
				add(b)
			}
			for _, a := range pv.users[h].owned {
				add(netip.PrefixFrom(a, a.BitLen()))
			}
		}
	}
	wireguard.SortPrefixes(p.AllowedIPs)
	return p, true
}

// peerEntry is one remote host's peer: what is applied and what is wanted.
type peerEntry struct {
	host      string
	old, want wireguard.Peer
	had, ok   bool
}

func (e peerEntry) unchanged() bool {
	return e.had == e.ok && (!e.ok || e.old.Equal(e.want))
}

// planPeers adds to sp the peers of hosts (dirty ones) and of the hosts
// whose routes change in sp, where they differ from applied.
func (m *model) planPeers(sp *stepPlan, hosts map[string]bool, applied *desired) {
	if !m.encrypted() {
		return
	}
	touched := map[string]bool{}
	for h := range hosts {
		touched[h] = true
	}
	for _, e := range sp.routes {
		if e.had && e.old.dev == m.l.wg.dev {
			touched[e.old.host] = true
		}
		if e.ok && e.want.dev == m.l.wg.dev {
			touched[e.want.host] = true
		}
	}
	delete(touched, "")
	for h := range touched {
		e := peerEntry{host: h}
		e.old, e.had = applied.peers[h]
		e.want, e.ok = m.peerFor(h)
		if !e.unchanged() {
			sp.peers = append(sp.peers, e)
		}
	}
	sp.keys += len(touched)
}

// setPeer adds or updates one peer (wg set pnwg peer K endpoint E
// allowed-ips …); applied follows.
func (p *program) setPeer(applied *desired, e peerEntry) {
	if p.o.wg == nil {
		return
	}
	if e.had && e.old.Equal(e.want) {
		return
	}
	if p.do(p.o.wg.SetPeer(e.want)) {
		if !e.had {
			p.remote.hosts++
		}
		applied.peers[e.host] = e.want
		p.changes.PeersSet++
		p.logPeer("wireguard peer set", e.host, e.want)
	}
}

// delPeer removes what an entry no longer wants: the whole peer when the
// host is gone, its old key when the key changed (after setPeer moved the
// allowed IPs to the new one).
func (p *program) delPeer(applied *desired, e peerEntry) {
	if p.o.wg == nil || !e.had || e.ok && e.old.Key == e.want.Key {
		return
	}
	if p.do(p.o.wg.RemovePeer(e.old.Key)) {
		if !e.ok {
			p.remote.hosts--
			delete(applied.peers, e.host)
		}
		p.changes.PeersRemoved++
		p.logPeer("wireguard peer removed", e.host, e.old)
	}
}

func (p *program) logPeer(msg, host string, peer wireguard.Peer) {
	p.o.log.Info(msg, "host", host, "fingerprint", wireguard.Fingerprint(peer.Key), "endpoint", peer.Endpoint,
		"allowedIPs", len(peer.AllowedIPs))
}

// addPeers is a full pass's first WireGuard step: every wanted peer the
// kernel lacks or has otherwise is set (before routes lead to it).
func (p *program) addPeers() (have map[wireguard.Key]wireguard.Peer) {
	if p.o.wg == nil {
		return nil
	}
	peers, err := p.o.wg.Peers()
	if err != nil {
		p.errs = append(p.errs, err)
		return nil
	}
	have = make(map[wireguard.Key]wireguard.Peer, len(peers))
	for _, q := range peers {
		have[q.Key] = q
	}
	for _, h := range sortedKeys(p.want.peers) {
		w := p.want.peers[h]
		if q, ok := have[w.Key]; ok && q.Equal(w) {
			continue
		}
		if p.do(p.o.wg.SetPeer(w)) {
			p.changes.PeersSet++
			p.logPeer("wireguard peer set", h, w)
		}
	}
	return have
}

// deletePeers is a full pass's last WireGuard step: peers nobody wants
// (hosts gone, dead, without a key, or with a new one) are removed.
func (p *program) deletePeers(have map[wireguard.Key]wireguard.Peer) {
	if p.o.wg == nil || have == nil {
		return
	}
	want := make(map[wireguard.Key]bool, len(p.want.peers))
	for _, w := range p.want.peers {
		want[w.Key] = true
	}
	for _, k := range slices.SortedFunc(maps.Keys(have), func(a, b wireguard.Key) int { return bytes.Compare(a[:], b[:]) }) {
		if want[k] {
			continue
		}
		if p.do(p.o.wg.RemovePeer(k)) {
			p.changes.PeersRemoved++
			p.logPeer("wireguard peer removed", p.names[have[k].Endpoint.Addr()], have[k])
		}
	}
}
