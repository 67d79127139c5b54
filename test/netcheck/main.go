// Command netcheck is a tiny static network test tool baked into podnet's
// test image (Debian's busybox-static has no UDP server and no verbose TCP
// server). Every server line names the peer, so tests can check which
// source address a connection arrived from.
//
//	netcheck tcp-server PORT        accept; print "from IP:PORT"; answer "hello"
//	netcheck udp-server PORT        print "from IP:PORT MSG" per datagram; echo it back
//	netcheck udp-send HOST:PORT MSG send MSG, print the reply (2 s timeout)
package main

import (
	"fmt"
	"net"
	"os"
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
	case "udp-send":
		msg := "ping"
		if len(os.Args) > 3 {
			msg = os.Args[3]
		}
		err = udpSend(os.Args[2], msg)
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

func udpSend(addr, msg string) error {
	c, err := net.Dial("udp", addr)
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
