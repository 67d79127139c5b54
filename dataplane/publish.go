package dataplane

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"

	"github.com/podnet/podnet/internal/dockerid"
	"github.com/vishvananda/netlink"
)

// Publish chooses concrete host ports for bindings, checks them for
// conflicts, programs them in one batch and returns the mappings (in
// binding order; a wildcard binding yields an IPv4 and, if ip6 is valid,
// an IPv6 mapping on the same port). All or nothing: on error nothing
// changed. Calling it again for the endpoint replaces its mappings (ports
// it already had are kept when the bindings still allow them).
//
// Kernel side: `nft add element inet podnet pm4_any { tcp . 8080 : 10.1.0.2 . 80 }`
// (and delete element for replaced ones), in one batch; no iptables.
// Afterwards, UDP/SCTP conntrack entries that would keep new flows away
// from the container are deleted (`conntrack -D -p udp --dport 8080`, for
// host addresses only).
func (e *Engine) Publish(ctx context.Context, endpointID, networkID string, ip4, ip6 netip.Addr, bindings []Binding) ([]Mapping, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if endpointID == "" {
		return nil, errors.New("publish: empty endpoint ID")
	}
	ip4, ip6 = ip4.Unmap(), ip6.Unmap()
	if ip4.IsValid() && !ip4.Is4() || ip6.IsValid() && !ip6.Is6() {
		return nil, fmt.Errorf("publish ports of endpoint %s: addresses %s and %s are not IPv4 and IPv6", dockerid.Short(endpointID), ip4, ip6)
	}

	e.mu.Lock()
	if _, ok := e.nets[networkID]; !ok {
		// Still correct for DNAT; only hairpin masquerade needs the network.
		e.log.Debug("publishing on a network the engine does not know", "endpoint", endpointID, "network", networkID)
	}
	old, had := e.eps[endpointID]
	cursor := e.cursor
	chooser := newPortChooser(e.eps, endpointID, e.opts.PortInUse, e.ephemeralLocked(), &e.cursor)
	chooser.nodePort = e.nodePortOwnerLocked
	ms, err := chooser.choose(endpointID, ip4, ip6, bindings, old.mappings)
	if err != nil {
		e.cursor = cursor
		e.mu.Unlock()
		return nil, fmt.Errorf("publish ports of endpoint %s: %w", dockerid.Short(endpointID), err)
	}
	if len(ms) > 0 {
		e.eps[endpointID] = endpointState{networkID: networkID, mappings: ms}
	} else {
		delete(e.eps, endpointID)
	}
	if err := e.applyEndpointLocked(endpointID, old.mappings, ms); err != nil {
		e.cursor = cursor
		if had {
			e.eps[endpointID] = old
		} else {
			delete(e.eps, endpointID)
		}
		e.mu.Unlock()
		return nil, fmt.Errorf("publish ports of endpoint %s: %w", dockerid.Short(endpointID), err)
	}
	e.mu.Unlock()
	e.log.Debug("ports published", "endpoint", endpointID, "network", networkID, "mappings", len(ms))

	gone, added := diffMappings(old.mappings, ms)
	e.flushUnpublished(gone)
	e.flushStale(added)
	return slices.Clone(ms), nil
}

// Unpublish removes the endpoint's mappings in one batch (`nft delete
// element …`), then deletes the conntrack entries they created
// (`conntrack -D -p tcp --orig-port-dst 8080 --reply-src 10.1.0.2`, and
// the same for udp and sctp), so that a client still sending to the port,
// or re-using a source port, is not stuck on the old container when the
// port is re-used. An unknown endpoint is not an error.
func (e *Engine) Unpublish(ctx context.Context, endpointID string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	e.mu.Lock()
	old, ok := e.eps[endpointID]
	if !ok {
		e.mu.Unlock()
		return nil
	}
	delete(e.eps, endpointID)
	if err := e.applyEndpointLocked(endpointID, old.mappings, nil); err != nil {
		e.eps[endpointID] = old
		e.mu.Unlock()
		return fmt.Errorf("unpublish ports of endpoint %s: %w", dockerid.Short(endpointID), err)
	}
	e.mu.Unlock()
	e.log.Debug("ports unpublished", "endpoint", endpointID, "mappings", len(old.mappings))
	e.flushUnpublished(old.mappings)
	return nil
}

