package admin

import (
	"net/netip"
	"time"
)

// The admin API's wire types, shared by podnetd and podnetctl. Addresses
// and prefixes are netip values, whose JSON is their text form; the JSON
// of the types mirroring etcd records (Network, Endpoint) is the records'
// own, so `podnetctl -o json` shows what etcd holds.

// Status is GET /v1/status.
type Status struct {
	Host          string    `json:"host"`
	Version       string    `json:"version"`
	Started       time.Time `json:"started"`
	Ready         bool      `json:"ready"`
	EtcdEndpoints []string  `json:"etcdEndpoints"`
	EtcdEmbedded  bool      `json:"etcdEmbedded"`
	EtcdHealthy   bool      `json:"etcdHealthy"`
	EtcdError     string    `json:"etcdError,omitempty"`
	PluginSocket  string    `json:"pluginSocket"`
	Modes         []string  `json:"modes"`
	Networks      int       `json:"networks"`
	Endpoints     int       `json:"endpoints"`
}

// GCReport is POST /v1/gc: what one garbage collection removed.
type GCReport struct {
	Endpoints []string       `json:"endpoints"`
	Networks  []string       `json:"networks"`
	Links     []string       `json:"links"`
	Addresses []netip.Addr   `json:"addresses"`
	Pools     []netip.Prefix `json:"pools"`
}

// Network is one element of GET /v1/networks: a podnet Docker network on
// this host.
type Network struct {
	ID         string            `json:"id"`
	Host       string            `json:"host"`
	Mode       string            `json:"mode"`
	Bridge     string            `json:"bridge,omitempty"`
	IPv4       []Subnet          `json:"ipv4,omitempty"`
	IPv6       []Subnet          `json:"ipv6,omitempty"`
	MTU        int               `json:"mtu"`
	Internal   bool              `json:"internal,omitempty"`
	Masquerade bool              `json:"masquerade"`
	VNI        int               `json:"vni,omitempty"`
	Options    map[string]string `json:"options,omitempty"`
	Created    time.Time         `json:"created"`
}

// Subnet is one subnet of a Network.
type Subnet struct {
	Pool netip.Prefix `json:"pool"`
	// Gateway is the gateway address with the pool's mask; zero if none.
	Gateway netip.Prefix `json:"gateway,omitzero"`
}

// Endpoint is one element of GET /v1/endpoints: a podnet endpoint on this
// host.
type Endpoint struct {
	ID       string        `json:"id"`
	Network  string        `json:"network"`
	Host     string        `json:"host"`
	IPv4     netip.Prefix  `json:"ipv4,omitzero"` // address with the subnet's mask
	IPv6     netip.Prefix  `json:"ipv6,omitzero"`
	MAC      string        `json:"mac,omitempty"`
	HostVeth string        `json:"hostVeth,omitempty"`
	PeerVeth string        `json:"peerVeth,omitempty"`
	Ports    []PortMapping `json:"ports,omitempty"`
	// CNI is set for an endpoint a CNI runtime made (podman, a kubelet).
	CNI     *CNIAttachment `json:"cni,omitempty"`
	Created time.Time      `json:"created"`
}

// CNIAttachment names a CNI runtime's endpoint as CNI does.
type CNIAttachment struct {
	Network     string `json:"network"`
	ContainerID string `json:"containerID"`
	IfName      string `json:"ifname"`
	NetNS       string `json:"netns,omitempty"`
}

// PortMapping is one published port of an Endpoint, as programmed.
type PortMapping struct {
	Proto         string     `json:"proto"`           // tcp, udp, sctp
	HostIP        netip.Addr `json:"hostIP,omitzero"` // zero: every address
	HostPort      uint16     `json:"hostPort"`
	ContainerIP   netip.Addr `json:"containerIP"`
	ContainerPort uint16     `json:"containerPort"`
}

// Pool is one element of GET /v1/pools: an address pool (cluster-wide).
type Pool struct {
	Pool    netip.Prefix `json:"pool"`
	IPRange netip.Prefix `json:"ipRange,omitzero"`
	V6      bool         `json:"v6"`
	Auto    bool         `json:"auto"`
	Gateway netip.Addr   `json:"gateway,omitzero"`
	// Hosts reference the pool (a Docker network uses it there).
	Hosts  []string `json:"hosts"`
	Blocks []Block  `json:"blocks"`
	// Allocated counts every address key: containers, aux, gateway.
	Allocated int       `json:"allocated"`
	Created   time.Time `json:"created"`
}

