package overlay

import (
	"time"

	"github.com/podnet/podnet/internal/metrics"
)

// Kinds of programming passes, as labelled in podnet_overlay_syncs_total.
const (
	passIncremental = "incremental"
	passFull        = "full"
	passUnchanged   = "unchanged"
)

// observeUnchanged records a pass that found the desired state equal to
// what the previous pass applied and touched nothing.
func observeUnchanged(start time.Time) {
	metrics.OverlaySyncs.WithLabelValues(passUnchanged).Inc()
	metrics.Since(metrics.OverlaySyncDuration.WithLabelValues(passUnchanged), start)
}

// observe records a pass that diffed against the kernel: its kind,
// duration, failed operations and changes, and, when it was clean
// (remote counts what it left in the kernel), how many remote hosts and
// blocks are programmed, and with encryption how many WireGuard peers.
func (p *program) observe(full bool, start time.Time, remote *remoteCounts) {
	kind := passIncremental
	if full {
		kind = passFull
	}
	metrics.OverlaySyncs.WithLabelValues(kind).Inc()
	metrics.Since(metrics.OverlaySyncDuration.WithLabelValues(kind), start)
	metrics.OverlaySyncErrors.Add(float64(len(p.errs)))
	c := p.changes
	for _, ch := range []struct {
		object, op string
		n          int
	}{
		{"route", "add", c.RoutesAdded}, {"route", "replace", c.RoutesReplaced}, {"route", "delete", c.RoutesDeleted},
		{"neighbor", "add", c.NeighAdded}, {"neighbor", "delete", c.NeighDeleted},
		{"fdb", "add", c.FDBAdded}, {"fdb", "delete", c.FDBDeleted},
		{"proxy", "delete", c.ProxyDeleted},
		{"wireguard_peer", "set", c.PeersSet}, {"wireguard_peer", "delete", c.PeersRemoved},
		{"address", "add", c.AddrsAdded}, {"address", "delete", c.AddrsDeleted},
	} {
		if ch.n > 0 {
			metrics.OverlayChanges.WithLabelValues(ch.object, ch.op).Add(float64(ch.n))
		}
	}
	if remote != nil {
		metrics.OverlayRemoteHosts.Set(float64(remote.hosts))
		metrics.OverlayRemoteBlocks.Set(float64(remote.blocks))
		if p.o.wg != nil {
			// Encrypted, the remote hosts are exactly the peers (no VXLAN
			// device holds any): the alert on missing peers compares them
			// with the live hosts.
			metrics.SetWireGuardPeers(remote.hosts)
		}
	}
}

// remoteCounts are the distinct remote hosts and the routes to remote
// blocks in the kernel: counted by a full pass (a walk of everything),
// moved by an incremental one by what it changed (a walk per event would
// cost a whole-cluster pass again: ~1 ms at 5000 hosts).
type remoteCounts struct{ hosts, blocks int }

// remoteBlock: r leads to a block of another host (the routes counted).
func remoteBlock(r route) bool { return r.host != "" && !r.exception }

// hostElsewhere: host is a remote host of a device of d other than dev.
func (d *desired) hostElsewhere(dev, host string) bool {
	for name, ds := range d.devices {
		if name == dev {
			continue
		}
		if _, ok := ds.hosts[host]; ok {
			return true
		}
	}
	return false
}

// remote counts the distinct remote hosts d programs (on any network) and
// its routes to remote blocks (single-address exception routes aside).
func (d *desired) remote() (hosts, blocks int) {
	seen := map[string]bool{}
	for _, ds := range d.devices {
		for h := range ds.hosts {
			seen[h] = true
		}
	}
	for h := range d.peers {
		seen[h] = true
	}
	for _, r := range d.routes {
		if remoteBlock(r) {
			blocks++
		}
	}
	return len(seen), blocks
}
