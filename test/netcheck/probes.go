package main

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"syscall"
	"time"

	"github.com/miekg/dns"
)

// connect dials addr over TCP (2 s) and says whether it connected.
func connect(addr string) error {
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return err
	}
	c.Close()
	fmt.Printf("connected to %s\n", addr)
	return nil
}

// probe connects to every addr at once, each with a timeout of ms
// milliseconds, and prints one line per addr in the order given: ok,
// refused (a reset: something answered) or timeout (no answer: dropped).
func probe(ms string, addrs []string) error {
	n, err := strconv.Atoi(ms)
	if err != nil || n < 1 {
		return fmt.Errorf("probe timeout %q: want milliseconds", ms)
	}
	res := make([]string, len(addrs))
	done := make(chan struct{})
	for i, a := range addrs {
		go func() {
			defer func() { done <- struct{}{} }()
			c, err := net.DialTimeout("tcp", a, time.Duration(n)*time.Millisecond)
			switch {
			case err == nil:
				c.Close()
				res[i] = "ok"
			case isRefused(err):
				res[i] = "refused"
			default:
				res[i] = "timeout"
			}
		}()
	}
	for range addrs {
		<-done
	}
	for i, a := range addrs {
		fmt.Printf("%s %s\n", a, res[i])
	}
	return nil
}

func isRefused(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && errors.Is(op.Err, syscall.ECONNREFUSED)
}

// keepTrying connects to addr every 50 ms (dial each) for d and prints
// how many attempts connected and when the first did: a container that
// must be isolated from its first packet runs it first thing, and one
// whose address must reach other hosts' allow lists measures how soon it
// did.
func keepTrying(addr string, d, dial time.Duration) {
	ok, tries := 0, 0
	start := time.Now()
	first := time.Duration(-1)
	for end := start.Add(d); time.Now().Before(end); tries++ {
		if c, err := net.DialTimeout("tcp", addr, dial); err == nil {
			c.Close()
			if ok == 0 {
				first = time.Since(start)
			}
			ok++
		}
		if ok == 0 {
			time.Sleep(10 * time.Millisecond) // until the first: fine-grained
		} else {
			time.Sleep(50 * time.Millisecond)
		}
	}
	fmt.Printf("connected %d of %d first %d ms\n", ok, tries, first.Milliseconds())
}

// dnsQuery asks server (ip or ip:port) for name's A records over UDP, one
// try of 2 s: it prints the rcode and the addresses, or fails on no answer.
func dnsQuery(server, name string) error {
	if _, _, err := net.SplitHostPort(server); err != nil {
		server = net.JoinHostPort(server, "53")
	}
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), dns.TypeA)
	c := &dns.Client{Net: "udp", Timeout: 2 * time.Second}
	r, _, err := c.Exchange(m, server)
	if err != nil {
		return err
	}
	fmt.Print(dns.RcodeToString[r.Rcode])
	for _, rr := range r.Answer {
		if a, ok := rr.(*dns.A); ok {
			fmt.Printf(" %s", a.A)
		}
	}
	fmt.Println()
	return nil
}

// vxlanSend sends to dst (a VTEP's ip:port) one VXLAN datagram carrying an
// Ethernet frame to dstMAC with an IPv4/UDP packet from src to
// inner:port holding msg — what a host's tunnel would carry, with any
// inner source the sender likes.
func vxlanSend(dst, vni, dstMAC, src, inner, port, msg string) error {
	id, err := strconv.ParseUint(vni, 10, 24)
	if err != nil {
		return fmt.Errorf("vni %q: %w", vni, err)
	}
	mac, err := net.ParseMAC(dstMAC)
	if err != nil {
		return err
	}
	s, err := netip.ParseAddr(src)
	if err != nil || !s.Is4() {
		return fmt.Errorf("inner source %q: want IPv4", src)
	}
	d, err := netip.ParseAddr(inner)
	if err != nil || !d.Is4() {
		return fmt.Errorf("inner destination %q: want IPv4", inner)
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		return fmt.Errorf("port %q: %w", port, err)
	}
	udp := binary.BigEndian.AppendUint16(nil, 40000)
	udp = binary.BigEndian.AppendUint16(udp, uint16(p))
	udp = binary.BigEndian.AppendUint16(udp, uint16(8+len(msg)))
	udp = append(udp, 0, 0) // no checksum (allowed over IPv4)
	udp = append(udp, msg...)
	ip := []byte{0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, 17, 0, 0}
	binary.BigEndian.PutUint16(ip[2:], uint16(20+len(udp)))
	ip = append(ip, s.AsSlice()...)
	ip = append(ip, d.AsSlice()...)
	binary.BigEndian.PutUint16(ip[10:], checksum(ip))
	frame := append(append([]byte{}, mac...), 0x02, 0x00, 0x5e, 0x00, 0x53, 0x01) // a documentation MAC
	frame = append(frame, 0x08, 0x00)
	frame = append(frame, ip...)
	frame = append(frame, udp...)
	hdr := []byte{0x08, 0, 0, 0, byte(id >> 16), byte(id >> 8), byte(id), 0}
	c, err := net.Dial("udp", dst)
	if err != nil {
		return err
	}
	defer c.Close()
	if _, err := c.Write(append(hdr, frame...)); err != nil {
		return err
	}
	fmt.Printf("sent vni %d %s -> %s:%d %q via %s\n", id, src, inner, p, msg, dst)
	return nil
}

func checksum(b []byte) uint16 {
	var sum uint32
	for i := 0; i+1 < len(b); i += 2 {
		sum += uint32(b[i])<<8 | uint32(b[i+1])
	}
	for sum > 0xffff {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}
