package dataplane

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// This file holds the building blocks of podnet's rules: each frag is one
// match or statement, carrying both its nft syntax (what `nft list` prints)
// and the kernel expressions that implement it. Rules are lists of frags,
// so a rule's text and its bytecode cannot drift apart, and the kernel test
// that compares `nft list table` with the text checks the bytecode too.
//
// Register layout, as `nft --debug=netlink` shows for the same rules:
// registers 1..4 are the 16-byte NFT_REG_1..4; 8..23 are the 4-byte
// NFT_REG32_00..15 overlaying them (reg 1 = reg32 8..11, reg 2 = 12..15).
// A concatenation puts each part in its own 4-byte-padded slot, so
// `ip daddr . meta l4proto . th dport` is daddr→1 (slot 8), l4proto→9,
// dport→10, and the 12-byte lookup key starts at register 1.
const (
	reg1     = 1  // NFT_REG_1, 16 bytes
	reg2     = 2  // NFT_REG_2, 16 bytes (follows an IPv6 address in reg 1)
	reg32x01 = 9  // NFT_REG32_01: the 4 bytes after reg32 slot 8
	reg32x02 = 10 // NFT_REG32_02
	reg32x05 = 13 // NFT_REG32_05: the 4 bytes after reg 2's first slot
)

// Kernel constants nft encodes (not all are exported by x/sys/unix).
const (
	ipsDstNAT = 0x20 // IPS_DST_NAT in ct status
	ctNew     = 0x08 // NF_CT_STATE_BIT(IP_CT_NEW) in ct state
	rtnLocal  = 2    // RTN_LOCAL from fib daddr type
	ifNameLen = 16   // IFNAMSIZ
)

// frag is one piece of a rule: its nft text and its expressions. dep is
// the IP family a header match needs checked first: in an inet table nft
// puts `meta nfproto ipv4` in front of the first `ip saddr` (once per
// rule) and hides it when listing; newRule does the same.
type frag struct {
	text  string
	exprs []expr.Any
	dep   family
	// sets is the family an explicit `meta nfproto` frag checks.
	sets family
	// anon are the anonymous sets the frag's lookups use (`{ tcp, udp }`).
	anon []anonSet
}

// ruleDef is one rule of the desired ruleset.
type ruleDef struct {
	chain   string
	text    string
	comment string
	exprs   []expr.Any
	anon    []anonSet // created in the same batch, just before the rule
}

func newRule(chain, comment string, frags ...frag) ruleDef {
	r := ruleDef{chain: chain, comment: comment}
	var words []string
	var checked family
	for _, f := range frags {
		if f.dep != 0 && f.dep != checked {
			r.exprs = append(r.exprs, nfprotoExprs(f.dep)...)
			checked = f.dep
		}
		if f.sets != 0 {
			checked = f.sets
		}
		if f.text != "" {
			words = append(words, f.text)
		}
		r.exprs = append(r.exprs, f.exprs...)
		r.anon = append(r.anon, f.anon...)
	}
	r.text = strings.Join(words, " ")
	if comment != "" {
		r.text += fmt.Sprintf(" comment %q", comment)
	}
	return r
}

// family is an IP family of a rule or map.
type family uint8

const (
	ipv4 family = unix.NFPROTO_IPV4
	ipv6 family = unix.NFPROTO_IPV6
)

func familyOf(a netip.Addr) family {
	if a.Is4() {
		return ipv4
	}
	return ipv6
}

// keyword is the nft name of the family's network header ("ip", "ip6").
func (f family) keyword() string {
	if f == ipv4 {
		return "ip"
	}
	return "ip6"
}

func (f family) addrLen() uint32 {
	if f == ipv4 {
		return 4
	}
	return 16
}

// nfproto is an explicit `meta nfproto ipv4|ipv6`, for statements that
// only work on one family but match no header field of it.
func nfproto(f family) frag {
	return frag{text: "meta nfproto " + map[family]string{ipv4: "ipv4", ipv6: "ipv6"}[f],
		exprs: nfprotoExprs(f), sets: f}
}

func nfprotoExprs(f family) []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: reg1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: reg1, Data: []byte{byte(f)}},
	}
}

