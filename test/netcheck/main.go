// Command netcheck is a tiny static network test tool baked into podnet's
// test image (Debian's busybox-static has no UDP server and no verbose TCP
// server). Every server line names the peer, so tests can check which
// source address a connection arrived from.
//
//	netcheck tcp-server PORT        accept; print "from IP:PORT"; answer "hello"
//	netcheck udp-server PORT        print "from IP:PORT MSG" per datagram; echo it back
//	netcheck udp-send HOST:PORT MSG [SRCPORT]
//	                                send MSG (from SRCPORT if given), print
//	                                the reply (2 s timeout)
//	netcheck id-server PORT TEXT    accept; answer TEXT and close, printing
//	                                nothing (a benchmark's probe target)
//	netcheck echo-server PORT       echo every line back on every connection
//	netcheck stream HOST:PORT SECS  over ONE connection, send a line every
//	                                100 ms for SECS seconds; fail if any
//	                                echo is missing or late (> 2 s)
//	netcheck connect HOST:PORT      TCP connect (2 s); fail if it does not
//	netcheck probe MS ADDR...       TCP connect to every ADDR at once (MS ms
//	                                each); print "ADDR ok|refused|timeout"
//	netcheck keep-trying ADDR SECS [MS]
//	                                TCP connect (MS ms, default 200) every
//	                                50 ms for SECS seconds; print how many
//	                                connected and when the first did
//	netcheck dns SERVER NAME        A query over UDP (2 s): print the rcode
//	                                and addresses; fail on no answer
//	netcheck syn-flood ADDR:PORT COUNT SRC-CIDR
//	                                COUNT TCP SYNs, each from the next
//	                                address of SRC-CIDR (raw socket)
//	netcheck vxlan-send VTEP:PORT VNI DSTMAC SRC DST DPORT MSG
//	                                one VXLAN datagram carrying UDP SRC ->
//	                                DST:DPORT (any inner source)
//	netcheck arp IFACE IP           broadcast an ARP request for IP on
//	                                IFACE; print the MAC of every reply
//	                                seen within a second (one per line)
package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"time"
)

func main() {
	if len(os.Args) < 3 {
		fmt.Fprintln(os.Stderr, "usage: netcheck tcp-server PORT | udp-server PORT | udp-send HOST:PORT MSG")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "tcp-server":
		err = tcpServer(os.Args[2])
	case "udp-server":
		err = udpServer(os.Args[2])
	case "echo-server":
		err = echoServer(os.Args[2])
	case "id-server":
		if len(os.Args) < 4 {
			err = fmt.Errorf("usage: netcheck id-server PORT TEXT")
			break
		}
		err = idServer(os.Args[2], os.Args[3])
	case "stream":
		secs := 10
		if len(os.Args) > 3 {
			_, _ = fmt.Sscanf(os.Args[3], "%d", &secs)
		}
		err = stream(os.Args[2], time.Duration(secs)*time.Second)
	case "connect":
		err = connect(os.Args[2])
	case "probe":
		err = probe(os.Args[2], os.Args[3:])
	case "keep-trying":
		secs := 3
		if len(os.Args) > 3 {
			_, _ = fmt.Sscanf(os.Args[3], "%d", &secs)
		}
		dial := 200
		if len(os.Args) > 4 {
			_, _ = fmt.Sscanf(os.Args[4], "%d", &dial)
		}
		keepTrying(os.Args[2], time.Duration(secs)*time.Second, time.Duration(dial)*time.Millisecond)
	case "dns":
		if len(os.Args) < 4 {
			err = fmt.Errorf("usage: netcheck dns SERVER NAME")
			break
		}
		err = dnsQuery(os.Args[2], os.Args[3])
	case "dns-times":
		if len(os.Args) < 5 {
			err = fmt.Errorf("usage: netcheck dns-times SERVER REPEAT NAME [NAME ...]")
			break
		}
		var repeat int
		if repeat, err = strconv.Atoi(os.Args[3]); err == nil {
			err = dnsTimes(os.Args[2], repeat, os.Args[4:])
		}
	case "dns-gone":
		if len(os.Args) < 5 {
			err = fmt.Errorf("usage: netcheck dns-gone SERVER NAME TIMEOUT-MS")
			break
		}
		err = dnsGone(os.Args[2], os.Args[3], os.Args[4])
	case "syn-flood":
		if len(os.Args) < 5 {
			err = fmt.Errorf("usage: netcheck syn-flood ADDR:PORT COUNT SRC-CIDR")
			break
		}
		err = synFlood(os.Args[2], os.Args[3], os.Args[4])
	case "vxlan-send":
		if len(os.Args) < 9 {
			err = fmt.Errorf("usage: netcheck vxlan-send VTEP:PORT VNI DSTMAC SRC DST DPORT MSG")
			break
		}
		a := os.Args[2:]
		err = vxlanSend(a[0], a[1], a[2], a[3], a[4], a[5], a[6])
	case "arp":
		if len(os.Args) < 4 {
			err = fmt.Errorf("usage: netcheck arp IFACE IP")
			break
		}
		err = arpWhoHas(os.Args[2], os.Args[3])
	case "udp-send":
		msg, src := "ping", ""
		if len(os.Args) > 3 {
			msg = os.Args[3]
		}
		if len(os.Args) > 4 {
			src = os.Args[4]
		}
		err = udpSend(os.Args[2], msg, src)
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "netcheck:", err)
		os.Exit(1)
	}
}

