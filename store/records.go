package store

import (
	"net/netip"
	"time"
)

// Host is the persistent record of a podnetd host. It never hangs on a
// lease: a host that is down is still known (its blocks stay reserved).
type Host struct {
	Name string `json:"name"`
	// Underlay is the address other hosts reach this one at; Network
	// is its subnet and Gateway the router of the host's default route
	// (what no service may take as an external IP, with Underlay).
	Underlay netip.Addr   `json:"underlay,omitzero"`
	Network  netip.Prefix `json:"network,omitzero"`
	Gateway  netip.Addr   `json:"gateway,omitzero"`
	Since    time.Time    `json:"since"`
	// WireGuard is set by a host running with --encryption wireguard: its
	// public key and listening port (the endpoint is Underlay:Port). A
	// new field: podnetds before it ignore it, and write records without
	// it only for themselves.
	WireGuard *HostWireGuard `json:"wireguard,omitempty"`
}

// Same reports whether h and o say the same (Since aside): what a host
// checks of its own record, writing it back when someone changed it.
func (h Host) Same(o Host) bool {
	if h.Name != o.Name || h.Underlay != o.Underlay || h.Network != o.Network || h.Gateway != o.Gateway ||
		(h.WireGuard == nil) != (o.WireGuard == nil) {
		return false
	}
	return h.WireGuard == nil || *h.WireGuard == *o.WireGuard
}

// HostWireGuard is a host's WireGuard identity. The private key never
// leaves the host.
type HostWireGuard struct {
	// PublicKey is the base64 public key (as `wg show` prints it).
	PublicKey string `json:"publicKey"`
	Port      int    `json:"port"`
}

// Encryption modes of a cluster (podnetd --encryption).
const (
	EncryptionNone      = "none"
	EncryptionWireGuard = "wireguard"
)

// Encryption is the cluster's encryption between hosts. The first podnetd
// records its --encryption; every later one must agree or refuse to start.
// `podnetctl encryption set` changes it for a rolling switch (each podnetd
// is then restarted with the new mode).
type Encryption struct {
	Mode string `json:"mode"`
	// Host is the podnetd (or "podnetctl") that recorded it.
	Host  string    `json:"host"`
	Since time.Time `json:"since"`
}

// HostAlive is the leased record that says a host is up.
type HostAlive struct {
	Name    string    `json:"name"`
	Started time.Time `json:"started"`
	Version string    `json:"version,omitempty"`
	// Holder is the podnetd process that holds the host name (holder.go).
	Holder *Holder `json:"holder,omitempty"`
	// IPAMLayout is the IPAM key layout this host's podnetd keeps
	// (IPAMLayoutExceptions); older podnetds leave it 0.
	IPAMLayout int `json:"ipamLayout,omitempty"`
	// MetaLayout says which indexes of its containers' metadata this
	// host's podnetd keeps: MetaLayoutNames (the cluster DNS's,
	// dnsindex.go), MetaLayoutSelected (that and the selection index,
	// selindex.go); older podnetds leave it 0.
	MetaLayout int `json:"metaLayout,omitempty"`
}

// Pool is an address pool. Its identity is its subnet.
type Pool struct {
	Subnet netip.Prefix `json:"subnet"`
	// IPRange restricts dynamic allocation (docker --ip-range); zero = all.
	IPRange netip.Prefix `json:"ipRange,omitzero"`
	V6      bool         `json:"v6,omitempty"`
	// BlockBits is the prefix length of the blocks hosts claim.
	BlockBits int `json:"blockBits"`
	// Auto is true when podnet chose the subnet (no --subnet given).
	Auto bool `json:"auto,omitempty"`
	// Gateway is the pool's anycast gateway address (plain IP) once a host
	// requested one; every host of the network must use the same.
	Gateway netip.Addr `json:"gateway,omitzero"`
	Created time.Time  `json:"created"`
}

// PoolRef records that a host's Docker network uses a pool.
type PoolRef struct {
	Host  string    `json:"host"`
	Since time.Time `json:"since"`
}

// Block is a block of a pool claimed by one host.
type Block struct {
	Host    string    `json:"host"`
	Claimed time.Time `json:"claimed"`
}

// Address kinds.
const (
	AddrContainer = "container"
	AddrGateway   = "gateway"
	AddrAux       = "aux"
	// AddrTunnel is a host's own address in a multi-host pool (one per
	// host and pool): the source of service traffic it sends to endpoints
	// on other hosts, routed back to it like its containers' addresses.
	AddrTunnel = "tunnel"
)

