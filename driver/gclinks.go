package driver

import (
	"errors"
	"strings"

	"github.com/podnet/podnet/internal/link"
	"github.com/vishvananda/netlink"
)

// gcLinks deletes podnet bridges and host-side veths that no known network
// or endpoint owns (left by a crash between kernel work and the etcd
// write). Callers hold netMu exclusively, so no endpoint is half-created.
func (d *Driver) gcLinks() ([]string, error) {
	d.mu.Lock()
	owned := map[string]bool{}
	for _, n := range d.nets {
		if n.Bridge != "" {
			owned[n.Bridge] = true
		}
	}
	for _, ep := range d.eps {
		if ep.HostVeth != "" {
			owned[ep.HostVeth] = true
			owned[ep.PeerVeth] = true
		}
	}
	d.mu.Unlock()
	// Host ends first: deleting one takes its peer along, so the second
	// pass, over a fresh listing, only finds peers and bridges still orphaned.
	removed, err1 := d.k.DeleteLinksWhere(func(l netlink.Link) bool {
		name := l.Attrs().Name
		return isPodnetLink(l) && !owned[name] && strings.HasPrefix(name, hostVethPrefix)
	})
	more, err2 := d.k.DeleteLinksWhere(func(l netlink.Link) bool {
		name := l.Attrs().Name
		return isPodnetLink(l) && !owned[name] && !strings.HasPrefix(name, hostVethPrefix)
	})
	return append(removed, more...), errors.Join(err1, err2)
}

// isPodnetLink: a bridge pn-* or a veth pnh*/pnc*.
func isPodnetLink(l netlink.Link) bool {
	name := l.Attrs().Name
	return strings.HasPrefix(name, bridgePrefix) && l.Type() == "bridge" ||
		(strings.HasPrefix(name, hostVethPrefix) || strings.HasPrefix(name, peerVethPrefix)) && l.Type() == "veth"
}

// CleanupLinks deletes every podnet link on the host (podnetd cleanup):
// bridges pn-*, veths pnh*/pnc*.
func CleanupLinks(k *link.Kernel) ([]string, error) {
	return k.DeleteLinksWhere(isPodnetLink)
}
