// Command reach polls an IPv4 address with ICMP echo requests until the
// first echo reply from it (benchmark REACH of scripts/bench.sh: how soon
// a container started on one host answers a container on another).
//
//	reach -addr 10.1.0.70 [-interval 10ms] [-timeout 30s]
//
// It opens a raw ICMP socket (root), prints "ready" on stdout, then sends
// one echo request every -interval (sequence numbers 1, 2, …) and prints,
// on the first echo reply from -addr carrying its identifier:
//
//	first_reply_unix_us=1763900000123456 sent=57 seq=55 unreach=0 elapsed_ms=561.2
//
// first_reply_unix_us is the wall clock (CLOCK_REALTIME, microseconds) when
// the reply was read, so a caller can subtract its own timestamp; seq is the
// request it answers (replies to requests queued on the way count: the
// path works from then on); unreach counts ICMP errors received about the
// probes (destination unreachable and the like) before the reply. It exits
// 1 after -timeout without a reply, printing the same counts.
package main

import (
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"runtime"
	"syscall"
	"time"
)

func main() {
	var (
		addr     = flag.String("addr", "", "IPv4 address to poll")
		interval = flag.Duration("interval", 10*time.Millisecond, "time between echo requests")
		timeout  = flag.Duration("timeout", 30*time.Second, "give up after this long")
	)
	flag.Parse()
	runtime.LockOSThread()
	if err := run(*addr, *interval, *timeout); err != nil {
		fmt.Fprintln(os.Stderr, "reach:", err)
		os.Exit(1)
	}
}

func checksum(b []byte) uint16 {
	var s uint32
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(binary.BigEndian.Uint16(b[i:]))
	}
	if len(b)%2 == 1 {
		s += uint32(b[len(b)-1]) << 8
	}
	for s>>16 != 0 {
		s = s&0xffff + s>>16
	}
	return ^uint16(s)
}

func run(addr string, interval, timeout time.Duration) error {
	ip, err := netip.ParseAddr(addr)
	if err != nil || !ip.Is4() {
		return fmt.Errorf("-addr %q: want an IPv4 address", addr)
	}
	if interval <= 0 {
		return errors.New("-interval must be positive")
	}
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_RAW|syscall.SOCK_CLOEXEC, syscall.IPPROTO_ICMP)
	if err != nil {
		return fmt.Errorf("raw ICMP socket (needs root): %w", err)
	}
	defer syscall.Close(fd)
	// Short receive timeout: the loop interleaves sending and reading.
	tv := syscall.NsecToTimeval(time.Millisecond.Nanoseconds())
	if err := syscall.SetsockoptTimeval(fd, syscall.SOL_SOCKET, syscall.SO_RCVTIMEO, &tv); err != nil {
		return err
	}
	dst := &syscall.SockaddrInet4{Addr: ip.As4()}
	id := uint16(os.Getpid())
	fmt.Println("ready")

	start := time.Now()
	deadline := start.Add(timeout)
	next := start
	var sent, unreach int
	pkt := make([]byte, 16)
	buf := make([]byte, 1500)
	for {
		now := time.Now()
		if now.After(deadline) {
			fmt.Printf("sent=%d unreach=%d\n", sent, unreach)
			return fmt.Errorf("no echo reply from %s after %v", ip, timeout)
		}
		if !now.Before(next) {
			sent++
			clear(pkt)
			pkt[0] = 8 // echo request
			binary.BigEndian.PutUint16(pkt[4:], id)
			binary.BigEndian.PutUint16(pkt[6:], uint16(sent))
			binary.BigEndian.PutUint64(pkt[8:], uint64(now.UnixNano()))
			binary.BigEndian.PutUint16(pkt[2:], checksum(pkt))
			if err := syscall.Sendto(fd, pkt, 0, dst); err != nil {
				// No route yet, or a neighbor that failed: keep polling.
				unreach++
			}
			next = next.Add(interval)
			if next.Before(now) {
				next = now.Add(interval)
			}
		}
		n, from, err := syscall.Recvfrom(fd, buf, 0)
		if err != nil {
			if err == syscall.EAGAIN || err == syscall.EINTR {
				continue
			}
			return fmt.Errorf("recvfrom: %w", err)
		}
		got := time.Now()
		// A raw IPv4 socket returns the IP header too.
		if n < 20 {
			continue
		}
		ihl := int(buf[0]&0x0f) * 4
		if n < ihl+8 {
			continue
		}
		icmp := buf[ihl:n]
		src, ok := from.(*syscall.SockaddrInet4)
		if !ok {
			continue
		}
		switch icmp[0] {
		case 0: // echo reply
			if netip.AddrFrom4(src.Addr) != ip || binary.BigEndian.Uint16(icmp[4:]) != id {
				continue
			}
			fmt.Printf("first_reply_unix_us=%d sent=%d seq=%d unreach=%d elapsed_ms=%.1f\n",
				got.UnixMicro(), sent, binary.BigEndian.Uint16(icmp[6:]), unreach,
				float64(got.Sub(start).Microseconds())/1e3)
			return nil
		case 3, 11: // destination unreachable, time exceeded: about our probe?
			// The quoted datagram: IP header, then our ICMP header.
			q := icmp[8:]
			if len(q) >= 20 {
				qihl := int(q[0]&0x0f) * 4
				if len(q) >= qihl+8 && q[qihl] == 8 && binary.BigEndian.Uint16(q[qihl+4:]) == id {
					unreach++
				}
			}
		}
	}
}
