package nd

import (
	"encoding/binary"
	"math/rand/v2"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/mdlayher/ndp"
	"golang.org/x/time/rate"
)

var (
	bridgeMAC = net.HardwareAddr{0x02, 0x42, 0, 0, 0, 1}
	podMAC    = net.HardwareAddr{0x02, 0x42, 0, 0, 0, 2}
)

// frame builds an Ethernet frame carrying a neighbor solicitation.
func frame(t *testing.T, src, dst, target netip.Addr, hop byte) []byte {
	t.Helper()
	icmp, err := ndp.MarshalMessageChecksum(&ndp.NeighborSolicitation{TargetAddress: target,
		Options: []ndp.Option{&ndp.LinkLayerAddress{Direction: ndp.Source, Addr: podMAC}}}, src, dst)
	if err != nil {
		t.Fatal(err)
	}
	f := make([]byte, icmpOff+len(icmp))
	copy(f[0:6], []byte{0x33, 0x33, 0xff, 0, 0, 5})
	copy(f[6:12], podMAC)
	binary.BigEndian.PutUint16(f[12:14], 0x86dd)
	f[ethLen] = 0x60
	binary.BigEndian.PutUint16(f[ethLen+4:], uint16(len(icmp)))
	f[ethLen+6], f[ethLen+7] = protoICMP, hop
	s, d := src.As16(), dst.As16()
	copy(f[ethLen+8:], s[:])
	copy(f[ethLen+24:], d[:])
	copy(f[icmpOff:], icmp)
	return f
}

// TestParse checks which frames are solicitations to consider: never
// duplicate address detection, a bad checksum, a wrong hop limit, a
// link-local or multicast target, or a truncated frame; and that random
// bytes neither panic nor pass.
func TestParse(t *testing.T) {
	p := &Proxy{ifi: &net.Interface{Name: "pn-test", HardwareAddr: bridgeMAC}}
	src, snm := netip.MustParseAddr("fd00:1::5"), netip.MustParseAddr("ff02::1:ff00:41")
	target := netip.MustParseAddr("fd00:1::41")
	good := frame(t, src, snm, target, 255)
	s, ok := p.parse(good)
	if !ok || s.target != target || s.src != src || s.mac.String() != podMAC.String() {
		t.Fatalf("a valid solicitation: %+v, %v", s, ok)
	}
	badSum := append([]byte(nil), good...)
	badSum[icmpOff+2] ^= 0xff
	fromSelf := append([]byte(nil), good...)
	copy(fromSelf[6:12], bridgeMAC)
	for name, f := range map[string][]byte{
		"duplicate address detection": frame(t, netip.IPv6Unspecified(), snm, target, 255),
		"hop limit 64":                frame(t, src, snm, target, 64),
		"link-local target":           frame(t, src, snm, netip.MustParseAddr("fe80::1"), 255),
		"multicast target":            frame(t, src, snm, netip.MustParseAddr("ff02::1"), 255),
		"bad checksum":                badSum,
		"sent by the bridge":          fromSelf,
		"truncated":                   good[:icmpOff+10],
		"payload length too long":     append(good[:ethLen+4:ethLen+4], append([]byte{0xff, 0xff}, good[ethLen+6:]...)...),
	} {
		if s, ok := p.parse(f); ok {
			t.Errorf("%s: accepted (%+v)", name, s)
		}
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 100000 {
		f := make([]byte, r.IntN(snapLen))
		for i := range f {
			f[i] = byte(r.Uint32())
		}
		if len(f) > icmpOff && r.IntN(2) == 0 {
			copy(f, good[:icmpOff]) // valid headers, random message
		}
		if _, ok := p.parse(f); ok {
			t.Fatalf("random frame accepted: %x", f)
		}
	}
}

// TestFloodIsBounded feeds a burst of valid solicitations far over the
// rate: the callback (a routing lookup in podnetd) runs at most the burst
// plus the rate for the time taken, the rest is counted as limited, and
// nothing is kept per frame.
func TestFloodIsBounded(t *testing.T) {
	calls := 0
	p := &Proxy{ifi: &net.Interface{Name: "pn-test", HardwareAddr: bridgeMAC}, lim: rate.NewLimiter(DefaultRate, DefaultBurst),
		answer: func(netip.Addr) bool { calls++; return false }, count: func(string) {}}
	f := frame(t, netip.MustParseAddr("fd00:1::5"), netip.MustParseAddr("ff02::1:ff00:41"), netip.MustParseAddr("fd00:1::41"), 255)
	const n = 50000
	start := time.Now()
	for range n {
		p.handle(f)
	}
	max := DefaultBurst + int(time.Since(start).Seconds()*DefaultRate) + 1
	s := p.Stats()
	if calls > max || s.Declined != uint64(calls) || s.Limited != uint64(n-calls) {
		t.Fatalf("%d solicitations: callback ran %d times (at most %d), stats %+v", n, calls, max, s)
	}
	t.Logf("%d solicitations in %v: %d asked, %d limited", n, time.Since(start), calls, s.Limited)
}
