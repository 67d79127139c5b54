package dataplane

import (
	"encoding/binary"
	"fmt"
	"strconv"
	"strings"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// The building blocks of service rules (see nftexpr.go for the scheme and
// the register layout). Every one of them is something nft itself can
// parse and print, so `nft list table inet podnet` shows the real rules
// and the kernel test can compare our bytecode with nft's.

// ctMarkService is the conntrack mark bit podnet sets on every connection
// a service rule DNATed. postrouting picks the connection's source NAT by
// it, and PODNET-FORWARD accepts such connections in Docker's FORWARD
// chain (a NodePort forwarded from the underlay to another host crosses no
// podnet bridge). One bit, or-ed in, so other users of the mark keep
// theirs. Never change it: a restarted podnetd recognises the connections
// of the previous one by it.
const ctMarkService = 0x00200000

// anonSet is an anonymous (constant, rule-bound) set a rule uses, as
// `{ tcp, udp, sctp }` or `vmap { 0 : goto a, 1 : goto b }`. The kernel
// side creates it in the rule's batch and points lookup at it.
type anonSet struct {
	def    setDef
	lookup *expr.Lookup
}

// l4protoKey is where `meta l4proto . th dport` (after an optional
// address) puts its parts, as in dnatViaMap.
func l4protoKey(f family, withAddr bool) (exprs []expr.Any, text string) {
	protoReg, portReg := uint32(reg1), uint32(reg32x01)
	text = "meta l4proto . th dport"
	if withAddr {
		exprs = append(exprs, loadAddr(f, daddr))
		text = f.keyword() + " daddr . " + text
		protoReg, portReg = reg32x01, reg32x02
		if f == ipv6 {
			protoReg, portReg = reg2, reg32x05
		}
	}
	return append(exprs,
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: protoReg},
		&expr.Payload{OperationType: expr.PayloadLoad, DestRegister: portReg,
			Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
	), text
}

// dispatchVmap is `ip daddr . meta l4proto . th dport vmap @set` (withAddr)
// or `meta l4proto . th dport vmap @set`: one hash lookup that jumps to the
// service's chain, however many services exist.
func dispatchVmap(f family, withAddr bool, set string) frag {
	exprs, key := l4protoKey(f, withAddr)
	exprs = append(exprs, &expr.Lookup{SourceRegister: reg1, SetName: set, DestRegister: 0, IsDestRegSet: true})
	fr := frag{text: fmt.Sprintf("%s vmap @%s", key, set), exprs: exprs}
	if withAddr {
		fr.dep = f
	}
	return fr
}

// l4protoIn is `meta l4proto { tcp, udp, sctp }`: nft wants the protocol
// known before a map yields a port for nat.
func l4protoIn() frag {
	l := &expr.Lookup{SourceRegister: reg1}
	def := setDef{keyType: nftables.TypeInetProto}
	var texts []string
	for _, p := range []Proto{TCP, UDP, SCTP} {
		def.elems = append(def.elems, element{key: []byte{protoNumber(p)}, text: string(p)})
		texts = append(texts, string(p))
	}
	return frag{text: "meta l4proto { " + strings.Join(texts, ", ") + " }",
		exprs: []expr.Any{&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: reg1}, l},
		anon:  []anonSet{{def: def, lookup: l}}}
}

// l4protoIs is `meta l4proto tcp`.
func l4protoIs(p Proto) frag {
	return frag{text: "meta l4proto " + string(p), exprs: []expr.Any{
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: reg1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: reg1, Data: []byte{protoNumber(p)}},
	}}
}

// pickRules choose one of targets with equal probability: rule i jumps to
// target i when `numgen random mod (n-i)` is 0, the last one always —
// 1/n, then 1/(n-1) of the rest, and so on, as kube-proxy's iptables mode
// does with the statistic match. For few targets (see rangeObjects).
func pickRules(chain string, targets []string) []ruleDef {
	var rules []ruleDef
	for i, t := range targets[:len(targets)-1] {
		rules = append(rules, newRule(chain, "", numgenIsZero(len(targets)-i), gotoChain(t)))
	}
	return append(rules, newRule(chain, "", gotoChain(targets[len(targets)-1])))
}

