package dataplane

import (
	"fmt"
	"net/netip"

	"github.com/podnet/podnet/internal/dockerid"
)

// PortConflictError reports a host port that cannot be published because
// another endpoint published it, or another process on the host holds it.
// Callers may branch on it with errors.As.
type PortConflictError struct {
	Proto  Proto
	HostIP netip.Addr // the requested host address; unspecified (0.0.0.0, ::) for a wildcard
	Port   uint16
	// EndpointID is the endpoint that published the port; empty when a
	// process outside podnet holds it.
	EndpointID string
	// Service is the service whose NodePort the port is (NodePorts and
	// published ports share the host's ports).
	Service string
}

func (e *PortConflictError) Error() string {
	on := ""
	if e.HostIP.IsValid() && (!e.HostIP.IsUnspecified() || e.EndpointID == "") {
		on = " on " + e.HostIP.String()
	}
	if e.Service != "" {
		return fmt.Sprintf("host port %d/%s is NodePort %d of service %s (NodePorts and published ports share the host's ports): publish another port",
			e.Port, e.Proto, e.Port, e.Service)
	}
	if e.EndpointID != "" {
		return fmt.Sprintf("host port %d/%s%s is already published by endpoint %s", e.Port, e.Proto, on, dockerid.Short(e.EndpointID))
	}
	return fmt.Sprintf("host port %d/%s%s is in use by another process on this host", e.Port, e.Proto, on)
}

// portKey groups mappings that can collide: same protocol, family and port.
type portKey struct {
	proto Proto
	fam   family
	port  uint16
}

type portHolder struct {
	hostIP     netip.Addr // zero = wildcard
	endpointID string
	mapping    Mapping
}

// portChooser picks host ports for one Publish call. It is pure logic over
// the engine's state: published holds every other endpoint's mappings,
// inUse asks the host (Options.PortInUse).
type portChooser struct {
	published map[portKey][]portHolder
	inUse     func(Proto, netip.Addr, uint16) bool
	// nodePort names the service whose NodePort a port is ("" if none).
	nodePort  func(Proto, uint16) string
	ephemeral [2]uint16
	// cursor is where the next ephemeral search starts. Handing out ports
	// round-robin, as Docker does, keeps a just-released port (whose
	// conntrack entries may linger in clients' NAT tables) unused for as
	// long as possible.
	cursor *uint16
}

func newPortChooser(eps map[string]endpointState, exclude string, inUse func(Proto, netip.Addr, uint16) bool,
	ephemeral [2]uint16, cursor *uint16) *portChooser {
	c := &portChooser{published: map[portKey][]portHolder{}, inUse: inUse, ephemeral: ephemeral, cursor: cursor}
	for id, ep := range eps {
		if id == exclude {
			continue
		}
		for _, m := range ep.mappings {
			c.add(id, m)
		}
	}
	return c
}

func (c *portChooser) add(endpointID string, m Mapping) {
	k := portKey{m.Proto, familyOf(m.ContainerIP), m.HostPort}
	c.published[k] = append(c.published[k], portHolder{hostIP: m.HostIP, endpointID: endpointID, mapping: m})
}

// target is one family's half of a binding: where it maps to.
type target struct {
	hostIP      netip.Addr // zero = wildcard
	containerIP netip.Addr
}

// choose returns the mappings for bindings, or an error naming the first
// binding that cannot be satisfied (nothing is reserved then). previous is
// the endpoint's current mappings: a re-publish keeps their ports when it
// can, so repeating a Publish is idempotent even for ephemeral ports.
func (c *portChooser) choose(endpointID string, ip4, ip6 netip.Addr, bindings []Binding, previous []Mapping) ([]Mapping, error) {
	var out []Mapping
	seen := map[Binding]bool{}
	for _, b := range bindings {
		targets, err := bindingTargets(b, ip4, ip6)
		if err != nil {
			return nil, err
		}
		// Docker may repeat a binding (`-p 80:80 -p 80:80`): publish it once.
		if b.HostPort != 0 && max(b.HostPortEnd, b.HostPort) == b.HostPort {
			b.HostPortEnd = b.HostPort
			if seen[b] {
				continue
			}
			seen[b] = true
		}
		port, err := c.pickPort(b, targets, previous)
		if err != nil {
			return nil, err
		}
		for _, t := range targets {
			m := Mapping{Proto: b.Proto, HostIP: t.hostIP, HostPort: port, ContainerIP: t.containerIP, ContainerPort: b.ContainerPort}
			c.add(endpointID, m)
			out = append(out, m)
		}
	}
	return out, nil
}

