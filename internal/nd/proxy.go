package nd

import (
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mdlayher/ndp"
	"github.com/mdlayher/packet"
	"golang.org/x/net/bpf"
	"golang.org/x/time/rate"
)

// DefaultRate is how many solicitations a second a Proxy asks its
// callback about (and may answer), with bursts of DefaultBurst; more are
// dropped. Far above what a host's containers send (a neighbor entry
// lives for tens of seconds), far below what a core can take.
const (
	DefaultRate  = 2000
	DefaultBurst = 500
)

// Frame layout of what the filter passes: Ethernet (14), IPv6 (40),
// ICMPv6 neighbor solicitation (24 and options).
const (
	ethLen    = 14
	ip6Len    = 40
	icmpOff   = ethLen + ip6Len
	nsMinLen  = 24
	typeNS    = 135
	hopLimit  = 255
	protoICMP = 58
	// snapLen bounds what the kernel copies per solicitation.
	snapLen = 256
)

// Proxy answers neighbor solicitations received on one interface for the
// targets its callback accepts, with the interface's MAC. See doc.go.
type Proxy struct {
	ifi    *net.Interface
	src    netip.Addr // the interface's address answers come from
	answer func(netip.Addr) bool
	count  func(outcome string)
	conn   *packet.Conn
	lim    *rate.Limiter
	log    *slog.Logger

	answered, declined, ignored, limited atomic.Uint64

	closeOnce sync.Once
	done      chan struct{}
	wg        sync.WaitGroup
}

// Stats counts what a Proxy did with the solicitations its filter passed.
type Stats struct {
	// Answered were answered; Declined were refused by the callback;
	// Ignored were malformed, duplicate address detection, or for targets
	// never answered (see doc.go); Limited were dropped over the rate.
	Answered uint64 `json:"answered"`
	Declined uint64 `json:"declined"`
	Ignored  uint64 `json:"ignored"`
	Limited  uint64 `json:"limited"`
}

// Outcomes of a solicitation, as counted by Stats and passed to the
// count function of Listen.
const (
	Answered = "answered"
	Declined = "declined"
	Ignored  = "ignored"
	Limited  = "limited"
)

// Listen starts answering on the interface named ifname, in the network
// namespace of the calling thread, for the targets answer accepts. answer
// is called from the Proxy's own goroutine, at most DefaultRate times a
// second; it must not block for long. count, if not nil, is called with
// the outcome of every solicitation (for metrics).
func Listen(ifname string, answer func(netip.Addr) bool, count func(outcome string), log *slog.Logger) (*Proxy, error) {
	if log == nil {
		log = slog.Default()
	}
	ifi, err := net.InterfaceByName(ifname)
	if err != nil {
		return nil, fmt.Errorf("answer NDP on %s: %w", ifname, err)
	}
	if len(ifi.HardwareAddr) != 6 {
		return nil, fmt.Errorf("answer NDP on %s: not an Ethernet interface (hardware address %q)", ifname, ifi.HardwareAddr)
	}
	src, err := sourceAddr(ifi)
	if err != nil {
		return nil, err
	}
	filter, err := bpf.Assemble(nsFilter)
	if err != nil {
		return nil, fmt.Errorf("answer NDP on %s: filter: %w", ifname, err)
	}
	conn, err := packet.Listen(ifi, packet.Raw, 0x86dd, &packet.Config{Filter: filter})
	if err != nil {
		return nil, fmt.Errorf("answer NDP on %s: packet socket: %w", ifname, err)
	}
	if count == nil {
		count = func(string) {}
	}
	p := &Proxy{ifi: ifi, src: src, answer: answer, count: count, conn: conn, lim: rate.NewLimiter(DefaultRate, DefaultBurst),
		log: log.With("iface", ifname), done: make(chan struct{})}
	p.wg.Go(p.serve)
	return p, nil
}

