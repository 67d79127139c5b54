package dataplane

import (
	"fmt"

	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// The frags of the guard rules (guard.go), in the style of nftexpr.go:
// each carries its nft text and the expressions nft compiles it to.

// l4Name is the nft keyword of an IP protocol number.
func l4Name(proto uint8) string {
	switch proto {
	case unix.IPPROTO_TCP:
		return "tcp"
	case unix.IPPROTO_UDP:
		return "udp"
	}
	return "sctp"
}

func l4protoExprs(proto uint8) []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: reg1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: reg1, Data: []byte{proto}},
	}
}

// dport is `udp dport 4789` (or tcp).
func dport(proto uint8, port uint16) frag {
	return frag{text: fmt.Sprintf("%s dport %d", l4Name(proto), port), exprs: append(l4protoExprs(proto),
		&expr.Payload{OperationType: expr.PayloadLoad, DestRegister: reg1,
			Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
		&expr.Cmp{Op: expr.CmpOpEq, Register: reg1, Data: portBytes(port)},
	)}
}

// addrInSet is `ip saddr @subnets4` (or daddr, or ip6).
func addrInSet(f family, a addrField, set string) frag {
	exprs := []expr.Any{loadAddr(f, a), &expr.Lookup{SourceRegister: reg1, SetName: set}}
	return frag{text: fmt.Sprintf("%s @%s", addrKeyword(f, a), set), exprs: exprs, dep: f}
}

// addrDportInSet is `ip daddr . tcp dport @etcd4`: the address in reg 1,
// the port in the 4-byte slot after it (reg32 9 for IPv4, reg 2 for IPv6),
// as nft lays out a concatenation.
func addrDportInSet(f family, proto uint8, set string) frag {
	portReg := uint32(reg32x01)
	if f == ipv6 {
		portReg = reg2
	}
	exprs := append(l4protoExprs(proto),
		loadAddr(f, daddr),
		&expr.Payload{OperationType: expr.PayloadLoad, DestRegister: portReg,
			Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
		&expr.Lookup{SourceRegister: reg1, SetName: set},
	)
	return frag{text: fmt.Sprintf("%s . %s dport @%s", addrKeyword(f, daddr), l4Name(proto), set), exprs: exprs, dep: f}
}

// fibSaddrLocal is `fib saddr type local`: the packet comes from an
// address of this host.
func fibSaddrLocal() frag {
	return frag{text: "fib saddr type local", exprs: []expr.Any{
		&expr.Fib{Register: reg1, FlagSADDR: true, ResultADDRTYPE: true},
		&expr.Cmp{Op: expr.CmpOpEq, Register: reg1, Data: binaryutil.NativeEndian.PutUint32(rtnLocal)},
	}}
}

// rpfMissing is `fib saddr . iif oif missing`: no route back to the
// source leaves through the interface the packet came in on (a strict
// reverse-path check).
func rpfMissing() frag {
	return frag{text: "fib saddr . iif oif missing", exprs: []expr.Any{
		&expr.Fib{Register: reg1, FlagSADDR: true, FlagIIF: true, ResultOIF: true, FlagPRESENT: true},
		&expr.Cmp{Op: expr.CmpOpEq, Register: reg1, Data: make([]byte, 4)},
	}}
}