// bindingTargets validates b and expands it per family: a zero HostIP
// publishes IPv4 to ip4 and IPv6 to ip6 (each when valid); 0.0.0.0 and ::
// are the wildcard of one family only, as in `docker run -p 0.0.0.0:80:80`.
func bindingTargets(b Binding, ip4, ip6 netip.Addr) ([]target, error) {
	if protoNumber(b.Proto) == 0 {
		return nil, fmt.Errorf("publish %d: unsupported protocol %q", b.ContainerPort, b.Proto)
	}
	if b.ContainerPort == 0 {
		return nil, fmt.Errorf("publish %s binding: container port is 0", b.Proto)
	}
	if b.HostPortEnd != 0 && b.HostPortEnd < b.HostPort || b.HostPort == 0 && b.HostPortEnd != 0 {
		return nil, fmt.Errorf("publish %d/%s: invalid host port range %d-%d", b.ContainerPort, b.Proto, b.HostPort, b.HostPortEnd)
	}
	host := b.HostIP.Unmap()
	var ts []target
	switch {
	case !host.IsValid():
		if ip4.IsValid() {
			ts = append(ts, target{containerIP: ip4})
		}
		if ip6.IsValid() {
			ts = append(ts, target{containerIP: ip6})
		}
		if len(ts) == 0 {
			return nil, fmt.Errorf("publish %d/%s: endpoint has no IP address", b.ContainerPort, b.Proto)
		}
	case host.Is4():
		if !ip4.IsValid() {
			return nil, fmt.Errorf("publish %s:%d/%s: endpoint has no IPv4 address", host, b.ContainerPort, b.Proto)
		}
		ts = append(ts, target{hostIP: specific(host), containerIP: ip4})
	default:
		if !ip6.IsValid() {
			return nil, fmt.Errorf("publish [%s]:%d/%s: endpoint has no IPv6 address", host, b.ContainerPort, b.Proto)
		}
		ts = append(ts, target{hostIP: specific(host), containerIP: ip6})
	}
	return ts, nil
}

// specific maps an unspecified address to the zero Addr (wildcard).
func specific(a netip.Addr) netip.Addr {
	if a.IsUnspecified() {
		return netip.Addr{}
	}
	return a
}

// pickPort returns the host port for b: the first free one of
// HostPort..HostPortEnd, or the next free one of the ephemeral range
// (round-robin). A port the same binding had before wins if still free.
func (c *portChooser) pickPort(b Binding, ts []target, previous []Mapping) (uint16, error) {
	lo, hi := b.HostPort, max(b.HostPortEnd, b.HostPort)
	ephemeral := b.HostPort == 0
	if ephemeral {
		lo, hi = c.ephemeral[0], c.ephemeral[1]
		if lo == 0 || hi < lo {
			return 0, fmt.Errorf("publish %d/%s: invalid ephemeral port range %d-%d", b.ContainerPort, b.Proto, lo, hi)
		}
	}
	if p, ok := previousPort(b, ts, previous); ok && p >= lo && p <= hi && c.free(b, ts, p) == nil {
		return p, nil
	}
	if !ephemeral {
		var last error
		for p := uint32(lo); p <= uint32(hi); p++ {
			if last = c.free(b, ts, uint16(p)); last == nil {
				return uint16(p), nil
			}
		}
		if lo == hi {
			return 0, last
		}
		return 0, fmt.Errorf("no free host port in %d-%d/%s: %w", lo, hi, b.Proto, last)
	}
	size := uint32(hi-lo) + 1
	start := *c.cursor
	if start < lo || start > hi {
		start = lo
	}
	for i := uint32(0); i < size; i++ {
		p := uint16(uint32(lo) + (uint32(start-lo)+i)%size)
		if c.free(b, ts, p) == nil {
			*c.cursor = p + 1 // past hi (or wrapped to 0), the range check above restarts at lo
			return p, nil
		}
	}
	return 0, fmt.Errorf("no free ephemeral host port for %s in %d-%d", b.Proto, lo, hi)
}

// free returns nil when port can serve every target of b, else the
// conflict: a mapping of another endpoint (or an earlier binding of this
// call) on an overlapping host address, or a socket of another process.
func (c *portChooser) free(b Binding, ts []target, port uint16) error {
	for _, t := range ts {
		// NodePorts answer on every address but loopback.
		if c.nodePort == nil || t.hostIP.IsValid() && t.hostIP.IsLoopback() {
			continue
		}
		if svc := c.nodePort(b.Proto, port); svc != "" {
			return &PortConflictError{Proto: b.Proto, HostIP: displayHostIP(t), Port: port, Service: svc}
		}
	}
	for _, t := range ts {
		k := portKey{b.Proto, familyOf(t.containerIP), port}
		for _, h := range c.published[k] {
			if !h.hostIP.IsValid() || !t.hostIP.IsValid() || h.hostIP == t.hostIP {
				return &PortConflictError{Proto: b.Proto, HostIP: displayHostIP(t), Port: port, EndpointID: h.endpointID}
			}
		}
	}
	for _, t := range ts {
		if c.inUse != nil && c.inUse(b.Proto, displayHostIP(t), port) {
			return &PortConflictError{Proto: b.Proto, HostIP: displayHostIP(t), Port: port}
		}
	}
	return nil
}

// displayHostIP is the address a conflict is reported on and PortInUse is
// asked about: the host IP, or the family's unspecified address.
func displayHostIP(t target) netip.Addr {
	if t.hostIP.IsValid() {
		return t.hostIP
	}
	if t.containerIP.Is4() {
		return netip.IPv4Unspecified()
	}
	return netip.IPv6Unspecified()
}

// previousPort is the host port an equivalent binding got last time.
func previousPort(b Binding, ts []target, previous []Mapping) (uint16, bool) {
	for _, m := range previous {
		if m.Proto == b.Proto && m.ContainerPort == b.ContainerPort && m.HostIP == ts[0].hostIP &&
			familyOf(m.ContainerIP) == familyOf(ts[0].containerIP) {
			return m.HostPort, true
		}
	}
	return 0, false
}
