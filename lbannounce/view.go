package lbannounce

import (
	"net/netip"
	"strings"
	"sync"

	"github.com/podnet/podnet/store"
)

// view is what the announcer follows in etcd: the pools, the peers, the
// L2 claims and the hosts' announcers. Followers write it; the loop
// reads it under the same lock.
type view struct {
	mu       sync.Mutex
	pools    map[string]store.LBPool
	peers    map[string]store.BGPPeer
	claims   map[netip.Addr]claim
	speakers map[string]store.LBSpeaker
	loaded   map[string]bool
	kick     chan struct{}
}

// claim is an L2 claim as read, with its revision (releases are
// conditioned on it).
type claim struct {
	store.L2Claim
	rev int64
}

// followed are the prefixes the announcer follows.
var followed = []string{store.LBPoolsPrefix, store.BGPPeersPrefix, store.L2ClaimsPrefix, store.LBSpeakersPrefix}

func newView() *view {
	return &view{pools: map[string]store.LBPool{}, peers: map[string]store.BGPPeer{}, claims: map[netip.Addr]claim{},
		speakers: map[string]store.LBSpeaker{}, loaded: map[string]bool{}, kick: make(chan struct{}, 1)}
}

func (v *view) signal() {
	select {
	case v.kick <- struct{}{}:
	default:
	}
}

// follower feeds one prefix into the view.
type follower struct {
	v      *view
	prefix string
}

func (f follower) Snapshot(kvs []store.KV) {
	v := f.v
	v.mu.Lock()
	switch f.prefix {
	case store.LBPoolsPrefix:
		clear(v.pools)
	case store.BGPPeersPrefix:
		clear(v.peers)
	case store.L2ClaimsPrefix:
		clear(v.claims)
	case store.LBSpeakersPrefix:
		clear(v.speakers)
	}
	for _, kv := range kvs {
		v.applyLocked(f.prefix, kv.Key, kv, false)
	}
	v.loaded[f.prefix] = true
	v.mu.Unlock()
	v.signal()
}

func (f follower) Changes(evs []store.Event) {
	v := f.v
	v.mu.Lock()
	for _, ev := range evs {
		v.applyLocked(f.prefix, ev.Key, store.KV{Key: ev.Key, Value: ev.Value, ModRev: ev.ModRev}, ev.Type == store.EventDelete)
	}
	v.mu.Unlock()
	v.signal()
}

// applyLocked applies one record; a malformed one counts as absent.
func (v *view) applyLocked(prefix, key string, kv store.KV, deleted bool) {
	name := strings.TrimPrefix(key, prefix)
	switch prefix {
	case store.LBPoolsPrefix:
		var p store.LBPool
		if deleted || kv.Decode(&p) != nil {
			delete(v.pools, name)
			return
		}
		v.pools[name] = p
	case store.BGPPeersPrefix:
		var p store.BGPPeer
		if deleted || kv.Decode(&p) != nil {
			delete(v.peers, name)
			return
		}
		v.peers[name] = p
	case store.L2ClaimsPrefix:
		a, ok := store.ParseAddrName(name)
		if !ok {
			return
		}
		var c store.L2Claim
		if deleted || kv.Decode(&c) != nil {
			delete(v.claims, a)
			return
		}
		v.claims[a] = claim{L2Claim: c, rev: kv.ModRev}
	case store.LBSpeakersPrefix:
		var s store.LBSpeaker
		if deleted || kv.Decode(&s) != nil {
			delete(v.speakers, name)
			return
		}
		v.speakers[name] = s
	}
}

// setClaim records a claim this host wrote (or deleted: rev 0), ahead of
// its watch event.
func (v *view) setClaim(a netip.Addr, c store.L2Claim, rev int64) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if rev == 0 {
		delete(v.claims, a)
		return
	}
	v.claims[a] = claim{L2Claim: c, rev: rev}
}

// snapshot is a copy of the view for one pass of the loop.
type snapshot struct {
	pools    []store.LBPool
	peers    []store.BGPPeer
	claims   map[netip.Addr]claim
	speakers map[string]store.LBSpeaker
	loaded   bool
}

func (v *view) snapshot() snapshot {
	v.mu.Lock()
	defer v.mu.Unlock()
	s := snapshot{claims: make(map[netip.Addr]claim, len(v.claims)), speakers: make(map[string]store.LBSpeaker, len(v.speakers)),
		loaded: len(v.loaded) == len(followed)}
	for _, p := range v.pools {
		s.pools = append(s.pools, p)
	}
	for _, p := range v.peers {
		s.peers = append(s.peers, p)
	}
	for a, c := range v.claims {
		s.claims[a] = c
	}
	for h, sp := range v.speakers {
		s.speakers[h] = sp
	}
	return s
}

// poolOf is the pool holding a.
func (s snapshot) poolOf(a netip.Addr) (store.LBPool, bool) {
	for _, p := range s.pools {
		if p.Contains(a) {
			return p, true
		}
	}
	return store.LBPool{}, false
}