// Block is one claimed block of a Pool.
type Block struct {
	CIDR netip.Prefix `json:"cidr"`
	Host string       `json:"host"`
	// Used counts the addresses allocated inside the block, whoever owns
	// them.
	Used int `json:"used"`
}

// NetworkSpec is POST /v1/cluster/networks: a network to define once for
// the whole cluster (podnetctl network create). Values are as the user
// typed them: podnetd validates them (package netspec) and names what is
// wrong. Mode, MTU and VNI may also be given as Options (mode, mtu,
// podnet.vni); both ways must agree.
type NetworkSpec struct {
	Name     string            `json:"name"`
	Mode     string            `json:"mode"`
	Subnets  []string          `json:"subnets"`
	Gateways map[string]string `json:"gateways,omitempty"` // subnet -> gateway IP
	IPRanges map[string]string `json:"ipRanges,omitempty"` // subnet -> range CIDR
	MTU      int               `json:"mtu,omitempty"`
	VNI      int               `json:"vni,omitempty"`
	Options  map[string]string `json:"options,omitempty"`
	Internal bool              `json:"internal,omitempty"`
	// Parent is a macvlan/ipvlan network's parent interface (the same as
	// -o parent=IFACE) on every host but those Parents (host → interface)
	// name otherwise.
	Parent  string            `json:"parent,omitempty"`
	Parents map[string]string `json:"parents,omitempty"`
}

// NetworkStatus is one element of GET /v1/cluster/networks (and the answer
// to POST): a cluster-wide network definition and where it exists.
type NetworkStatus struct {
	// Name is set for networks defined with podnetctl network create.
	Name    string            `json:"name,omitempty"`
	Subnets []netip.Prefix    `json:"subnets"`
	Mode    string            `json:"mode"`
	MTU     int               `json:"mtu,omitempty"`
	VNI     int               `json:"vni,omitempty"`
	Options map[string]string `json:"options,omitempty"`
	// Parents are a macvlan/ipvlan network's per-host parents (host →
	// interface), where a host's differs from Options' parent.
	Parents  map[string]string             `json:"parents,omitempty"`
	Gateways map[netip.Prefix]netip.Addr   `json:"gateways,omitempty"`
	IPRanges map[netip.Prefix]netip.Prefix `json:"ipRanges,omitempty"`
	Internal bool                          `json:"internal,omitempty"`
	IPv6     bool                          `json:"ipv6,omitempty"`
	// Deleting: podnetctl network rm is removing it from every host.
	Deleting bool      `json:"deleting,omitempty"`
	Created  time.Time `json:"created"`
	// Hosts maps a host to its Docker network ID for this definition.
	Hosts map[string]string `json:"hosts"`
	// Missing lists live hosts that do not have it (yet).
	Missing []string `json:"missing,omitempty"`
}

// HostStatus is one element of GET /v1/cluster/hosts.
type HostStatus struct {
	Name      string         `json:"name"`
	Underlay  netip.Addr     `json:"underlay"`
	Alive     bool           `json:"alive"`
	Started   time.Time      `json:"started,omitzero"`
	Version   string         `json:"version,omitempty"`
	Blocks    []netip.Prefix `json:"blocks"`
	Endpoints int            `json:"endpoints"`
	// Encryption is what the host's record says it runs: "wireguard"
	// (with its public key, the key's fingerprint and its WireGuard
	// port) or "none".
	Encryption     string `json:"encryption"`
	PublicKey      string `json:"publicKey,omitempty"`
	KeyFingerprint string `json:"keyFingerprint,omitempty"`
	WireGuardPort  int    `json:"wireguardPort,omitempty"`
}

// Encryption is GET /v1/cluster/encryption, and the body of POST (Mode
// only): the cluster's encryption between hosts and, for GET, each host's.
type Encryption struct {
	Mode       string            `json:"mode"`
	RecordedBy string            `json:"recordedBy,omitempty"`
	Since      time.Time         `json:"since,omitzero"`
	Hosts      map[string]string `json:"hosts,omitempty"` // host → the mode its record says it runs
}