// ifField is the interface a match looks at.
type ifField uint8

const (
	inIf  ifField = iota // iifname
	outIf                // oifname
)

// ifname matches `iifname`/`oifname` with op (eq or neq). A name ending
// in "*" matches the prefix, the way nft encodes wildcards: compare only
// the prefix bytes.
func ifname(field ifField, op expr.CmpOp, name string) frag {
	key, kw := expr.MetaKeyIIFNAME, "iifname"
	if field == outIf {
		key, kw = expr.MetaKeyOIFNAME, "oifname"
	}
	opText := ""
	if op == expr.CmpOpNeq {
		opText = "!= "
	}
	var data []byte
	if prefix, ok := strings.CutSuffix(name, "*"); ok {
		data = []byte(prefix)
	} else {
		data = make([]byte, ifNameLen)
		copy(data, name)
	}
	return frag{
		text: fmt.Sprintf("%s %s%q", kw, opText, name),
		exprs: []expr.Any{
			&expr.Meta{Key: key, Register: reg1},
			&expr.Cmp{Op: op, Register: reg1, Data: data},
		},
	}
}

func iif(name string) frag    { return ifname(inIf, expr.CmpOpEq, name) }
func iifNot(name string) frag { return ifname(inIf, expr.CmpOpNeq, name) }
func oif(name string) frag    { return ifname(outIf, expr.CmpOpEq, name) }
func oifNot(name string) frag { return ifname(outIf, expr.CmpOpNeq, name) }

// addrField is the address of the IP header a match looks at.
type addrField uint8

const (
	saddr addrField = iota
	daddr
)

// addrOffset is where saddr/daddr sit in the IPv4/IPv6 header.
func addrOffset(f family, a addrField) uint32 {
	switch {
	case f == ipv4 && a == saddr:
		return 12
	case f == ipv4:
		return 16
	case a == saddr:
		return 8
	default:
		return 24
	}
}

func loadAddr(f family, a addrField) *expr.Payload {
	return &expr.Payload{
		OperationType: expr.PayloadLoad, DestRegister: reg1,
		Base: expr.PayloadBaseNetworkHeader, Offset: addrOffset(f, a), Len: f.addrLen(),
	}
}

func addrKeyword(f family, a addrField) string {
	if a == daddr {
		return f.keyword() + " daddr"
	}
	return f.keyword() + " saddr"
}

// addrIn is `ip saddr 10.1.0.0/24` (or daddr, or ip6). Like nft, it loads
// only the bytes the prefix covers and masks only a partial last byte.
func addrIn(a addrField, p netip.Prefix) frag {
	p = p.Masked()
	f := familyOf(p.Addr())
	n := uint32(p.Bits()+7) / 8
	load := loadAddr(f, a)
	load.Len = n
	exprs := []expr.Any{load}
	text := fmt.Sprintf("%s %s", addrKeyword(f, a), p)
	if p.IsSingleIP() {
		text = fmt.Sprintf("%s %s", addrKeyword(f, a), p.Addr())
	}
	if p.Bits()%8 != 0 {
		exprs = append(exprs, &expr.Bitwise{
			SourceRegister: reg1, DestRegister: reg1, Len: n,
			Mask: prefixMask(p)[:n], Xor: make([]byte, n),
		})
	}
	exprs = append(exprs, &expr.Cmp{Op: expr.CmpOpEq, Register: reg1, Data: p.Addr().AsSlice()[:n]})
	return frag{text: text, exprs: exprs, dep: f}
}

func prefixMask(p netip.Prefix) []byte {
	n := p.Addr().BitLen() / 8
	mask := make([]byte, n)
	for i := 0; i < p.Bits(); i++ {
		mask[i/8] |= 0x80 >> (i % 8)
	}
	return mask
}

// addrNotInSet is `ip daddr != @subnets4`.
func addrNotInSet(f family, a addrField, set string) frag {
	exprs := []expr.Any{loadAddr(f, a), &expr.Lookup{SourceRegister: reg1, SetName: set, Invert: true}}
	return frag{text: fmt.Sprintf("%s != @%s", addrKeyword(f, a), set), exprs: exprs, dep: f}
}