// Address is an allocated address and who owns it.
type Address struct {
	IP   netip.Addr `json:"ip"`
	Kind string     `json:"kind"`
	// Host allocated a container address; Endpoint is filled in when the
	// Docker endpoint using it is created.
	Host     string `json:"host,omitempty"`
	Endpoint string `json:"endpoint,omitempty"`
	// Hosts reference a gateway or aux address (every host of a network
	// requests the same gateway).
	Hosts []string  `json:"hosts,omitempty"`
	Name  string    `json:"name,omitempty"`
	Since time.Time `json:"since"`
}

// LogicalNetwork is the cross-host definition of a network, keyed by its
// first pool: every host that creates a Docker network on that subnet must
// agree with it.
type LogicalNetwork struct {
	// Name is set when an operator defined the network with `podnetctl
	// network create`: every podnetd then creates a Docker network of that
	// name on its host, and the definition outlives the Docker networks.
	Name    string            `json:"name,omitempty"`
	Subnets []netip.Prefix    `json:"subnets"`
	Mode    string            `json:"mode"`
	MTU     int               `json:"mtu,omitempty"`
	VNI     int               `json:"vni,omitempty"`
	Options map[string]string `json:"options,omitempty"`
	// Gateways (plain IPs) and IPRanges per subnet, and Internal, for the
	// Docker networks podnetd creates from a named definition.
	Gateways map[netip.Prefix]netip.Addr   `json:"gateways,omitempty"`
	IPRanges map[netip.Prefix]netip.Prefix `json:"ipRanges,omitempty"`
	Internal bool                          `json:"internal,omitempty"`
	IPv6     bool                          `json:"ipv6,omitempty"`
	// Parents overrides the parent interface (option "parent") per host
	// name for macvlan and ipvlan networks whose parent is named
	// differently on some hosts.
	Parents map[string]string `json:"parents,omitempty"`
	// Deleting is set by `podnetctl network rm`: every podnetd removes its
	// Docker network, and the last one deletes the definition.
	Deleting bool      `json:"deleting,omitempty"`
	Created  time.Time `json:"created"`
}

// VNIClaim reserves a VXLAN network identifier for one logical network.
type VNIClaim struct {
	Pool netip.Prefix `json:"pool"`
}

// Subnet is one IPAM subnet of a Docker network.
type Subnet struct {
	Pool netip.Prefix `json:"pool"`
	// Gateway is the gateway address with the pool's mask, as IPAM
	// returned it (10.1.0.1/16); zero if none.
	Gateway netip.Prefix `json:"gateway,omitzero"`
}

// Network is one Docker network on one host.
type Network struct {
	ID   string `json:"id"`
	Host string `json:"host"`
	Mode string `json:"mode"`
	// Bridge is the host-side interface the network's containers sit
	// behind: the bridge, or a macvlan/ipvlan network's host-access shim.
	Bridge     string            `json:"bridge,omitempty"`
	IPv4       []Subnet          `json:"ipv4,omitempty"`
	IPv6       []Subnet          `json:"ipv6,omitempty"`
	MTU        int               `json:"mtu"`
	Internal   bool              `json:"internal,omitempty"`
	Masquerade bool              `json:"masquerade"`
	VNI        int               `json:"vni,omitempty"`
	Options    map[string]string `json:"options,omitempty"`
	// HostAccess is the address of a macvlan/ipvlan network's host-access
	// shim on this host with the pool's mask (192.168.1.5/24), allocated
	// from the network's pool; zero if none.
	HostAccess netip.Prefix `json:"hostAccess,omitzero"`
	Created    time.Time    `json:"created"`
}

// VLANLink records an 802.1q sub-interface podnet created as the parent of
// macvlan/ipvlan networks. It is written before the link is created, so a
// crash never leaves a link podnet made without a record saying so, and
// podnet never deletes a VLAN link it did not create.
type VLANLink struct {
	Name    string    `json:"name"`
	Parent  string    `json:"parent"`
	VID     int       `json:"vid"`
	Created time.Time `json:"created"`
}

// Subnets returns every subnet of the network, IPv4 first, in a new slice.
func (n *Network) Subnets() []Subnet {
	out := make([]Subnet, 0, len(n.IPv4)+len(n.IPv6))
	return append(append(out, n.IPv4...), n.IPv6...)
}