func tcpServer(port string) error {
	l, err := net.Listen("tcp", ":"+port)
	if err != nil {
		return err
	}
	for {
		c, err := l.Accept()
		if err != nil {
			return err
		}
		fmt.Printf("from %s\n", c.RemoteAddr())
		_, _ = fmt.Fprintf(c, "hello %s\n", c.RemoteAddr())
		_ = c.Close()
	}
}

func udpServer(port string) error {
	c, err := net.ListenPacket("udp", ":"+port)
	if err != nil {
		return err
	}
	buf := make([]byte, 65536)
	for {
		n, from, err := c.ReadFrom(buf)
		if err != nil {
			return err
		}
		fmt.Printf("from %s %s\n", from, buf[:n])
		_, _ = c.WriteTo(append([]byte("echo "), buf[:n]...), from)
	}
}

// udpSend sends msg to addr, from port src when given (a client that
// keeps its source port, as a long-lived UDP client does), and prints the
// reply.
func udpSend(addr, msg, src string) error {
	d := net.Dialer{}
	if src != "" {
		p, err := strconv.Atoi(src)
		if err != nil || p < 1 || p > 65535 {
			return fmt.Errorf("source port %q: want 1-65535", src)
		}
		d.LocalAddr = &net.UDPAddr{Port: p}
	}
	c, err := d.Dial("udp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	if _, err := c.Write([]byte(msg)); err != nil {
		return err
	}
	_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
	buf := make([]byte, 65536)
	n, err := c.Read(buf)
	if err != nil {
		return err
	}
	fmt.Println(string(buf[:n]))
	return nil
}

// idServer answers every connection with text and closes it. It logs
// nothing: a probe may connect hundreds of times a second.
func idServer(port, text string) error {
	l, err := net.Listen("tcp", ":"+port)
	if err != nil {
		return err
	}
	reply := []byte(text + "\n")
	for {
		c, err := l.Accept()
		if err != nil {
			return err
		}
		go func() {
			defer c.Close()
			_ = c.SetWriteDeadline(time.Now().Add(2 * time.Second))
			_, _ = c.Write(reply)
		}()
	}
}

func echoServer(port string) error {
	l, err := net.Listen("tcp", ":"+port)
	if err != nil {
		return err
	}
	for {
		c, err := l.Accept()
		if err != nil {
			return err
		}
		fmt.Printf("from %s\n", c.RemoteAddr())
		go func() {
			defer c.Close()
			_, _ = io.Copy(c, c)
		}()
	}
}

func stream(addr string, d time.Duration) error {
	c, err := net.DialTimeout("tcp", addr, 3*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	r := bufio.NewReader(c)
	end := time.Now().Add(d)
	n := 0
	for time.Now().Before(end) {
		n++
		if _, err := fmt.Fprintf(c, "line %d\n", n); err != nil {
			return fmt.Errorf("send line %d: %w", n, err)
		}
		_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
		got, err := r.ReadString('\n')
		if err != nil {
			return fmt.Errorf("echo of line %d: %w", n, err)
		}
		if got != fmt.Sprintf("line %d\n", n) {
			return fmt.Errorf("echo of line %d: got %q", n, got)
		}
		time.Sleep(100 * time.Millisecond)
	}
	fmt.Printf("stream ok: %d lines over one connection from %s\n", n, c.LocalAddr())
	return nil
}