// pick is the rules of chain choosing one of targets with equal
// probability: a goto for one, pickVmap's single rule when it can (see
// flatPick), else pickRules.
func pick(chain string, targets []string) []ruleDef {
	switch {
	case len(targets) == 1:
		return []ruleDef{newRule(chain, "", gotoChain(targets[0]))}
	case flatPick(len(targets)):
		return []ruleDef{newRule(chain, "", pickVmap(targets))}
	}
	return pickRules(chain, targets)
}

// maxPickVmap is the most targets pickVmap chooses among.
const maxPickVmap = 256

// littleEndian: numgen's low byte comes first in its register.
var littleEndian = binary.NativeEndian.Uint16([]byte{1, 0}) == 1

// flatPick tells whether n targets are chosen by pickVmap's one rule.
func flatPick(n int) bool { return littleEndian && n <= maxPickVmap }

// pickVmap chooses one of at most maxPickVmap targets with equal
// probability in one rule: `numgen random mod n vmap { 0 : goto t0, … }`,
// one random number and one lookup in a constant map however many
// targets. numgen writes a 32-bit number in host byte order, and the
// library marks every anonymous set's keys big-endian (nft would list a
// 4-byte key 1 as 16777216); a 1-byte key has no byte order, and on a
// little-endian host it is the number's low byte, so the map's keys are
// one byte and nft lists them as written. nft itself compiles the same
// rule with 4-byte keys: the same lookup, the same element bytes.
func pickVmap(targets []string) frag {
	l := &expr.Lookup{SourceRegister: reg1, IsDestRegSet: true, DestRegister: 0}
	key := nftables.TypeInteger
	key.Bytes = 1
	def := setDef{keyType: key, dataType: nftables.TypeVerdict, isMap: true}
	texts := make([]string, len(targets))
	for i, t := range targets {
		def.elems = append(def.elems, element{key: []byte{byte(i)},
			verdict: &expr.Verdict{Kind: expr.VerdictGoto, Chain: t}})
		texts[i] = strconv.Itoa(i) + " : goto " + t
	}
	return frag{text: fmt.Sprintf("numgen random mod %d vmap { %s }", len(targets), strings.Join(texts, ", ")),
		exprs: []expr.Any{&expr.Numgen{Register: reg1, Modulus: uint32(len(targets)), Type: unix.NFT_NG_RANDOM}, l},
		anon:  []anonSet{{def: def, lookup: l}}}
}

// numgenLess is `numgen random mod n < s`: numgen writes host byte order,
// cmp compares bytes, so nft converts first (as here).
func numgenLess(n, s int) frag {
	return frag{text: fmt.Sprintf("numgen random mod %d < %d", n, s), exprs: []expr.Any{
		&expr.Numgen{Register: reg1, Modulus: uint32(n), Type: unix.NFT_NG_RANDOM},
		&expr.Byteorder{SourceRegister: reg1, DestRegister: reg1, Op: expr.ByteorderHton, Len: 4, Size: 4},
		&expr.Cmp{Op: expr.CmpOpLt, Register: reg1, Data: binaryutil.BigEndian.PutUint32(uint32(s))},
	}}
}

// numgenIsZero is `numgen random mod n 0`.
func numgenIsZero(n int) frag {
	return frag{text: fmt.Sprintf("numgen random mod %d 0", n), exprs: []expr.Any{
		&expr.Numgen{Register: reg1, Modulus: uint32(n), Type: unix.NFT_NG_RANDOM},
		&expr.Cmp{Op: expr.CmpOpEq, Register: reg1, Data: make([]byte, 4)},
	}}
}

// ctMarkSetService is `ct mark set ct mark | 0x00200000`.
func ctMarkSetService() frag {
	return frag{text: fmt.Sprintf("ct mark set ct mark | %#08x", ctMarkService), exprs: []expr.Any{
		&expr.Ct{Key: expr.CtKeyMARK, Register: reg1},
		&expr.Bitwise{SourceRegister: reg1, DestRegister: reg1, Len: 4,
			Mask: binaryutil.NativeEndian.PutUint32(^uint32(ctMarkService)),
			Xor:  binaryutil.NativeEndian.PutUint32(ctMarkService)},
		&expr.Ct{Key: expr.CtKeyMARK, Register: reg1, SourceRegister: true},
	}}
}

