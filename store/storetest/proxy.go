package storetest

import (
	"io"
	"net"
	"sync"
	"testing"
)

// proxy forwards TCP connections from its address to target while up;
// kill resets every connection at once, as the death of the target's
// process would, and resets new ones until start.
//
// The listening socket is held from creation to the end of the test, not
// closed on kill and bound again on start: a port given up for the seconds
// a member is down can be taken by any outgoing connection's ephemeral
// port (the cluster's own peer connections make many), and the restart
// would then fail with "address already in use".
type proxy struct {
	addr, target string
	mu           sync.Mutex
	conns        map[net.Conn]bool // nil while down
}

// newProxy listens on a fresh loopback port for target; it is down until
// start.
func newProxy(t testing.TB, target string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("proxy for %s: %v", target, err)
	}
	p := &proxy{addr: ln.Addr().String(), target: target}
	t.Cleanup(func() {
		_ = ln.Close()
		p.kill()
	})
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go p.serve(c)
		}
	}()
	return p
}

func (p *proxy) start() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.conns == nil {
		p.conns = map[net.Conn]bool{}
	}
}

func (p *proxy) serve(c net.Conn) {
	if !p.up() {
		reset(c)
		return
	}
	u, err := net.Dial("tcp", p.target)
	if err != nil {
		reset(c)
		return
	}
	if !p.track(c, u) {
		return
	}
	go func() { _, _ = io.Copy(u, c); _ = u.Close() }()
	_, _ = io.Copy(c, u)
	_ = c.Close()
}

func (p *proxy) up() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.conns != nil
}

// track registers both ends, or resets them when the proxy was killed
// meanwhile.
func (p *proxy) track(cs ...net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.conns == nil {
		for _, c := range cs {
			reset(c)
		}
		return false
	}
	for _, c := range cs {
		p.conns[c] = true
	}
	return true
}

func (p *proxy) kill() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		reset(c)
	}
	p.conns = nil
}

// reset closes c with an RST, like a killed process's sockets.
func reset(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = c.Close()
}