// sourceAddr is the address answers come from: the interface's
// link-local one, or any other IPv6 address on it.
func sourceAddr(ifi *net.Interface) (netip.Addr, error) {
	addrs, err := ifi.Addrs()
	if err != nil {
		return netip.Addr{}, fmt.Errorf("answer NDP on %s: addresses: %w", ifi.Name, err)
	}
	var any netip.Addr
	for _, a := range addrs {
		n, ok := a.(*net.IPNet)
		if !ok {
			continue
		}
		ip, ok := netip.AddrFromSlice(n.IP)
		if !ok || ip.Is4() || ip.Is4In6() {
			continue
		}
		if ip.IsLinkLocalUnicast() {
			return ip, nil
		}
		if !any.IsValid() {
			any = ip
		}
	}
	if !any.IsValid() {
		return netip.Addr{}, fmt.Errorf("answer NDP on %s: no IPv6 address to answer from (is IPv6 on?)", ifi.Name)
	}
	return any, nil
}

// Index is the interface index the Proxy was opened on: a recreated
// interface of the same name needs a new Proxy.
func (p *Proxy) Index() int { return p.ifi.Index }

// Stats returns the counts so far.
func (p *Proxy) Stats() Stats {
	return Stats{Answered: p.answered.Load(), Declined: p.declined.Load(), Ignored: p.ignored.Load(), Limited: p.limited.Load()}
}

// Close stops answering and waits for the Proxy's goroutine. It may be
// called more than once.
func (p *Proxy) Close() {
	p.closeOnce.Do(func() {
		close(p.done)
		_ = p.conn.Close()
		p.wg.Wait()
	})
}

// nsFilter passes received (not outgoing) IPv6 frames carrying ICMPv6
// neighbor solicitations with hop limit 255 and no extension header.
var nsFilter = []bpf.Instruction{
	bpf.LoadExtension{Num: bpf.ExtType},
	bpf.JumpIf{Cond: bpf.JumpEqual, Val: 4 /* PACKET_OUTGOING */, SkipTrue: 9},
	bpf.LoadAbsolute{Off: 12, Size: 2},
	bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: 0x86dd, SkipTrue: 7},
	bpf.LoadAbsolute{Off: ethLen + 6, Size: 1},
	bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: protoICMP, SkipTrue: 5},
	bpf.LoadAbsolute{Off: ethLen + 7, Size: 1},
	bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: hopLimit, SkipTrue: 3},
	bpf.LoadAbsolute{Off: icmpOff, Size: 1},
	bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: typeNS, SkipTrue: 1},
	bpf.RetConstant{Val: snapLen},
	bpf.RetConstant{Val: 0},
}

func (p *Proxy) serve() {
	buf := make([]byte, snapLen)
	for {
		n, _, err := p.conn.ReadFrom(buf)
		if err != nil {
			select {
			case <-p.done:
				return
			default:
			}
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// The interface went away or a transient error: do not spin.
			select {
			case <-p.done:
				return
			case <-time.After(100 * time.Millisecond):
			}
			continue
		}
		p.handle(buf[:n])
	}
}

// handle answers one frame if it is a solicitation to answer.
func (p *Proxy) handle(frame []byte) {
	s, ok := p.parse(frame)
	if !ok {
		p.ignored.Add(1)
		p.count(Ignored)
		return
	}
	if !p.lim.Allow() {
		p.limited.Add(1)
		p.count(Limited)
		return
	}
	if !p.answer(s.target) {
		p.declined.Add(1)
		p.count(Declined)
		return
	}
	if err := p.reply(s); err != nil {
		p.log.Debug("neighbor advertisement failed", "addr", s.target, "to", s.src, "err", err)
		return
	}
	p.answered.Add(1)
	p.count(Answered)
}

// solicitation is what an answer needs of a neighbor solicitation.
type solicitation struct {
	src    netip.Addr       // the solicitor's address
	mac    net.HardwareAddr // where the answer goes
	target netip.Addr
}

