package store

import (
	"encoding/hex"
	"net/netip"
	"strings"
	"time"
)

// Keys of LoadBalancer services, relative to the prefix. Like the rest of
// the layout they are an on-disk format shared by every host: never
// rename one without a migration.
//
//	lbpools/<name>         LBPool          an operator's pool of LoadBalancer addresses (apply -f)
//	bgppeers/<name>        BGPPeer         a router the hosts speak BGP to (apply -f)
//	lbips/<hex ip>         LBIPClaim       a LoadBalancer address taken by a service
//	lbl2/<hex ip>          L2Claim         the host answering ARP/NDP for an L2 address (leased)
//	lbspeakers/<host>      LBSpeaker       a host's announcer: up, its BGP sessions and routes (leased)
//
// lbips claims follow the rules of svcips (created, changed and deleted
// in the service's own transactions). lbl2 and lbspeakers are liveness
// facts: they hang on the announcer's lease of each host, which is
// shorter than the host's liveness lease, so that an address moves to
// another host within a few seconds of its announcer going away.

// LBPoolsPrefix lists every LoadBalancer pool.
const LBPoolsPrefix = "lbpools/"

// LBPoolKey is one pool.
func LBPoolKey(name string) string { return LBPoolsPrefix + name }

// BGPPeersPrefix lists every BGP peer.
const BGPPeersPrefix = "bgppeers/"

// BGPPeerKey is one peer.
func BGPPeerKey(name string) string { return BGPPeersPrefix + name }

// LBIPsPrefix lists every taken LoadBalancer address.
const LBIPsPrefix = "lbips/"

// LBIPKey is the claim of one LoadBalancer address.
func LBIPKey(a netip.Addr) string { return LBIPsPrefix + AddrName(a) }

// L2ClaimsPrefix lists the L2 announcements.
const L2ClaimsPrefix = "lbl2/"

// L2ClaimKey is the announcement of one L2 address.
func L2ClaimKey(a netip.Addr) string { return L2ClaimsPrefix + AddrName(a) }

// LBSpeakersPrefix lists the hosts' announcers.
const LBSpeakersPrefix = "lbspeakers/"

// LBSpeakerKey is one host's announcer.
func LBSpeakerKey(host string) string { return LBSpeakersPrefix + host }

// AddrOfKey reads the address a "<prefix><hex ip>" key names (lbips/,
// lbl2/, svcips/).
func AddrOfKey(key, prefix string) (netip.Addr, bool) {
	name, ok := strings.CutPrefix(key, prefix)
	if !ok {
		return netip.Addr{}, false
	}
	return ParseAddrName(name)
}

// ParseAddrName reverses AddrName.
func ParseAddrName(name string) (netip.Addr, bool) {
	b, err := hex.DecodeString(name)
	if err != nil || (len(b) != 4 && len(b) != 16) {
		return netip.Addr{}, false
	}
	return netip.AddrFromSlice(b)
}

// Announcement modes of a pool.
const (
	LBModeL2  = "L2"
	LBModeBGP = "BGP"
)

// ServiceTypeLoadBalancer is a service with an address from a pool,
// announced to the LAN or to routers (Kubernetes' spelling).
const ServiceTypeLoadBalancer = "LoadBalancer"

// LBPool is a pool of LoadBalancer addresses, as validated: CIDRs masked
// and sorted, Mode L2 or BGP.
type LBPool struct {
	Name    string         `json:"name"`
	CIDRs   []netip.Prefix `json:"cidrs"`
	Mode    string         `json:"mode"`
	Created time.Time      `json:"created"`
	Updated time.Time      `json:"updated"`
}

// Contains reports whether a lies in one of the pool's CIDRs.
func (p LBPool) Contains(a netip.Addr) bool {
	for _, c := range p.CIDRs {
		if c.Contains(a) {
			return true
		}
	}
	return false
}

// BGPPeer is a router, as validated. Hosts empty means every host.
type BGPPeer struct {
	Name        string     `json:"name"`
	PeerAddress netip.Addr `json:"peerAddress"`
	PeerASN     uint32     `json:"peerASN"`
	MyASN       uint32     `json:"myASN"`
	Hosts       []string   `json:"hosts,omitempty"`
	// HoldTime in whole seconds: 0 (no keepalives) or 3..65535.
	HoldTime int `json:"holdTimeSeconds"`
	// Password is the TCP MD5 signature key (RFC 2385), if any.
	Password string    `json:"password,omitempty"`
	Created  time.Time `json:"created"`
	Updated  time.Time `json:"updated"`
}

// Selects reports whether host speaks to this peer.
func (p BGPPeer) Selects(host string) bool {
	if len(p.Hosts) == 0 {
		return true
	}
	for _, h := range p.Hosts {
		if h == host {
			return true
		}
	}
	return false
}

// LBIPClaim reserves a LoadBalancer address for one service.
type LBIPClaim struct {
	Service string `json:"service"`
	Pool    string `json:"pool"`
}

// L2Claim says which host answers ARP/NDP for an address of an L2 pool.
// It is bound to that host's announcer lease.
type L2Claim struct {
	Host    string    `json:"host"`
	Service string    `json:"service"`
	Since   time.Time `json:"since"`
	// Lease is the announcer lease the claim is bound to: a host that had
	// to take a new lease (its old one expired while etcd was out of
	// reach) binds the claims it still holds to the new one.
	Lease LeaseID `json:"lease"`
}

// LBSpeaker is a host's announcer record, bound to its announcer lease:
// its existence says the host can take L2 addresses (on Interface), and
// it carries the host's BGP sessions and the routes it announces, for
// `podnetctl bgp` and `service get`.
type LBSpeaker struct {
	Host string `json:"host"`
	// Interface is where the host answers ARP/NDP for L2 addresses.
	Interface string       `json:"interface,omitempty"`
	Sessions  []BGPSession `json:"sessions,omitempty"`
	// Announced are the addresses this host announces over BGP (a /32 or
	// /128 each), sorted.
	Announced []netip.Addr `json:"announced,omitempty"`
	Since     time.Time    `json:"since"`
	Updated   time.Time    `json:"updated"`
}

// BGPSession is one BGP session of a host.
type BGPSession struct {
	Peer    string     `json:"peer"`
	Address netip.Addr `json:"address"`
	// State is the BGP FSM state: Idle, Connect, Active, OpenSent,
	// OpenConfirm or Established.
	State string `json:"state"`
	// Since is when the session entered State (zero when unknown).
	Since time.Time `json:"since,omitzero"`
	// Routes counts the routes sent to this peer.
	Routes int `json:"routes"`
}
