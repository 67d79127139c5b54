package driver

import (
	"errors"
	"strings"

	"github.com/podnet/podnet/internal/link"
	"github.com/podnet/podnet/netspec"
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
		if netspec.IsLAN(n.Mode) && isolated(n) {
			owned[isolatedName(n.ID)] = true
		}
	}
	for _, ep := range d.eps {
		for _, name := range []string{ep.HostVeth, ep.PeerVeth} {
			if name != "" {
				owned[name] = true
			}
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

// isPodnetLink: a bridge pn-* or a veth pnh*/pnc*; a macvlan/ipvlan
// host-access shim pn-*, container interface pnv* or probe pnp*; an
// isolated parent pnd* (dummy, or a veth whose peer pne* goes with it).
func isPodnetLink(l netlink.Link) bool {
	name, kind := l.Attrs().Name, l.Type()
	sub := kind == netspec.ModeMacvlan || kind == netspec.ModeIpvlan
	return strings.HasPrefix(name, bridgePrefix) && (kind == "bridge" || sub) ||
		(strings.HasPrefix(name, hostVethPrefix) || strings.HasPrefix(name, peerVethPrefix)) && kind == "veth" ||
		(strings.HasPrefix(name, lanPrefix) || strings.HasPrefix(name, probePrefix)) && sub ||
		strings.HasPrefix(name, isolatedPrefix) && (kind == "dummy" || kind == "veth")
}

// CleanupLinks deletes every podnet link on the host (podnetd cleanup):
// bridges pn-*, veths pnh*/pnc*, macvlan/ipvlan interfaces, their isolated
// parents and the VLAN parents podnet created (by their alias: cleanup
// runs without etcd).
func CleanupLinks(k *link.Kernel) ([]string, error) {
	return k.DeleteLinksWhere(func(l netlink.Link) bool {
		return isPodnetLink(l) || l.Type() == "vlan" && l.Attrs().Alias == vlanAlias
	})
}