// applyEndpointLocked makes the kernel's map elements go from old to new
// for one endpoint (e.eps already holds the new state). It updates just
// those elements; if the kernel refuses (the table was removed or changed
// behind our back) it rebuilds the whole table from e.eps instead.
func (e *Engine) applyEndpointLocked(endpointID string, old, new []Mapping) error {
	del, add := diffElements(elementsOf(endpointID, old), elementsOf(endpointID, new))
	if len(del) == 0 && len(add) == 0 {
		return nil
	}
	err := e.nft.updateElements(e.opts.Table, del, add)
	if err == nil {
		return nil
	}
	e.log.Info("incremental map update failed, rebuilding table", "endpoint", endpointID, "err", err)
	if _, err2 := e.syncTableLocked(true); err2 != nil {
		return errors.Join(err, err2)
	}
	return nil
}

func elementsOf(endpointID string, ms []Mapping) []element {
	out := make([]element, 0, len(ms))
	for _, m := range ms {
		out = append(out, mappingElement(m, endpointID))
	}
	return out
}

// diffMappings returns the mappings only in old and those only in new.
func diffMappings(old, new []Mapping) (gone, added []Mapping) {
	for _, m := range old {
		if !slices.Contains(new, m) {
			gone = append(gone, m)
		}
	}
	for _, m := range new {
		if !slices.Contains(old, m) {
			added = append(added, m)
		}
	}
	return gone, added
}

// ephemeralLocked returns Options.EphemeralPorts, else the kernel's
// ip_local_port_range (read once).
func (e *Engine) ephemeralLocked() [2]uint16 {
	if e.opts.EphemeralPorts != [2]uint16{} {
		return e.opts.EphemeralPorts
	}
	if e.ephemeral == [2]uint16{} {
		r, err := kernelEphemeralRange()
		if err != nil {
			e.log.Warn("using default ephemeral port range", "err", err)
			r = [2]uint16{defaultEphemeralLo, defaultEphemeralHi}
		}
		e.ephemeral = r
	}
	return e.ephemeral
}

// flushUnpublished deletes the conntrack entries NATed by ms, TCP
// included, as Docker's bridge does when an endpoint goes. A client that
// re-uses a source port (a busy client wraps its ephemeral range in
// seconds) would otherwise match the old entry: after an RST from the
// container the entry is CLOSE, and a new SYN in the original direction
// moves it to SYN_SENT with the old NAT binding, so the connection goes to
// the removed container, or to whatever now holds its address, for up to
// two minutes. The kernel offers no filtered delete, so this dumps the
// table (~5 µs per entry) while dockerd waits on Revoke; only endpoints
// that published ports pay it. Failures are logged, not returned: the
// ports are already unpublished.
func (e *Engine) flushUnpublished(ms []Mapping) {
	if len(ms) == 0 {
		return
	}
	n, err := e.ct.deleteFlows(mappingFamilies(ms), func(f *netlink.ConntrackFlow) bool {
		return slices.ContainsFunc(ms, func(m Mapping) bool { return matchesMapping(f, m) })
	})
	e.logFlush("unpublished", n, err)
}

// flushStale deletes UDP and SCTP entries addressed to the new mappings'
// host ports that do not lead to their containers (created while the port
// was unpublished). TCP is skipped to keep the table dump off the start
// path: the entries of the port's previous owner went with its Unpublish,
// and what is left (connections the host refused while nothing was
// published) times out in seconds.
func (e *Engine) flushStale(ms []Mapping) {
	ms = slices.DeleteFunc(slices.Clone(ms), func(m Mapping) bool { return m.Proto == TCP })
	if len(ms) == 0 {
		return
	}
	local, err := e.ct.localAddrs()
	if err != nil {
		e.logFlush("stale", 0, err)
		return
	}
	n, err := e.ct.deleteFlows(mappingFamilies(ms), func(f *netlink.ConntrackFlow) bool {
		return slices.ContainsFunc(ms, func(m Mapping) bool { return staleForMapping(f, m, local) })
	})
	e.logFlush("stale", n, err)
}

func (e *Engine) logFlush(kind string, n uint, err error) {
	if err != nil {
		e.log.Warn("conntrack cleanup failed", "kind", kind, "err", err)
		return
	}
	if n > 0 {
		e.log.Debug("conntrack entries deleted", "kind", kind, "count", n)
	}
}
