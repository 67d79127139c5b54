package store

import (
	"encoding/hex"
	"fmt"
	"net/netip"
	"strings"
)

// The whole key layout, relative to the prefix (default /podnet/v1/).
// These names are an on-disk format shared by every host of a cluster:
// never rename one without a migration.
//
//	hosts/<host>                          Host          persistent identity of a podnetd
//	alive/<host>                          HostAlive     liveness, bound to a lease
//	pools/<pool>                          Pool          an address pool, keyed by subnet
//	ipam/<pool>/refs/<host>               PoolRef       this host's Docker network uses the pool
//	ipam/<pool>/blocks/<block>            Block         a block of the pool claimed by one host
//	ipam/<pool>/addrs/<hex ip>            Address       an allocated address and its owner
//	ipam/<pool>/exc/<hex ip>              Exception     an address routed to its owner, not its block (exceptions.go)
//	lnets/<pool>                          LogicalNetwork the cross-host definition of a network
//	networks/<host>/<docker network id>   Network       one Docker network on one host
//	endpoints/<host>/<docker endpoint id> Endpoint      one Docker endpoint on one host
//	epmeta/<host>/<docker endpoint id>    EndpointMeta  its container's name, labels, readiness
//	dns/names/<label>/<host>/<endpoint>  DNSName      a ready endpoint answering to <label> (dnsindex.go)
//	dns/addrs/<hex ip>/<host>/<endpoint> DNSName      the same, by address (PTR)
//	sel/ep/<host>/<endpoint>             EndpointMeta a selected endpoint's metadata, a copy (selindex.go)
//	sel/ctr/<host>/<container>           ContainerMeta a selected host- or container-mode container's
//	vnis/<vni>                            VNIClaim      a VXLAN VNI taken by a logical network
//	vlans/<host>/<link name>              VLANLink      an 802.1q parent link podnet created on a host
//	schema                                SchemaRecord  the version of this layout (absent: 1; schema.go)
//	layout/ipam                           IPAMLayoutMark exception records migrated (exceptions.go)
//	layout/ipam6                          IPAMLayoutMark IPv6 pools' exception records checked again (exceptions.go)
//	encryption                            Encryption    the cluster's encryption between hosts (--encryption)
//
// <pool> and <block> are CIDRs with "/" written as "-" (10.1.0.0-16,
// fd00::-64). Address keys are the address in fixed-width hex so that
// a block's addresses are one contiguous key range.

// EncryptionKey holds the cluster's encryption mode (Encryption).
const EncryptionKey = "encryption"

// SchemaKey holds the schema version of everything under the prefix.
const SchemaKey = "schema"

// PoolName is the key form of a pool or block CIDR.
func PoolName(p netip.Prefix) string { return strings.Replace(p.Masked().String(), "/", "-", 1) }

// ParsePoolName reverses PoolName.
func ParsePoolName(s string) (netip.Prefix, error) {
	i := strings.LastIndex(s, "-")
	if i < 0 {
		return netip.ParsePrefix(s)
	}
	return netip.ParsePrefix(s[:i] + "/" + s[i+1:])
}

// PoolOfKey is the pool a pools/<pool> key names (masked). Everything
// that lists pools/ reads its keys with it.
func PoolOfKey(key string) (netip.Prefix, error) {
	name, ok := strings.CutPrefix(key, PoolsPrefix)
	if !ok {
		return netip.Prefix{}, fmt.Errorf("key %q is not under %s", key, PoolsPrefix)
	}
	p, err := ParsePoolName(name)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("key %q: %w", key, err)
	}
	return p.Masked(), nil
}

// AddrName is the key form of an address: fixed-width hex.
func AddrName(a netip.Addr) string { return hex.EncodeToString(a.AsSlice()) }

// HostKey is the persistent record of a host.
func HostKey(host string) string { return "hosts/" + host }

// HostsPrefix lists every host record.
const HostsPrefix = "hosts/"

// AliveKey is the leased liveness record of a host.
func AliveKey(host string) string { return "alive/" + host }

// AlivePrefix lists every live host.
const AlivePrefix = "alive/"

// AliveHost is the host an alive/<host> key names; false for anything
// else under the prefix.
func AliveHost(key string) (string, bool) {
	h, ok := strings.CutPrefix(key, AlivePrefix)
	return h, ok && h != "" && !strings.Contains(h, "/")
}

// SplitHostKey reads "<prefix><host>/<id>" (epmeta/<host>/<endpoint>,
// ctrmeta/<host>/<container>); false unless both parts are present and
// id holds no further "/".
func SplitHostKey(key, prefix string) (host, id string, ok bool) {
	rest, ok := strings.CutPrefix(key, prefix)
	if !ok {
		return "", "", false
	}
	host, id, ok = strings.Cut(rest, "/")
	if !ok || host == "" || id == "" || strings.Contains(id, "/") {
		return "", "", false
	}
	return host, id, true
}

// PoolsPrefix lists every pool record.
const PoolsPrefix = "pools/"

// PoolKey is the record of a pool.
func PoolKey(p netip.Prefix) string { return PoolsPrefix + PoolName(p) }

