package dataplane

import (
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// conntrackBackend deletes conntrack entries; faked in unit tests.
type conntrackBackend interface {
	// deleteFlows deletes the flows of the families for which match is
	// true and returns how many it deleted.
	deleteFlows(fams []family, match func(*netlink.ConntrackFlow) bool) (uint, error)
	// localAddrs returns the host's addresses (to tell flows to the host
	// from forwarded ones).
	localAddrs() (map[netip.Addr]bool, error)
	// flushFiltered deletes the entries matching f inside the kernel; it
	// fails with errNoFilteredFlush where the kernel cannot.
	flushFiltered(f ctFilter) error
}

// netlinkConntrack talks to nf_conntrack over netlink, in the calling
// thread's network namespace. The data plane owns conntrack cleanup because it
// owns the NAT that created the entries; this is the one netlink use
// outside nftables in the package.
type netlinkConntrack struct{}

var _ conntrackBackend = netlinkConntrack{}

type matchFunc func(*netlink.ConntrackFlow) bool

func (m matchFunc) MatchConntrackFlow(f *netlink.ConntrackFlow) bool { return m(f) }

// deleteFlows is `conntrack -D -f ipv4|ipv6` with a filter: it dumps the
// table and deletes the matching entries one by one (what the conntrack
// tool does too).
func (netlinkConntrack) deleteFlows(fams []family, match func(*netlink.ConntrackFlow) bool) (uint, error) {
	var total uint
	for _, f := range fams {
		inet := netlink.InetFamily(unix.AF_INET)
		if f == ipv6 {
			inet = netlink.InetFamily(unix.AF_INET6)
		}
		n, err := netlink.ConntrackDeleteFilters(netlink.ConntrackTable, inet, matchFunc(match))
		total += n
		if err != nil {
			return total, fmt.Errorf("delete conntrack entries (%s): %w", f.keyword(), err)
		}
	}
	return total, nil
}

// localAddrs is `ip addr show`: every address of every interface.
func (netlinkConntrack) localAddrs() (map[netip.Addr]bool, error) {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil, fmt.Errorf("list host addresses: %w", err)
	}
	out := map[netip.Addr]bool{}
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok {
			if ip, ok := netip.AddrFromSlice(ipn.IP); ok {
				out[ip.Unmap()] = true
			}
		}
	}
	return out, nil
}

func flowAddr(ip net.IP) netip.Addr {
	a, _ := netip.AddrFromSlice(ip)
	return a.Unmap()
}

// matchesMapping reports whether flow was NATed by m: it came in on m's
// host port (and host IP, if specific) and was sent to m's container.
// Unpublish deletes these so that a client's next packet (UDP keeps the
// 5-tuple for as long as it talks) is NATed afresh instead of following
// the stale entry to the old container.
func matchesMapping(flow *netlink.ConntrackFlow, m Mapping) bool {
	return flow.Forward.Protocol == protoNumber(m.Proto) &&
		flow.Forward.DstPort == m.HostPort &&
		(!m.HostIP.IsValid() || flowAddr(flow.Forward.DstIP) == m.HostIP) &&
		flowAddr(flow.Reverse.SrcIP) == m.ContainerIP &&
		flow.Reverse.SrcPort == m.ContainerPort
}

// staleForMapping reports whether flow targets m's host port on a host
// address but does not go to m's container: a flow that arrived while the
// port was unpublished (and was answered by the host, or not at all). For
// UDP such an entry outlives the new DNAT rule as long as the client keeps
// sending, so Publish deletes it.
func staleForMapping(flow *netlink.ConntrackFlow, m Mapping, local map[netip.Addr]bool) bool {
	dst := flowAddr(flow.Forward.DstIP)
	return flow.Forward.Protocol == protoNumber(m.Proto) &&
		flow.Forward.DstPort == m.HostPort &&
		(m.HostIP.IsValid() && dst == m.HostIP || !m.HostIP.IsValid() && local[dst]) &&
		familyOf(dst) == familyOf(m.ContainerIP) &&
		flowAddr(flow.Reverse.SrcIP) != m.ContainerIP
}

func mappingFamilies(ms []Mapping) []family {
	var has4, has6 bool
	for _, m := range ms {
		if m.ContainerIP.Is4() {
			has4 = true
		} else {
			has6 = true
		}
	}
	var out []family
	if has4 {
		out = append(out, ipv4)
	}
	if has6 {
		out = append(out, ipv6)
	}
	return out
}
