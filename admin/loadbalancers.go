package admin

import "time"

// Kinds of the objects `podnetctl apply -f` takes. An object without a
// kind is a service.
const (
	KindService          = "Service"
	KindNetworkPolicy    = "NetworkPolicy"
	KindLoadBalancerPool = "LoadBalancerPool"
	KindBGPPeer          = "BGPPeer"
)

// LoadBalancerStatus is where a LoadBalancer service's address lives.
type LoadBalancerStatus struct {
	IP   string `json:"ip" yaml:"ip"`
	Pool string `json:"pool,omitempty" yaml:"pool,omitempty"`
	// Mode is the pool's: L2 or BGP.
	Mode string `json:"mode,omitempty" yaml:"mode,omitempty"`
	// Announcers are the hosts announcing the address: the one answering
	// ARP/NDP (L2), or those announcing a route to it (BGP). Empty when
	// none does (no host eligible, e.g. no ready local endpoint with
	// externalTrafficPolicy Local).
	Announcers []string `json:"announcers" yaml:"announcers"`
}

// LBPoolSpec is a pool of LoadBalancer addresses as the operator writes
// it (kind: LoadBalancerPool in `podnetctl apply -f` files).
type LBPoolSpec struct {
	Kind  string   `json:"kind" yaml:"kind"`
	Name  string   `json:"name" yaml:"name"`
	CIDRs []string `json:"cidrs" yaml:"cidrs"`
	// Mode is L2 (default: one host answers ARP/NDP for each address) or
	// BGP (hosts announce routes to BGPPeers).
	Mode string `json:"mode,omitempty" yaml:"mode,omitempty"`
}

// LBPoolView is a pool as podnetctl shows it; `-o yaml` applies back.
type LBPoolView struct {
	LBPoolSpec `yaml:",inline"`
	Status     *LBPoolStatus `json:"status,omitempty" yaml:"status,omitempty"`
}

// LBPoolStatus is a pool's use.
type LBPoolStatus struct {
	Created time.Time `json:"created" yaml:"created"`
	Updated time.Time `json:"updated" yaml:"updated"`
	// Size counts the addresses services may get (capped at 2^63).
	Size uint64 `json:"size" yaml:"size"`
	// Used lists the addresses services hold, by address.
	Used []LBAddressUse `json:"used" yaml:"used"`
}

// LBAddressUse is one address of a pool and the service holding it.
type LBAddressUse struct {
	IP      string `json:"ip" yaml:"ip"`
	Service string `json:"service" yaml:"service"`
}

// BGPPeerSpec is a router as the operator writes it (kind: BGPPeer).
// ASNs are plain integers so that a bad one reaches the validator.
type BGPPeerSpec struct {
	Kind        string `json:"kind" yaml:"kind"`
	Name        string `json:"name" yaml:"name"`
	PeerAddress string `json:"peerAddress" yaml:"peerAddress"`
	PeerASN     int64  `json:"peerASN" yaml:"peerASN"`
	MyASN       int64  `json:"myASN" yaml:"myASN"`
	// Hosts are the hosts that speak to this peer (default: every host).
	Hosts []string `json:"hosts,omitempty" yaml:"hosts,omitempty"`
	// HoldTime is a duration ("90s", the default; 0 or 3s..65535s).
	HoldTime string `json:"holdTime,omitempty" yaml:"holdTime,omitempty"`
	// Password is the TCP MD5 key (RFC 2385) the router expects, if any.
	Password string `json:"password,omitempty" yaml:"password,omitempty"`
}

// BGPPeerView is a peer as podnetctl shows it, with each host's session.
type BGPPeerView struct {
	BGPPeerSpec `yaml:",inline"`
	Status      *BGPPeerStatus `json:"status,omitempty" yaml:"status,omitempty"`
}

// BGPPeerStatus is a peer's sessions.
type BGPPeerStatus struct {
	Created  time.Time        `json:"created" yaml:"created"`
	Updated  time.Time        `json:"updated" yaml:"updated"`
	Sessions []BGPSessionView `json:"sessions" yaml:"sessions"`
}

// BGPSessionView is one host's session with one peer.
type BGPSessionView struct {
	Host    string `json:"host" yaml:"host"`
	Peer    string `json:"peer" yaml:"peer"`
	Address string `json:"address" yaml:"address"`
	// State is the BGP FSM state (Established when routes flow).
	State string    `json:"state" yaml:"state"`
	Since time.Time `json:"since,omitzero" yaml:"since,omitempty"`
	// Routes counts the routes the host sends this peer.
	Routes int `json:"routes" yaml:"routes"`
}

// BGPHostView is GET /v1/bgp: one host's announcer, its sessions and the
// addresses it announces.
type BGPHostView struct {
	Host      string           `json:"host" yaml:"host"`
	Interface string           `json:"interface,omitempty" yaml:"interface,omitempty"`
	Sessions  []BGPSessionView `json:"sessions" yaml:"sessions"`
	Announced []string         `json:"announced" yaml:"announced"`
	// L2 are the addresses the host answers ARP/NDP for.
	L2      []string  `json:"l2" yaml:"l2"`
	Updated time.Time `json:"updated" yaml:"updated"`
}
