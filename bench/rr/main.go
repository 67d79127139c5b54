// Command rr measures TCP request/response latency (benchmark B9l of
// README.md "Benchmarks", netperf's TCP_RR) and serves as its echo backend.
//
// Client (default): open one connection to -addr (TCP_NODELAY), then send
// one byte and wait for the one-byte answer, over and over, until -n round
// trips or -d has passed, whichever comes first. Round trips during the
// first -warmup are not counted. It prints one line of key=value pairs:
//
//	rtts=81234 secs=5.000 rate=16247 p50_us=58.1 p90_us=66.0 p99_us=91.3 p999_us=180.2 max_us=1520.3 mean_us=61.5
//
// Latencies are those of one write(2)+read(2) pair, taken with the
// monotonic clock. It exits 1 if the connection fails or breaks.
//
// Server (-serve ADDR): listen on ADDR and, for each accepted connection
// in turn, answer every byte read with one byte, until the peer closes.
// It exits on SIGTERM/SIGINT or after -lifetime, whichever comes first, so
// a forgotten server cannot linger.
//
// Both sides use raw blocking syscalls on one locked OS thread (the Go
// poller adds a wake-up per message). Pin them to separate CPUs with
// taskset.
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"runtime"
	"slices"
	"syscall"
	"time"

	"github.com/podnet/podnet/bench/internal/rawsock"
)

func main() {
	var (
		addr     = flag.String("addr", "", "client: IPv4 address:port to connect to")
		dur      = flag.Duration("d", 5*time.Second, "client: how long to measure (after -warmup)")
		maxRT    = flag.Int("n", 2_000_000, "client: stop after this many measured round trips")
		warmup   = flag.Duration("warmup", 500*time.Millisecond, "client: round trips not counted at the start")
		timeout  = flag.Duration("io-timeout", 2*time.Second, "client: timeout of connect and of one round trip")
		serve    = flag.String("serve", "", "server: IPv4 address:port to listen on (e.g. 0.0.0.0:5301)")
		lifetime = flag.Duration("lifetime", 5*time.Minute, "server: exit after this long")
	)
	flag.Parse()
	runtime.LockOSThread()
	var err error
	switch {
	case *serve != "" && *addr == "":
		err = runServer(*serve, *lifetime)
	case *addr != "" && *serve == "":
		err = runClient(*addr, *dur, *warmup, *maxRT, *timeout)
	default:
		err = errors.New("want exactly one of -addr (client) or -serve (server)")
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "rr:", err)
		os.Exit(1)
	}
}

func runServer(addr string, lifetime time.Duration) error {
	fd, err := rawsock.Listen(addr, rawsock.ListenOptions{Backlog: 16})
	if err != nil {
		return err
	}
	rawsock.ExitAfter("rr", lifetime, nil)
	var served int
	buf := make([]byte, 64)
	for {
		nfd, err := rawsock.Accept(fd)
		if err != nil {
			return err
		}
		_ = syscall.SetsockoptInt(nfd, syscall.IPPROTO_TCP, syscall.TCP_NODELAY, 1)
		for {
			n, err := syscall.Read(nfd, buf)
			if err == syscall.EINTR {
				continue
			}
			if err != nil || n == 0 {
				break
			}
			// One answer per byte: the client sends one at a time.
			if _, err := writeFull(nfd, buf[:n]); err != nil {
				break
			}
		}
		syscall.Close(nfd)
		served++
		fmt.Fprintf(os.Stderr, "rr: connection %d closed\n", served)
	}
}

func writeFull(fd int, b []byte) (int, error) {
	total := 0
	for total < len(b) {
		n, err := syscall.Write(fd, b[total:])
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return total, err
		}
		total += n
	}
	return total, nil
}

func runClient(addr string, dur, warmup time.Duration, maxRT int, timeout time.Duration) error {
	sa, err := rawsock.Sockaddr(addr)
	if err != nil {
		return err
	}
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer syscall.Close(fd)
	// SO_SNDTIMEO bounds a blocking connect(2) and write(2), SO_RCVTIMEO a
	// read(2): a path that stops answering ends the run, not hangs it.
	tv := syscall.NsecToTimeval(timeout.Nanoseconds())
	_ = syscall.SetsockoptTimeval(fd, syscall.SOL_SOCKET, syscall.SO_SNDTIMEO, &tv)
	_ = syscall.SetsockoptTimeval(fd, syscall.SOL_SOCKET, syscall.SO_RCVTIMEO, &tv)
	if err := syscall.Connect(fd, sa); err != nil {
		return fmt.Errorf("connect %s: %w", addr, err)
	}
	if err := syscall.SetsockoptInt(fd, syscall.IPPROTO_TCP, syscall.TCP_NODELAY, 1); err != nil {
		return err
	}
	lat := make([]time.Duration, 0, min(maxRT, 1<<22))
	out, in := []byte{'x'}, make([]byte, 1)
	start := time.Now()
	measureFrom := start.Add(warmup)
	deadline := measureFrom.Add(dur)
	var t1 time.Time
	for len(lat) < maxRT {
		t0 := time.Now()
		if t0.After(deadline) {
			break
		}
		if _, err := writeFull(fd, out); err != nil {
			return fmt.Errorf("write after %d round trips: %w", len(lat), err)
		}
		for {
			n, err := syscall.Read(fd, in)
			if err == syscall.EINTR {
				continue
			}
			if err != nil {
				return fmt.Errorf("read after %d round trips: %w", len(lat), err)
			}
			if n == 0 {
				return fmt.Errorf("server closed the connection after %d round trips", len(lat))
			}
			break
		}
		t1 = time.Now()
		if t0.After(measureFrom) {
			lat = append(lat, t1.Sub(t0))
		}
	}
	if len(lat) == 0 {
		return errors.New("no round trip measured (is -d longer than zero?)")
	}
	secs := t1.Sub(measureFrom).Seconds()
	var sum time.Duration
	for _, d := range lat {
		sum += d
	}
	slices.Sort(lat)
	q := func(p float64) float64 { return rawsock.Micros(lat, p) }
	fmt.Printf("rtts=%d secs=%.3f rate=%.0f p50_us=%.1f p90_us=%.1f p99_us=%.1f p999_us=%.1f max_us=%.1f mean_us=%.1f\n",
		len(lat), secs, float64(len(lat))/secs, q(0.50), q(0.90), q(0.99), q(0.999), q(1),
		float64(sum.Nanoseconds())/float64(len(lat))/1e3)
	return nil
}