// ctStatusDNAT is `ct status dnat`: the connection's destination was
// rewritten (by our published-port maps or anyone's DNAT).
func ctStatusDNAT() frag {
	return frag{text: "ct status dnat", exprs: []expr.Any{
		&expr.Ct{Key: expr.CtKeySTATUS, Register: reg1},
		&expr.Bitwise{SourceRegister: reg1, DestRegister: reg1, Len: 4,
			Mask: binaryutil.NativeEndian.PutUint32(ipsDstNAT), Xor: make([]byte, 4)},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: reg1, Data: make([]byte, 4)},
	}}
}

// ctStateNew is `ct state new`: the packet opens a connection (the
// first packet conntrack sees of it).
func ctStateNew() frag {
	return frag{text: "ct state new", exprs: []expr.Any{
		&expr.Ct{Key: expr.CtKeySTATE, Register: reg1},
		&expr.Bitwise{SourceRegister: reg1, DestRegister: reg1, Len: 4,
			Mask: binaryutil.NativeEndian.PutUint32(ctNew), Xor: make([]byte, 4)},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: reg1, Data: make([]byte, 4)},
	}}
}

// fibDaddrLocal is `fib daddr type local`: the destination is an address
// of this host (any interface, 127.0.0.0/8 included).
func fibDaddrLocal() frag {
	return frag{text: "fib daddr type local", exprs: []expr.Any{
		&expr.Fib{Register: reg1, FlagDADDR: true, ResultADDRTYPE: true},
		&expr.Cmp{Op: expr.CmpOpEq, Register: reg1, Data: binaryutil.NativeEndian.PutUint32(rtnLocal)},
	}}
}

// dnatViaMap is `dnat ip to ip daddr . meta l4proto . th dport map @pm4_ip`
// (key keyAddrPort) or `dnat ip to meta l4proto . th dport map @pm4_any`
// (keyPort), and the ip6 equivalents. The map's value (address . port) lands in reg 1 and the
// 4-byte slot right after the address, which is where nat reads them.
func dnatViaMap(f family, key mapKey, set string) frag {
	var exprs []expr.Any
	var protoReg, portReg, natPortReg uint32
	var dep family
	keyText := "meta l4proto . th dport"
	switch {
	case key == keyAddrPort && f == ipv4:
		exprs, dep = append(exprs, loadAddr(f, daddr)), f
		protoReg, portReg = reg32x01, reg32x02
		keyText = "ip daddr . " + keyText
	case key == keyAddrPort:
		exprs, dep = append(exprs, loadAddr(f, daddr)), f
		protoReg, portReg = reg2, reg32x05
		keyText = "ip6 daddr . " + keyText
	default:
		protoReg, portReg = reg1, reg32x01
	}
	if f == ipv4 {
		natPortReg = reg32x01
	} else {
		natPortReg = reg2
	}
	exprs = append(exprs,
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: protoReg},
		&expr.Payload{OperationType: expr.PayloadLoad, DestRegister: portReg,
			Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
		&expr.Lookup{SourceRegister: reg1, SetName: set, DestRegister: reg1, IsDestRegSet: true},
		&expr.NAT{Type: expr.NATTypeDestNAT, Family: uint32(f), RegAddrMin: reg1, RegProtoMin: natPortReg},
	)
	return frag{
		text:  fmt.Sprintf("dnat %s to %s map @%s", f.keyword(), keyText, set),
		exprs: exprs,
		dep:   dep,
	}
}

func masquerade() frag {
	return frag{text: "masquerade", exprs: []expr.Any{&expr.Masq{}}}
}

func verdict(kind expr.VerdictKind) frag {
	text := map[expr.VerdictKind]string{
		expr.VerdictAccept: "accept", expr.VerdictDrop: "drop", expr.VerdictReturn: "return",
	}[kind]
	return frag{text: text, exprs: []expr.Any{&expr.Verdict{Kind: kind}}}
}

func jump(chain string) frag {
	return frag{text: "jump " + chain, exprs: []expr.Any{&expr.Verdict{Kind: expr.VerdictJump, Chain: chain}}}
}
