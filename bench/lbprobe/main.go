// Command lbprobe watches a TCP service from outside, for benchmark B18
// (README.md "Benchmarks"): it connects to -addr every -every, each
// attempt bounded by -timeout, counts an attempt served when the server
// sends at least one byte (netcheck id-server answers its name), and
// prints a line whenever the state changes:
//
//	ok 1733590000123456 h2       served (unix µs of the attempt's start, the answer)
//	fail 1733590000223456 i/o timeout
//
// The first line is the first attempt's state. It runs until -d, or
// until killed.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"net"
	"os"
	"strings"
	"time"
)

func main() {
	addr := flag.String("addr", "", "address:port to probe")
	every := flag.Duration("every", 20*time.Millisecond, "time between attempts")
	timeout := flag.Duration("timeout", 200*time.Millisecond, "bound of each attempt")
	d := flag.Duration("d", 10*time.Minute, "how long to probe")
	flag.Parse()
	if *addr == "" {
		fmt.Fprintln(os.Stderr, "usage: lbprobe -addr IP:PORT [-every 20ms] [-timeout 200ms] [-d 10m]")
		os.Exit(2)
	}
	w := bufio.NewWriter(os.Stdout)
	last := ""
	end := time.Now().Add(*d)
	for time.Now().Before(end) {
		start := time.Now()
		state, detail := probe(*addr, *timeout)
		if state+" "+detail != last {
			fmt.Fprintf(w, "%s %d %s\n", state, start.UnixMicro(), detail)
			_ = w.Flush()
			last = state + " " + detail
		}
		time.Sleep(max(0, *every-time.Since(start)))
	}
}

// probe is one attempt: "ok" and the first line answered, or "fail" and
// why (the reason's kind only, so that repeated failures print once).
func probe(addr string, timeout time.Duration) (string, string) {
	c, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return "fail", kind(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(timeout))
	line, err := bufio.NewReader(c).ReadString('\n')
	if line == "" {
		return "fail", kind(err)
	}
	return "ok", strings.TrimSpace(line)
}

func kind(err error) string {
	switch {
	case err == nil:
		return "no answer"
	case strings.Contains(err.Error(), "refused"):
		return "refused"
	case strings.Contains(err.Error(), "timeout"):
		return "timeout"
	case strings.Contains(err.Error(), "unreachable"):
		return "unreachable"
	}
	return "error"
}