// Pools returns the pool of every subnet of the network, IPv4 first.
func (n *Network) Pools() []netip.Prefix {
	subs := n.Subnets()
	out := make([]netip.Prefix, len(subs))
	for i, s := range subs {
		out[i] = s.Pool
	}
	return out
}

// PortMapping is one published port as programmed (host port chosen).
type PortMapping struct {
	Proto         string     `json:"proto"`           // tcp, udp, sctp
	HostIP        netip.Addr `json:"hostIP,omitzero"` // zero: every address
	HostPort      uint16     `json:"hostPort"`
	ContainerIP   netip.Addr `json:"containerIP"`
	ContainerPort uint16     `json:"containerPort"`
}

// Endpoint is one Docker endpoint on one host.
type Endpoint struct {
	ID      string `json:"id"`
	Network string `json:"network"`
	Host    string `json:"host"`
	// IPv4 and IPv6 are the endpoint's addresses with the subnet's mask
	// (10.1.0.7/16), as Docker gave them; zero if none.
	IPv4     netip.Prefix `json:"ipv4,omitzero"`
	IPv6     netip.Prefix `json:"ipv6,omitzero"`
	MAC      string       `json:"mac,omitempty"`
	HostVeth string       `json:"hostVeth,omitempty"`
	PeerVeth string       `json:"peerVeth,omitempty"`
	// Ports are the published ports (docker run -p) as programmed.
	Ports []PortMapping `json:"ports,omitempty"`
	// CNI is set when a CNI runtime (podman, containerd, a kubelet) made
	// the endpoint through podnet's CNI plugin instead of Docker: Docker
	// knows nothing of it, so Docker's garbage collection and watcher leave
	// it alone.
	CNI     *CNIAttachment `json:"cni,omitempty"`
	Created time.Time      `json:"created"`
}

// CNIAttachment identifies an endpoint the way CNI does: the network
// configuration's name, the container and the interface name inside it.
type CNIAttachment struct {
	Network     string `json:"network"`
	ContainerID string `json:"containerID"`
	IfName      string `json:"ifname"`
	// NetNS is the namespace path the runtime gave (for the operator).
	NetNS string `json:"netns,omitempty"`
}

// EndpointMeta is what Docker knows about an endpoint's container, written
// asynchronously by the Docker watcher (never by a plugin request, which
// may not call Docker). It lives in its own key so that the watcher and the
// driver never overwrite each other's writes; the driver deletes it with
// the endpoint.
type EndpointMeta struct {
	Endpoint  string `json:"endpoint"`
	Network   string `json:"network"`
	Container string `json:"container"`
	// Name is the container name; Aliases its network aliases.
	Name    string            `json:"name"`
	Aliases []string          `json:"aliases,omitempty"`
	Labels  map[string]string `json:"labels,omitempty"`
	IPv4    netip.Addr        `json:"ipv4,omitzero"`
	IPv6    netip.Addr        `json:"ipv6,omitzero"`
	// Ready is true while the container runs and is not unhealthy (a
	// container without a health check is ready when running).
	Ready bool `json:"ready"`
	// Runtime is "" for Docker's endpoints (written by the Docker
	// watcher) and RuntimeCNI for CNI attachments (written by podnetd at
	// ADD and by the watcher of a CNI runtime's engine): each writer
	// leaves the other's records alone.
	Runtime string    `json:"runtime,omitempty"`
	Updated time.Time `json:"updated"`
}

// RuntimeCNI marks the metadata of a CNI attachment (EndpointMeta.Runtime).
const RuntimeCNI = "cni"

// ReservedAddrs calls add with each address of host h that no service
// may take as an external IP, and why: its underlay address and gateway,
// its underlay network's own and broadcast addresses.
func (h Host) ReservedAddrs(add func(a netip.Addr, why string)) {
	put := func(a netip.Addr, why string) {
		if a = a.Unmap(); a.IsValid() {
			add(a, why)
		}
	}
	put(h.Underlay, "the underlay address of host "+h.Name)
	put(h.Gateway, "the underlay gateway of host "+h.Name)
	if n := h.Network.Masked(); n.IsValid() && n.Addr().Is4() && n.Bits() < 31 {
		b := n.Addr().As4()
		for i := n.Bits(); i < 32; i++ {
			b[i/8] |= 0x80 >> (i % 8)
		}
		put(n.Addr(), "the address of host "+h.Name+"'s underlay network "+n.String())
		put(netip.AddrFrom4(b), "the broadcast address of host "+h.Name+"'s underlay network "+n.String())
	}
}
