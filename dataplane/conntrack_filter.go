package dataplane

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

// ctFilter selects conntrack entries for an in-kernel flush: an entry
// goes when every field that is set matches (original destination and
// port, reply source and port, mark under markMask).
type ctFilter struct {
	fam        family
	proto      uint8
	origDst    netip.Addr
	origDport  uint16
	replySrc   netip.Addr
	replySport uint16
	mark       uint32
	markMask   uint32
}

// matches is the filter's meaning, for fakes and for the dump fallback.
func (f ctFilter) matches(flow *netlink.ConntrackFlow) bool {
	return flow.Forward.Protocol == f.proto &&
		(!f.origDst.IsValid() || flowAddr(flow.Forward.DstIP) == f.origDst) &&
		(f.origDport == 0 || flow.Forward.DstPort == f.origDport) &&
		(!f.replySrc.IsValid() || flowAddr(flow.Reverse.SrcIP) == f.replySrc) &&
		(f.replySport == 0 || flow.Reverse.SrcPort == f.replySport) &&
		flow.Mark&f.markMask == f.mark
}

// errNoFilteredFlush: the kernel cannot flush by tuple (Linux < 6.9 or
// so answers EOPNOTSUPP or EINVAL): dump and delete instead.
var errNoFilteredFlush = errors.New("kernel cannot flush conntrack entries by tuple")

// ctnetlink attributes vishvananda/netlink/nl does not name (linux
// include/uapi/linux/netfilter/nfnetlink_conntrack.h).
const (
	ctaMarkMask          = 21
	ctaFilter            = 25
	ctaFilterOrigFlags   = 1
	ctaFilterReplyFlags  = 2
	ctaFilterFlagIPSrc   = 1 << 0
	ctaFilterFlagIPDst   = 1 << 1
	ctaFilterFlagProto   = 1 << 3
	ctaFilterFlagSrcPort = 1 << 4
	ctaFilterFlagDstPort = 1 << 5
)

// flushFiltered is `conntrack -D` with the filter applied by the kernel:
// one IPCTNL_MSG_CT_DELETE carrying the tuple fields and CTA_FILTER,
// which the kernel runs over its table without sending a single entry to
// us (ctnetlink_flush_conntrack). The dump fallback parses every entry in
// userspace, about a hundred times slower per entry.
func (netlinkConntrack) flushFiltered(f ctFilter) error {
	af := uint8(unix.AF_INET)
	ipSrc, ipDst := nl.CTA_IP_V4_SRC, nl.CTA_IP_V4_DST
	if f.fam == ipv6 {
		af, ipSrc, ipDst = unix.AF_INET6, nl.CTA_IP_V6_SRC, nl.CTA_IP_V6_DST
	}
	req := nl.NewNetlinkRequest(unix.NFNL_SUBSYS_CTNETLINK<<8|nl.IPCTNL_MSG_CT_DELETE, unix.NLM_F_ACK)
	req.AddData(&nl.Nfgenmsg{NfgenFamily: af, Version: nl.NFNETLINK_V0})
	tuple := func(kind int, addrAttr int, addr netip.Addr, portAttr int, port uint16) (*nl.RtAttr, uint32) {
		t := nl.NewRtAttr(kind|unix.NLA_F_NESTED, nil)
		flags := uint32(ctaFilterFlagProto)
		if addr.IsValid() {
			ip := t.AddRtAttr(nl.CTA_TUPLE_IP|unix.NLA_F_NESTED, nil)
			ip.AddRtAttr(addrAttr, addr.AsSlice())
			flags |= map[int]uint32{ipSrc: ctaFilterFlagIPSrc, ipDst: ctaFilterFlagIPDst}[addrAttr]
		}
		proto := t.AddRtAttr(nl.CTA_TUPLE_PROTO|unix.NLA_F_NESTED, nil)
		proto.AddRtAttr(nl.CTA_PROTO_NUM, []byte{f.proto})
		if port != 0 {
			proto.AddRtAttr(portAttr, binary.BigEndian.AppendUint16(nil, port))
			flags |= map[int]uint32{nl.CTA_PROTO_SRC_PORT: ctaFilterFlagSrcPort, nl.CTA_PROTO_DST_PORT: ctaFilterFlagDstPort}[portAttr]
		}
		return t, flags
	}
	orig, origFlags := tuple(nl.CTA_TUPLE_ORIG, ipDst, f.origDst, nl.CTA_PROTO_DST_PORT, f.origDport)
	reply, replyFlags := tuple(nl.CTA_TUPLE_REPLY, ipSrc, f.replySrc, nl.CTA_PROTO_SRC_PORT, f.replySport)
	req.AddData(orig)
	req.AddData(reply)
	if f.markMask != 0 {
		req.AddData(nl.NewRtAttr(nl.CTA_MARK, binary.BigEndian.AppendUint32(nil, f.mark)))
		req.AddData(nl.NewRtAttr(ctaMarkMask, binary.BigEndian.AppendUint32(nil, f.markMask)))
	}
	filter := nl.NewRtAttr(ctaFilter|unix.NLA_F_NESTED, nil)
	filter.AddRtAttr(ctaFilterOrigFlags, binary.NativeEndian.AppendUint32(nil, origFlags))
	filter.AddRtAttr(ctaFilterReplyFlags, binary.NativeEndian.AppendUint32(nil, replyFlags))
	req.AddData(filter)
	_, err := req.Execute(unix.NETLINK_NETFILTER, 0)
	switch {
	case err == nil, errors.Is(err, unix.ENOENT):
		return nil // ENOENT: nothing matched
	case errors.Is(err, unix.EOPNOTSUPP), errors.Is(err, unix.EINVAL):
		return fmt.Errorf("%w: %w", errNoFilteredFlush, err)
	}
	return fmt.Errorf("flush conntrack entries (%s): %w", f.fam.keyword(), err)
}
