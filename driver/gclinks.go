package driver

import (
	"errors"
	"github.com/podnet/podnet/internal/link"
	"strings"
)

// gcLinks deletes podnet bridges and host-side veths that no known network
// or endpoint owns (left by a crash between kernel work and the etcd
// write). Callers hold netMu exclusively, so no endpoint is half-created.
func (d *Driver) gcLinks() ([]string, error) {
	links, err := d.k.Links()
	if err != nil {
		return nil, err
	}
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
	var removed []string
	var errs []error
	// Host ends first: deleting one takes its peer along, so a second pass
	// over a fresh listing only finds peers and bridges still orphaned.
	for pass := 0; pass < 2; pass++ {
		if pass == 1 {
			if links, err = d.k.Links(); err != nil {
				return removed, err
			}
		}
		for _, l := range links {
			name := l.Attrs().Name
			ours := (strings.HasPrefix(name, bridgePrefix) && l.Type() == "bridge") ||
				((strings.HasPrefix(name, hostVethPrefix) || strings.HasPrefix(name, peerVethPrefix)) && l.Type() == "veth")
			if !ours || owned[name] || (pass == 0) != strings.HasPrefix(name, hostVethPrefix) {
				continue
			}
			if err := d.k.DeleteLink(name); err != nil {
				errs = append(errs, err)
				continue
			}
			removed = append(removed, name)
		}
	}
	return removed, errors.Join(errs...)
}

// CleanupLinks deletes every podnet link on the host (podnetd cleanup):
// bridges pn-*, veths pnh*/pnc*.
func CleanupLinks(k *link.Kernel) ([]string, error) {
	links, err := k.Links()
	if err != nil {
		return nil, err
	}
	var removed []string
	var errs []error
	for _, l := range links {
		name := l.Attrs().Name
		if (strings.HasPrefix(name, bridgePrefix) && l.Type() == "bridge") ||
			((strings.HasPrefix(name, hostVethPrefix) || strings.HasPrefix(name, peerVethPrefix)) && l.Type() == "veth") {
			if err := k.DeleteLink(name); err != nil {
				errs = append(errs, err)
				continue
			}
			removed = append(removed, name)
		}
	}
	return removed, errors.Join(errs...)
}
