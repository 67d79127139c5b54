package overlay

import (
	"net/netip"
	"slices"
)

// publishPeers hands Config.Peers the underlay addresses of every host in
// the view (hosts/ as followed), sorted, if they changed since the last
// call; with encryption none (VXLAN is then not accepted from the
// underlay at all). It runs in the hosts/ follower, after the view is updated, with
// no lock held.
func (o *Overlay) publishPeers() {
	if o.peersFn == nil {
		return
	}
	o.mu.Lock()
	if o.peersSent && !o.view.underlaysChanged {
		o.mu.Unlock()
		return
	}
	o.view.underlaysChanged = false
	peers := make([]netip.Addr, 0, len(o.view.hosts))
	for _, u := range o.view.hosts {
		if u.IsValid() && o.wg == nil { // with encryption, VXLAN from nobody
			peers = append(peers, u)
		}
	}
	// Sorted, then deduplicated: hosts sharing an underlay address are
	// rare, and a scan per host was quadratic (seconds of CPU per batch
	// of host changes at 5000 hosts).
	slices.SortFunc(peers, netip.Addr.Compare)
	peers = slices.Compact(peers)
	same := o.peersSent && slices.Equal(peers, o.lastPeers)
	o.lastPeers, o.peersSent = peers, true
	o.mu.Unlock()
	if !same {
		o.peersFn(peers)
	}
}
