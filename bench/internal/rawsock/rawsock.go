// Package rawsock holds what the benchmark tools (connrate, rr) share:
// IPv4 listening sockets on raw blocking syscalls, a bounded server
// lifetime, and latency percentiles. Raw syscalls on one locked OS thread,
// because the Go poller would add a wake-up per message to what is measured.
package rawsock

import (
	"fmt"
	"net/netip"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// Sockaddr parses an IPv4 address:port.
func Sockaddr(s string) (*syscall.SockaddrInet4, error) {
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		return nil, err
	}
	if !ap.Addr().Is4() {
		return nil, fmt.Errorf("%s: only IPv4 is supported", s)
	}
	return &syscall.SockaddrInet4{Port: int(ap.Port()), Addr: ap.Addr().As4()}, nil
}

// ListenOptions shape the listening socket.
type ListenOptions struct {
	Backlog int
	// ResetOnClose sets SO_LINGER 0, which accepted sockets inherit: their
	// close sends RST and leaves no TIME_WAIT.
	ResetOnClose bool
}

// Listen returns a blocking TCP socket listening on addr (SO_REUSEADDR).
func Listen(addr string, o ListenOptions) (int, error) {
	sa, err := Sockaddr(addr)
	if err != nil {
		return -1, err
	}
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	fail := func(err error) (int, error) {
		syscall.Close(fd)
		return -1, err
	}
	if err := syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 1); err != nil {
		return fail(err)
	}
	if o.ResetOnClose {
		if err := syscall.SetsockoptLinger(fd, syscall.SOL_SOCKET, syscall.SO_LINGER, &syscall.Linger{Onoff: 1}); err != nil {
			return fail(err)
		}
	}
	if err := syscall.Bind(fd, sa); err != nil {
		return fail(fmt.Errorf("bind %s: %w", addr, err))
	}
	if err := syscall.Listen(fd, o.Backlog); err != nil {
		return fail(fmt.Errorf("listen on %s: %w", addr, err))
	}
	return fd, nil
}

// Accept accepts the next connection, retrying on EINTR and ECONNABORTED.
func Accept(fd int) (int, error) {
	for {
		nfd, _, err := syscall.Accept4(fd, syscall.SOCK_CLOEXEC)
		if err == syscall.EINTR || err == syscall.ECONNABORTED {
			continue
		}
		if err != nil {
			return -1, fmt.Errorf("accept: %w", err)
		}
		return nfd, nil
	}
}

// ExitAfter ends the process (exit 0) on SIGTERM or SIGINT, or once
// lifetime has passed, so a forgotten server cannot linger; last runs
// first (a final report), if not nil. tool names the program in messages.
func ExitAfter(tool string, lifetime time.Duration, last func()) {
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		select {
		case <-stop:
		case <-time.After(lifetime):
			fmt.Fprintf(os.Stderr, "%s: server lifetime %v over\n", tool, lifetime)
		}
		if last != nil {
			last()
		}
		os.Exit(0)
	}()
}

// Micros is the p-quantile (0..1, nearest rank from below) of sorted, in
// microseconds; 0 when sorted is empty.
func Micros(sorted []time.Duration, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	return float64(sorted[min(len(sorted)-1, int(p*float64(len(sorted))))].Nanoseconds()) / 1e3
}