// ctMarkHasService is `ct mark & 0x00200000 == 0x00200000`.
func ctMarkHasService() frag {
	return frag{text: fmt.Sprintf("ct mark & %#08x == %#08x", ctMarkService, ctMarkService), exprs: []expr.Any{
		&expr.Ct{Key: expr.CtKeyMARK, Register: reg1},
		&expr.Bitwise{SourceRegister: reg1, DestRegister: reg1, Len: 4,
			Mask: binaryutil.NativeEndian.PutUint32(ctMarkService), Xor: make([]byte, 4)},
		&expr.Cmp{Op: expr.CmpOpEq, Register: reg1, Data: binaryutil.NativeEndian.PutUint32(ctMarkService)},
	}}
}

// addrPairInSet is `ip saddr . ip daddr @set`.
func addrPairInSet(f family, set string) frag {
	second := loadAddr(f, daddr)
	second.DestRegister = reg32x01
	if f == ipv6 {
		second.DestRegister = reg2
	}
	return frag{
		text:  fmt.Sprintf("%s . %s @%s", addrKeyword(f, saddr), addrKeyword(f, daddr), set),
		exprs: []expr.Any{loadAddr(f, saddr), second, &expr.Lookup{SourceRegister: reg1, SetName: set}},
		dep:   f,
	}
}

// ifnamePairInSet is `iifname . oifname @set`.
func ifnamePairInSet(set string) frag {
	return frag{text: "iifname . oifname @" + set, exprs: []expr.Any{
		&expr.Meta{Key: expr.MetaKeyIIFNAME, Register: reg1},
		&expr.Meta{Key: expr.MetaKeyOIFNAME, Register: reg2},
		&expr.Lookup{SourceRegister: reg1, SetName: set},
	}}
}

// snatViaMap is `snat ip to ip daddr map @set`: the source address by
// destination (an interval map from pod subnets to this host's address in
// each).
func snatViaMap(f family, set string) frag {
	return frag{
		text: fmt.Sprintf("snat %s to %s map @%s", f.keyword(), addrKeyword(f, daddr), set),
		exprs: []expr.Any{
			loadAddr(f, daddr),
			&expr.Lookup{SourceRegister: reg1, SetName: set, DestRegister: reg1, IsDestRegSet: true},
			&expr.NAT{Type: expr.NATTypeSourceNAT, Family: uint32(f), RegAddrMin: reg1},
		},
		dep: f,
	}
}

func gotoChain(chain string) frag {
	return frag{text: "goto " + chain, exprs: []expr.Any{&expr.Verdict{Kind: expr.VerdictGoto, Chain: chain}}}
}

// updateSaddr is `update @set { ip saddr }`: add the client to a timeout
// set, or refresh its timeout.
func updateSaddr(f family, set string) frag {
	return frag{text: fmt.Sprintf("update @%s { %s }", set, addrKeyword(f, saddr)), exprs: []expr.Any{
		loadAddr(f, saddr),
		&expr.Dynset{SrcRegKey: reg1, SetName: set, Operation: unix.NFT_DYNSET_OP_UPDATE},
	}, dep: f}
}

// rejectTCPReset is `reject with tcp reset`; rejectPortUnreachable is
// `reject` (ICMP or ICMPv6 port unreachable, as the family needs).
func rejectTCPReset() frag {
	return frag{text: "reject with tcp reset", exprs: []expr.Any{&expr.Reject{Type: unix.NFT_REJECT_TCP_RST}}}
}

func rejectPortUnreachable() frag {
	return frag{text: "reject", exprs: []expr.Any{
		&expr.Reject{Type: unix.NFT_REJECT_ICMPX_UNREACH, Code: unix.NFT_REJECT_ICMPX_PORT_UNREACH}}}
}