// parse checks a frame the filter passed and returns the solicitation in
// it if it is one to consider.
func (p *Proxy) parse(f []byte) (solicitation, bool) {
	if len(f) < icmpOff+nsMinLen || binary.BigEndian.Uint16(f[12:14]) != 0x86dd || f[ethLen]>>4 != 6 {
		return solicitation{}, false
	}
	ethSrc := net.HardwareAddr(f[6:12])
	if ethSrc.String() == p.ifi.HardwareAddr.String() || ethSrc[0]&1 != 0 {
		return solicitation{}, false
	}
	plen := int(binary.BigEndian.Uint16(f[ethLen+4 : ethLen+6]))
	if f[ethLen+6] != protoICMP || f[ethLen+7] != hopLimit || plen < nsMinLen || icmpOff+plen > len(f) {
		return solicitation{}, false
	}
	src := netip.AddrFrom16([16]byte(f[ethLen+8 : ethLen+24]))
	dst := netip.AddrFrom16([16]byte(f[ethLen+24 : ethLen+40]))
	icmp := f[icmpOff : icmpOff+plen]
	// Duplicate address detection is never answered (doc.go).
	if src.IsUnspecified() || src.IsMulticast() || icmp[1] != 0 || checksum(src, dst, icmp) != 0 {
		return solicitation{}, false
	}
	m, err := ndp.ParseMessage(icmp)
	if err != nil {
		return solicitation{}, false
	}
	ns, ok := m.(*ndp.NeighborSolicitation)
	if !ok {
		return solicitation{}, false
	}
	t := ns.TargetAddress
	if !t.Is6() || t.Is4In6() || t.IsMulticast() || t.IsLinkLocalUnicast() || t.IsLoopback() || t.IsUnspecified() {
		return solicitation{}, false
	}
	mac := ethSrc
	for _, o := range ns.Options {
		if l, ok := o.(*ndp.LinkLayerAddress); ok && l.Direction == ndp.Source && len(l.Addr) == 6 && l.Addr[0]&1 == 0 {
			mac = l.Addr
		}
	}
	return solicitation{src: src, mac: append(net.HardwareAddr(nil), mac...), target: t}, true
}

// reply sends the advertisement for s straight to the solicitor.
func (p *Proxy) reply(s solicitation) error {
	icmp, err := ndp.MarshalMessageChecksum(Advert(s.target, p.ifi.HardwareAddr, true, false), p.src, s.src)
	if err != nil {
		return err
	}
	f := make([]byte, icmpOff+len(icmp))
	copy(f[0:6], s.mac)
	copy(f[6:12], p.ifi.HardwareAddr)
	binary.BigEndian.PutUint16(f[12:14], 0x86dd)
	f[ethLen] = 0x60
	binary.BigEndian.PutUint16(f[ethLen+4:ethLen+6], uint16(len(icmp)))
	f[ethLen+6], f[ethLen+7] = protoICMP, hopLimit
	src, dst := p.src.As16(), s.src.As16()
	copy(f[ethLen+8:ethLen+24], src[:])
	copy(f[ethLen+24:ethLen+40], dst[:])
	copy(f[icmpOff:], icmp)
	_, err = p.conn.WriteTo(f, &packet.Addr{HardwareAddr: s.mac})
	return err
}

// checksum is the one's complement sum of an ICMPv6 message with its
// pseudo-header, folded and complemented: 0 for a message whose checksum
// field is right.
func checksum(src, dst netip.Addr, icmp []byte) uint16 {
	var sum uint32
	add := func(b []byte) {
		for i := 0; i+1 < len(b); i += 2 {
			sum += uint32(b[i])<<8 | uint32(b[i+1])
		}
		if len(b)%2 == 1 {
			sum += uint32(b[len(b)-1]) << 8
		}
	}
	s, d := src.As16(), dst.As16()
	add(s[:])
	add(d[:])
	var l [8]byte
	binary.BigEndian.PutUint32(l[0:4], uint32(len(icmp)))
	l[7] = protoICMP
	add(l[:])
	add(icmp)
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}
