package rawsock

import (
	"errors"
	"net"
	"strconv"
	"syscall"
	"testing"
	"time"
)

func TestMicros(t *testing.T) {
	lat := []time.Duration{1 * time.Microsecond, 2 * time.Microsecond, 3 * time.Microsecond, 4 * time.Microsecond}
	for _, c := range []struct {
		p    float64
		want float64
	}{{0, 1}, {0.5, 3}, {0.99, 4}, {1, 4}} {
		if got := Micros(lat, c.p); got != c.want {
			t.Errorf("Micros(p=%v) = %v, want %v", c.p, got, c.want)
		}
	}
	if got := Micros(nil, 0.5); got != 0 {
		t.Errorf("Micros(empty) = %v, want 0", got)
	}
}

func TestSockaddrRefusesIPv6AndGarbage(t *testing.T) {
	for _, s := range []string{"[::1]:80", "10.0.0.1", "x:1"} {
		if _, err := Sockaddr(s); err == nil {
			t.Errorf("Sockaddr(%q) accepted", s)
		}
	}
	sa, err := Sockaddr("10.1.2.3:8080")
	if err != nil || sa.Port != 8080 || sa.Addr != [4]byte{10, 1, 2, 3} {
		t.Fatalf("Sockaddr = %+v, %v", sa, err)
	}
}

func TestListenAcceptsAConnection(t *testing.T) {
	fd, err := Listen("127.0.0.1:0", ListenOptions{Backlog: 4, ResetOnClose: true})
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(fd)
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	port := sa.(*syscall.SockaddrInet4).Port
	// ResetOnClose: the accepted socket's close sends RST, which the client
	// sees either on connect (if it lands first) or on its next read.
	done := make(chan error, 1)
	go func() {
		c, err := net.Dial("tcp4", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err == nil {
			_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
			_, err = c.Read(make([]byte, 1))
			c.Close()
		}
		done <- err
	}()
	nfd, err := Accept(fd)
	if err != nil {
		t.Fatal(err)
	}
	syscall.Close(nfd)
	if err := <-done; !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("client: %v, want connection reset (SO_LINGER 0)", err)
	}
	if _, err := Listen("127.0.0.1:"+strconv.Itoa(port), ListenOptions{Backlog: 4}); err == nil {
		t.Fatal("a second listener on a port in use")
	}
}
