package dataplane

import (
	"encoding/binary"
	"fmt"
	"net/netip"

	"github.com/google/nftables/expr"
	"github.com/podnet/podnet/internal/dockerid"
	"golang.org/x/sys/unix"
)

// Names of podnet's maps and sets. Never rename: Sync replaces the whole
// table, but an old podnetd's incremental updates (during an upgrade) find
// them by name.
const (
	mapPub4Addr = "pm4_ip"  // ipv4_addr . inet_proto . inet_service : ipv4_addr . inet_service
	mapPub4Any  = "pm4_any" // inet_proto . inet_service : ipv4_addr . inet_service
	mapPub6Addr = "pm6_ip"
	mapPub6Any  = "pm6_any"
	setSubnets4 = "subnets4" // every podnet subnet known to this host
	setSubnets6 = "subnets6"
)

// element is one element of a set or map, as bytes for the kernel and as
// nft text for tests and logs.
type element struct {
	set     string
	key     []byte
	val     []byte
	keyEnd  bool // interval end marker (interval sets only)
	text    string
	comment string
	verdict *expr.Verdict // value of a verdict map element (goto chain)
}

// id identifies an element within podnet's table (set and key).
func (el element) id() string { return el.set + "/" + string(el.key) }

// protoNumber is the IP protocol number of p (0 if unknown).
func protoNumber(p Proto) uint8 {
	switch p {
	case TCP:
		return unix.IPPROTO_TCP
	case UDP:
		return unix.IPPROTO_UDP
	case SCTP:
		return unix.IPPROTO_SCTP
	}
	return 0
}

// slot returns b padded with zeros to a multiple of 4 bytes: in a
// concatenation every component occupies whole 32-bit registers.
func slot(b []byte) []byte {
	n := (len(b) + 3) / 4 * 4
	out := make([]byte, n)
	copy(out, b)
	return out
}

func portBytes(p uint16) []byte { return binary.BigEndian.AppendUint16(nil, p) }

// mappingElement is the map element that publishes m:
// `tcp . 8080 : 10.1.0.2 . 80` in pm4_any, or
// `10.0.0.5 . tcp . 8080 : 10.1.0.2 . 80` in pm4_ip.
func mappingElement(m Mapping, endpointID string) element {
	f := familyOf(m.ContainerIP)
	var key []byte
	kind := keyPort
	keyText := fmt.Sprintf("%s . %d", m.Proto, m.HostPort)
	if m.HostIP.IsValid() {
		kind = keyAddrPort
		key = append(key, m.HostIP.AsSlice()...)
		keyText = m.HostIP.String() + " . " + keyText
	}
	key = append(key, slot([]byte{protoNumber(m.Proto)})...)
	key = append(key, slot(portBytes(m.HostPort))...)
	val := append(m.ContainerIP.AsSlice(), slot(portBytes(m.ContainerPort))...)
	return element{
		set:     mapName(f, kind),
		key:     key,
		val:     val,
		text:    fmt.Sprintf("%s : %s . %d", keyText, m.ContainerIP, m.ContainerPort),
		comment: "endpoint " + dockerid.Short(endpointID),
	}
}

// mapKey is what a published-port map is keyed by.
type mapKey uint8

const (
	keyAddrPort mapKey = iota // host address . protocol . port (pm4_ip, pm6_ip)
	keyPort                   // protocol . port (pm4_any, pm6_any)
)

func mapName(f family, key mapKey) string {
	switch {
	case f == ipv4 && key == keyAddrPort:
		return mapPub4Addr
	case f == ipv4:
		return mapPub4Any
	case key == keyAddrPort:
		return mapPub6Addr
	default:
		return mapPub6Any
	}
}

// subnetElements turns prefixes of one family into interval-set elements:
// a start element and an end marker at the first address after the prefix
// (none when the prefix reaches the top of the address space). Prefixes
// contained in another are dropped: the kernel rejects overlaps.
func subnetElements(set string, prefixes []netip.Prefix) []element {
	var out []element
	ps := outermost(prefixes)
	if len(ps) > 0 && !ps[0].Addr().IsUnspecified() {
		// nft opens every interval set with an end marker at the zero
		// address (what older kernels' rbtree needed); do as nft does.
		zero := netip.IPv4Unspecified()
		if !ps[0].Addr().Is4() {
			zero = netip.IPv6Unspecified()
		}
		out = append(out, element{set: set, key: zero.AsSlice(), keyEnd: true})
	}
	for _, p := range ps {
		start := p.Masked().Addr()
		text := p.Masked().String()
		if p.IsSingleIP() {
			text = start.String()
		}
		out = append(out, element{set: set, key: start.AsSlice(), text: text})
		if next := lastAddr(p).Next(); next.IsValid() {
			out = append(out, element{set: set, key: next.AsSlice(), keyEnd: true})
		}
	}
	return out
}

// outermost returns the prefixes not contained in another one, sorted.
func outermost(prefixes []netip.Prefix) []netip.Prefix {
	var out []netip.Prefix
	for i, p := range prefixes {
		p = p.Masked()
		covered := false
		for j, q := range prefixes {
			q = q.Masked()
			if i != j && q.Bits() <= p.Bits() && q.Contains(p.Addr()) && (q != p || j < i) {
				covered = true
				break
			}
		}
		if !covered {
			out = append(out, p)
		}
	}
	sortPrefixes(out)
	return out
}

func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}
