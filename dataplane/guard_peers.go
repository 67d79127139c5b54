package dataplane

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
)

// SetPeers replaces the underlay addresses VXLAN is accepted from: the
// hosts registered in etcd (the overlay follows hosts/ and calls this).
// Only IPv4 addresses are kept: the underlay is IPv4.
//
// The overlay calls it after every batch of host changes, with every
// host, so its cost must follow the change, not the cluster: when the
// table is loaded, only the hosts4 elements that differ are deleted and
// added, in one transaction (a whole-table sync lists and diffs every set,
// which at 5000 hosts arriving a few at a time was half of podnetd's CPU).
// If the kernel refuses (its set drifted from what the engine believes),
// the table is rebuilt as before.
func (e *Engine) SetPeers(ctx context.Context, peers []netip.Addr) error {
	ps := make([]netip.Addr, 0, len(peers))
	for _, p := range peers {
		if p = p.Unmap(); p.Is4() {
			ps = append(ps, p)
		}
	}
	slices.SortFunc(ps, netip.Addr.Compare)
	ps = slices.Compact(ps)
	if err := ctx.Err(); err != nil {
		return err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	old := e.guard.peers
	if slices.Equal(old, ps) {
		return nil
	}
	e.guard.peers = ps
	if !e.tableLoaded {
		return nil // Sync programs them with the rest
	}
	del, add := diffPeers(old, ps)
	err := e.nft.updateElements(e.opts.Table, del, add)
	if err == nil {
		e.log.Debug("guard updated", "what", "vxlan peers", "added", len(add), "removed", len(del))
		return nil
	}
	e.log.Info("incremental update of the VXLAN peers failed, rebuilding the table", "err", err)
	if _, err2 := e.syncTableLocked(false); err2 != nil {
		e.guard.peers = old
		return fmt.Errorf("update vxlan peers: %w", err2)
	}
	return nil
}

// diffPeers is the hosts4 elements to delete and to add to go from old to
// new (both sorted, without duplicates).
func diffPeers(old, new []netip.Addr) (del, add []element) {
	i, j := 0, 0
	for i < len(old) || j < len(new) {
		switch {
		case j == len(new) || i < len(old) && old[i].Less(new[j]):
			del = append(del, peerElement(old[i]))
			i++
		case i == len(old) || new[j].Less(old[i]):
			add = append(add, peerElement(new[j]))
			j++
		default:
			i, j = i+1, j+1
		}
	}
	return del, add
}

// peerElement is a as an element of hosts4.
func peerElement(a netip.Addr) element {
	return element{set: setHosts4, key: a.AsSlice(), text: a.String()}
}