// IPAMPrefix holds everything that belongs to a pool besides its record.
func IPAMPrefix(p netip.Prefix) string { return "ipam/" + PoolName(p) + "/" }

// PoolRefsPrefix lists the hosts that use a pool.
func PoolRefsPrefix(p netip.Prefix) string { return IPAMPrefix(p) + KindRef + "/" }

// PoolRefKey is one host's use of a pool.
func PoolRefKey(p netip.Prefix, host string) string { return PoolRefsPrefix(p) + host }

// The kinds of keys under ipam/<pool>/ (the middle part of the key).
const (
	KindRef   = "refs"
	KindBlock = "blocks"
	KindAddr  = "addrs"
	KindExc   = "exc" // exception records (exceptions.go)
)

// BlocksPrefix lists the claimed blocks of a pool.
func BlocksPrefix(p netip.Prefix) string { return IPAMPrefix(p) + KindBlock + "/" }

// BlockKey is one claimed block.
func BlockKey(p, block netip.Prefix) string { return BlocksPrefix(p) + PoolName(block) }

// AddrsPrefix lists the allocated addresses of a pool.
func AddrsPrefix(p netip.Prefix) string { return IPAMPrefix(p) + KindAddr + "/" }

// AddrKey is one allocated address.
func AddrKey(p netip.Prefix, a netip.Addr) string { return AddrsPrefix(p) + AddrName(a) }

// IPAMKey is a key under ipam/<pool>/, parsed: exactly one of Host, Block
// and Addr is set, as Kind says.
type IPAMKey struct {
	Kind  string       // KindRef, KindBlock, KindAddr or KindExc
	Host  string       // KindRef: the host using the pool
	Block netip.Prefix // KindBlock: the claimed block (masked)
	Addr  netip.Addr   // KindAddr, KindExc: the address
}

// ParseIPAMKey reverses PoolRefKey, BlockKey, AddrKey and ExcKey for pool p. A key
// outside ipam/<p>/ or of another shape is an error naming it.
func ParseIPAMKey(p netip.Prefix, key string) (IPAMKey, error) {
	rest, ok := strings.CutPrefix(key, IPAMPrefix(p))
	if !ok {
		return IPAMKey{}, fmt.Errorf("key %q is not under %s", key, IPAMPrefix(p))
	}
	kind, name, ok := strings.Cut(rest, "/")
	if !ok || name == "" || strings.Contains(name, "/") {
		return IPAMKey{}, fmt.Errorf("malformed IPAM key %q", key)
	}
	k := IPAMKey{Kind: kind}
	switch kind {
	case KindRef:
		k.Host = name
	case KindBlock:
		b, err := ParsePoolName(name)
		if err != nil || !p.Contains(b.Addr()) || b.Bits() < p.Bits() {
			return IPAMKey{}, fmt.Errorf("malformed block key %q: not a block of %s", key, p)
		}
		k.Block = b.Masked()
	case KindAddr, KindExc:
		raw, err := hex.DecodeString(name)
		a, ok := netip.AddrFromSlice(raw)
		if err != nil || !ok || !p.Contains(a) {
			return IPAMKey{}, fmt.Errorf("malformed address key %q: not an address of %s", key, p)
		}
		k.Addr = a
	default:
		return IPAMKey{}, fmt.Errorf("unknown IPAM key kind in %q", key)
	}
	return k, nil
}

// LNetsPrefix lists logical networks.
const LNetsPrefix = "lnets/"

// LNetKey is the cross-host definition of the network using pool p.
func LNetKey(p netip.Prefix) string { return LNetsPrefix + PoolName(p) }

// NetworksPrefix lists the Docker networks of one host ("" for all hosts).
func NetworksPrefix(host string) string {
	if host == "" {
		return "networks/"
	}
	return "networks/" + host + "/"
}

// NetworkKey is one Docker network on one host.
func NetworkKey(host, id string) string { return NetworksPrefix(host) + id }

// EndpointsPrefix lists the endpoints of one host ("" for all hosts).
func EndpointsPrefix(host string) string {
	if host == "" {
		return "endpoints/"
	}
	return "endpoints/" + host + "/"
}

// EndpointKey is one Docker endpoint on one host.
func EndpointKey(host, id string) string { return EndpointsPrefix(host) + id }

// EndpointMetaPrefix lists endpoint metadata of one host ("" for all).
func EndpointMetaPrefix(host string) string {
	if host == "" {
		return "epmeta/"
	}
	return "epmeta/" + host + "/"
}

// EndpointMetaKey is the container metadata of one endpoint.
func EndpointMetaKey(host, id string) string { return EndpointMetaPrefix(host) + id }

// VNIsPrefix lists claimed VNIs.
const VNIsPrefix = "vnis/"

// VNIKey is the claim of one VNI.
func VNIKey(vni int) string { return fmt.Sprintf("%s%d", VNIsPrefix, vni) }

// VLANsPrefix lists the VLAN links podnet created on one host.
func VLANsPrefix(host string) string { return "vlans/" + host + "/" }

// VLANKey is one VLAN link podnet created on host.
func VLANKey(host, name string) string { return VLANsPrefix(host) + name }
