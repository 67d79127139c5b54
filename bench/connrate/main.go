// Command connrate measures TCP connection rate (benchmark B2c,
// README.md "Benchmarks") and serves as the accept-and-close backend for it.
//
// Client (default): connect to -addr over and over, one connection at a
// time, and close each with RST (SO_LINGER 0), so neither side keeps
// TIME_WAIT state. It stops after -d or -max connections, whichever comes
// first, and prints one line of key=value pairs:
//
//	conns=58012 errs=0 secs=3.000 rate=19337 p50_us=42.1 p90_us=55.0 p99_us=98.7 max_us=1520.3
//
// conns counts connects that succeeded; errs counts failed ones (refused,
// timed out); latencies are those of connect(2) alone. It exits 1 if more
// than -maxerr of the attempts failed or none succeeded.
//
// Server (-serve ADDR): listen on ADDR (backlog 4096) and close every
// accepted connection at once. It exits on SIGTERM/SIGINT or after
// -lifetime, whichever comes first, so a forgotten server cannot linger.
//
// Both sides use raw blocking syscalls on one locked OS thread: the Go
// poller would add tens of microseconds per connection. Pin them to
// separate CPUs with taskset.
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"runtime"
	"slices"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/podnet/podnet/bench/internal/rawsock"
)

func main() {
	var (
		addr     = flag.String("addr", "", "client: IPv4 address:port to connect to")
		dur      = flag.Duration("d", 3*time.Second, "client: how long to run")
		maxConns = flag.Int("max", 200000, "client: stop after this many connection attempts")
		timeout  = flag.Duration("connect-timeout", time.Second, "client: timeout of one connect")
		maxErr   = flag.Float64("maxerr", 0.01, "client: fail if more than this fraction of attempts failed")
		serve    = flag.String("serve", "", "server: IPv4 address:port to listen on (e.g. 0.0.0.0:80)")
		lifetime = flag.Duration("lifetime", 5*time.Minute, "server: exit after this long")
	)
	flag.Parse()
	runtime.LockOSThread()
	var err error
	switch {
	case *serve != "" && *addr == "":
		err = runServer(*serve, *lifetime)
	case *addr != "" && *serve == "":
		err = runClient(*addr, *dur, *maxConns, *timeout, *maxErr)
	default:
		err = errors.New("want exactly one of -addr (client) or -serve (server)")
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "connrate:", err)
		os.Exit(1)
	}
}

func runServer(addr string, lifetime time.Duration) error {
	fd, err := rawsock.Listen(addr, rawsock.ListenOptions{Backlog: 4096, ResetOnClose: true})
	if err != nil {
		return err
	}
	var accepted atomic.Uint64
	rawsock.ExitAfter("connrate", lifetime, func() { fmt.Printf("accepted=%d\n", accepted.Load()) })
	for {
		nfd, err := rawsock.Accept(fd)
		if err != nil {
			return err
		}
		syscall.Close(nfd)
		accepted.Add(1)
	}
}

func runClient(addr string, dur time.Duration, maxConns int, timeout time.Duration, maxErr float64) error {
	sa, err := rawsock.Sockaddr(addr)
	if err != nil {
		return err
	}
	tv := syscall.NsecToTimeval(timeout.Nanoseconds())
	lat := make([]time.Duration, 0, min(maxConns, 1<<20))
	var errs int
	errKinds := map[syscall.Errno]int{}
	start := time.Now()
	deadline := start.Add(dur)
	for n := 0; n < maxConns; n++ {
		if n%64 == 0 && time.Now().After(deadline) {
			break
		}
		fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
		if err != nil {
			return err
		}
		// SO_SNDTIMEO bounds a blocking connect(2).
		_ = syscall.SetsockoptTimeval(fd, syscall.SOL_SOCKET, syscall.SO_SNDTIMEO, &tv)
		t0 := time.Now()
		err = syscall.Connect(fd, sa)
		d := time.Since(t0)
		if err == nil {
			lat = append(lat, d)
			_ = syscall.SetsockoptLinger(fd, syscall.SOL_SOCKET, syscall.SO_LINGER, &syscall.Linger{Onoff: 1})
		} else {
			errs++
			if en, ok := err.(syscall.Errno); ok {
				errKinds[en]++
			} else {
				return err
			}
		}
		syscall.Close(fd)
	}
	secs := time.Since(start).Seconds()
	slices.Sort(lat)
	q := func(p float64) float64 { return rawsock.Micros(lat, p) }
	fmt.Printf("conns=%d errs=%d secs=%.3f rate=%.0f p50_us=%.1f p90_us=%.1f p99_us=%.1f max_us=%.1f\n",
		len(lat), errs, secs, float64(len(lat))/secs, q(0.50), q(0.90), q(0.99), q(1))
	for en, n := range errKinds {
		fmt.Fprintf(os.Stderr, "connrate: %d connects to %s failed: %v\n", n, addr, en)
	}
	attempts := len(lat) + errs
	if len(lat) == 0 || float64(errs) > maxErr*float64(attempts) {
		return fmt.Errorf("%d of %d connects to %s failed", errs, attempts, addr)
	}
	return nil
}
