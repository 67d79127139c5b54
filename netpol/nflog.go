package netpol

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// The policy log reads the packets the data plane sends to NFLOG (denied
// packets, rate-limited in the kernel) and logs who was denied what.
// nfnetlink_log speaks plain netlink; its few constants are spelled out
// here from linux/netfilter/nfnetlink_log.h.
const (
	nfulnlMsgPacket   = 0
	nfulnlMsgConfig   = 1
	nfulaPayload      = 9
	nfulaPrefix       = 10
	nfulaCfgCmd       = 1
	nfulaCfgMode      = 2
	nfulnlCfgCmdBind  = 1
	nfulnlCopyPacket  = 2
	nflogCopyRange    = 128 // enough for the IP and transport headers
	nflogReadBuffer   = 1 << 20
	nfgenmsgLen       = 4
	nflogPacketHeader = unix.NFNL_SUBSYS_ULOG<<8 | nfulnlMsgPacket
)

// nflogConn is a socket bound to one NFLOG group, in the calling
// thread's network namespace.
type nflogConn struct{ c *netlink.Conn }

func dialNFLOG(group uint16) (*nflogConn, error) {
	c, err := netlink.Dial(unix.NETLINK_NETFILTER, nil)
	if err != nil {
		return nil, fmt.Errorf("nflog socket: %w", err)
	}
	_ = c.SetReadBuffer(nflogReadBuffer)
	mode := make([]byte, 6)
	binary.BigEndian.PutUint32(mode, nflogCopyRange)
	mode[4] = nfulnlCopyPacket
	for _, attrs := range [][]netlink.Attribute{
		{{Type: nfulaCfgCmd, Data: []byte{nfulnlCfgCmdBind}}},
		{{Type: nfulaCfgMode, Data: mode}},
	} {
		b, err := netlink.MarshalAttributes(attrs)
		if err != nil {
			c.Close()
			return nil, err
		}
		hdr := []byte{unix.AF_UNSPEC, unix.NFNETLINK_V0, 0, 0}
		binary.BigEndian.PutUint16(hdr[2:], group)
		if _, err := c.Execute(netlink.Message{
			Header: netlink.Header{Type: netlink.HeaderType(unix.NFNL_SUBSYS_ULOG<<8 | nfulnlMsgConfig),
				Flags: netlink.Request | netlink.Acknowledge},
			Data: append(hdr, b...),
		}); err != nil {
			c.Close()
			return nil, fmt.Errorf("bind nflog group %d: %w", group, err)
		}
	}
	return &nflogConn{c: c}, nil
}

// loggedPacket is one packet NFLOG passed up: its prefix and headers.
type loggedPacket struct {
	prefix           string
	src, dst         netip.Addr
	proto            string
	srcPort, dstPort uint16
}

// receive blocks for the next batch of logged packets.
func (n *nflogConn) receive() ([]loggedPacket, error) {
	msgs, err := n.c.Receive()
	if err != nil {
		return nil, err
	}
	var out []loggedPacket
	for _, m := range msgs {
		if m.Header.Type != nflogPacketHeader || len(m.Data) < nfgenmsgLen {
			continue
		}
		ad, err := netlink.NewAttributeDecoder(m.Data[nfgenmsgLen:])
		if err != nil {
			continue
		}
		var p loggedPacket
		var payload []byte
		for ad.Next() {
			switch ad.Type() {
			case nfulaPrefix:
				p.prefix = strings.TrimRight(ad.String(), " \x00")
			case nfulaPayload:
				payload = ad.Bytes()
			}
		}
		if parseHeaders(&p, payload) {
			out = append(out, p)
		}
	}
	return out, nil
}

func (n *nflogConn) close() error { return n.c.Close() }

// parseHeaders reads addresses, protocol and ports from an IP packet.
func parseHeaders(p *loggedPacket, b []byte) bool {
	if len(b) < 1 {
		return false
	}
	var l4 []byte
	var proto byte
	switch b[0] >> 4 {
	case 4:
		if len(b) < 20 {
			return false
		}
		ihl := int(b[0]&0x0f) * 4
		p.src, p.dst = netip.AddrFrom4([4]byte(b[12:16])), netip.AddrFrom4([4]byte(b[16:20]))
		proto = b[9]
		if len(b) > ihl {
			l4 = b[ihl:]
		}
	case 6:
		if len(b) < 40 {
			return false
		}
		p.src, p.dst = netip.AddrFrom16([16]byte(b[8:24])), netip.AddrFrom16([16]byte(b[24:40]))
		proto = b[6] // extension headers are not followed: ports stay 0
		l4 = b[40:]
	default:
		return false
	}
	switch proto {
	case unix.IPPROTO_TCP:
		p.proto = "tcp"
	case unix.IPPROTO_UDP:
		p.proto = "udp"
	case unix.IPPROTO_SCTP:
		p.proto = "sctp"
	case unix.IPPROTO_ICMP, unix.IPPROTO_ICMPV6:
		p.proto = "icmp"
		return true
	default:
		p.proto = fmt.Sprint(proto)
		return true
	}
	if len(l4) >= 4 {
		p.srcPort, p.dstPort = binary.BigEndian.Uint16(l4), binary.BigEndian.Uint16(l4[2:])
	}
	return true
}

// RunLog logs the packets the data plane denies (podnetd --policy-log)
// until ctx ends: at most dataplane.PolicyLogRate a second per direction
// (the kernel drops the rest before they reach the log), each line naming
// the local container and the policies that isolate it.
func (a *Agent) RunLog(ctx context.Context) error {
	n, err := dialNFLOG(logGroup)
	if err != nil {
		return err
	}
	go func() { <-ctx.Done(); _ = n.close() }()
	for {
		ps, err := n.receive()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			var ne *netlink.OpError
			if errors.As(err, &ne) && errors.Is(ne.Err, unix.ENOBUFS) {
				continue // a burst overflowed the socket: lines lost, not the log
			}
			return fmt.Errorf("policy log: %w", err)
		}
		for _, p := range ps {
			a.logDenied(p)
		}
	}
}
