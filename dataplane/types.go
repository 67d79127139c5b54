package dataplane

import (
	"log/slog"
	"net/netip"
)

// Proto is a transport protocol of a published port.
type Proto string

// Protocols podnet publishes.
const (
	TCP  Proto = "tcp"
	UDP  Proto = "udp"
	SCTP Proto = "sctp"
)

// Network is what the engine needs to know about one podnet network on
// this host to masquerade, isolate and hairpin its traffic.
type Network struct {
	// ID is the Docker network ID (used in logs and rule comments).
	ID string
	// Bridge is the host interface the network's containers sit behind
	// (e.g. "pn-0123456789ab"). It always starts with Options.BridgePrefix.
	Bridge string
	// Subnets are the network's IPv4 and IPv6 subnets.
	Subnets []netip.Prefix
	// Masquerade NATs traffic from Subnets to destinations outside every
	// podnet subnet (pod-to-pod traffic is never masqueraded).
	Masquerade bool
	// Internal forbids any traffic between Bridge and other interfaces
	// except Uplink.
	Internal bool
	// Uplink is the interface that carries the network to other hosts
	// (its VXLAN device), or "" for a single-host network. Traffic between
	// Bridge and Uplink is the network talking to itself: an Internal
	// multi-host network keeps it.
	Uplink string
	// TunnelAddrs are this host's own addresses in Subnets (at most one
	// per subnet, reserved in IPAM, routed to this host by every other
	// host): the source address of service traffic this host sends to an
	// endpoint on another host when the client's own address could not be
	// routed back here (host processes, NodePort and external-IP clients).
	// See "Services across hosts" in the package doc.
	TunnelAddrs []netip.Addr
	// LAN marks a macvlan/ipvlan network: its containers sit on a LAN
	// segment and Bridge is the host's shim onto it. They route through
	// the LAN, not through this host, so every DNATed connection sent
	// into Bridge — a published port's or a service's — is masqueraded
	// (or the container's reply would bypass the host and its NAT), and
	// Subnets are no pod subnets: traffic from other networks to them is
	// masqueraded like any outside destination, and the guard's
	// reverse-path check leaves their sources alone (the LAN's machines
	// legitimately send from them, on the parent).
	LAN bool
}

// Binding is one port binding as Docker asked for it (one entry of
// com.docker.network.portmap).
type Binding struct {
	Proto Proto
	// HostIP is the host address to publish on; the zero Addr means every
	// local address (IPv4 to the endpoint's IPv4 address and, if it has
	// one, IPv6 to its IPv6 address); 0.0.0.0 or :: mean every address of
	// that family only.
	HostIP netip.Addr
	// HostPort..HostPortEnd is the range to choose the host port from;
	// both zero means "any free ephemeral port" (docker run -p 80).
	HostPort, HostPortEnd uint16
	ContainerPort         uint16
}

// Mapping is one published port as programmed: the host port is chosen.
type Mapping struct {
	Proto         Proto
	HostIP        netip.Addr // zero = every local address of ContainerIP's family
	HostPort      uint16
	ContainerIP   netip.Addr
	ContainerPort uint16
}

// EndpointPorts is the published ports of one endpoint (for Restore).
type EndpointPorts struct {
	EndpointID string
	NetworkID  string
	Mappings   []Mapping
}

// Options configures an Engine. Zero values select the defaults.
type Options struct {
	Logger *slog.Logger
	// Table is the nftables table (family inet) podnet owns. Default "podnet".
	// Never rename: upgrades find the old table by this name.
	Table string
	// BridgePrefix is the interface-name prefix of podnet bridges.
	// Default "pn-".
	BridgePrefix string
	// FilterChain is podnet's chain in the iptables filter table that
	// accepts podnet traffic; it is jumped to from DOCKER-USER (or FORWARD
	// when Docker's chains are absent). Default "PODNET-FORWARD".
	FilterChain string
	// IPTablesBackend is "auto" (default: the backend holding Docker's
	// DOCKER-USER chain, else the system default), "nft" or "legacy".
	IPTablesBackend string
	// EphemeralPorts is the range for "-p 80" host ports. Default: the
	// kernel's net.ipv4.ip_local_port_range.
	EphemeralPorts [2]uint16
	// PortInUse reports whether a host port is taken by something other
	// than podnet (a listening socket). hostIP is 0.0.0.0 or :: for a
	// wildcard binding. Default: try to bind it. Called with the engine's
	// lock held: keep it fast.
	PortInUse func(p Proto, hostIP netip.Addr, port uint16) bool
}
