//go:build e2e

package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// bird is a BIRD 2 router (Debian's bird2) in the lab's client
// namespace, peering over eBGP with every host: the router a
// LoadBalancer's BGP pool is announced to. Its kernel protocol installs
// what it learns into the client's routing table, several equal routes
// as one ECMP route.
type bird struct {
	l    *Lab
	dir  string
	sock string
}

// Autonomous systems of the lab: the router's and the hosts'.
const (
	routerASN = 64513
	hostASN   = 64512
)

// startBird starts the router and stops it (by PID) when the test ends,
// with the routes it installed.
func startBird(t *testing.T, l *Lab) *bird {
	t.Helper()
	dir, err := os.MkdirTemp(l.Dir, "bird-")
	if err != nil {
		t.Fatal(err)
	}
	b := &bird{l: l, dir: dir, sock: filepath.Join(dir, "bird.ctl")}
	var conf strings.Builder
	fmt.Fprintf(&conf, `router id %s;
protocol device {}
protocol kernel { ipv4 { export all; import none; }; merge paths on; learn off; }
template bgp hosts { local %s as %d; ipv4 { import all; export none; }; hold time 9; connect retry time 2; error wait time 1,5; }
`, l.ClientIP(), l.ClientIP(), routerASN)
	for _, h := range l.Hosts() {
		fmt.Fprintf(&conf, "protocol bgp %s from hosts { neighbor %s as %d; }\n", h, l.HostIP(h), hostASN)
	}
	if err := os.WriteFile(filepath.Join(dir, "bird.conf"), []byte(conf.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	pidFile := filepath.Join(dir, "bird.pid")
	l.MustClient(t, "bird", "-c", filepath.Join(dir, "bird.conf"), "-s", b.sock, "-P", pidFile)
	t.Cleanup(func() {
		if raw, err := os.ReadFile(pidFile); err == nil {
			if pid, err := strconv.Atoi(strings.TrimSpace(string(raw))); err == nil && pid > 0 {
				_ = syscall.Kill(pid, syscall.SIGTERM)
				_ = Poll(10*time.Second, func() (bool, string) { return !ProcessAlive(pid), "bird still running" })
			}
		}
		_, _ = l.Client("ip", "route", "flush", "proto", "bird")
		_ = os.RemoveAll(dir)
	})
	return b
}

// nextHops are the next hops of the client's route to addr, sorted
// (none when there is no route learned from BIRD).
func (b *bird) nextHops(t *testing.T, addr string) []string {
	t.Helper()
	out, err := b.l.Client("ip", "route", "show", addr+"/32", "proto", "bird")
	if err != nil {
		t.Fatalf("client routes: %v", err)
	}
	var hops []string
	f := strings.Fields(out)
	for i := 0; i+1 < len(f); i++ {
		if f[i] == "via" {
			hops = append(hops, f[i+1])
		}
	}
	slices.Sort(hops)
	return hops
}

// waitHops polls until the client's route to addr goes over exactly the
// hosts given (none: withdrawn everywhere) and returns how long it took.
func (b *bird) waitHops(t *testing.T, timeout time.Duration, addr string, hosts ...string) time.Duration {
	t.Helper()
	var want []string
	for _, h := range hosts {
		want = append(want, b.l.HostIP(h))
	}
	slices.Sort(want)
	start := time.Now()
	WaitFor(t, timeout, func() (bool, string) {
		got := b.nextHops(t, addr)
		proto, _ := b.l.Client("birdc", "-s", b.sock, "show", "protocols")
		return slices.Equal(got, want), fmt.Sprintf("route to %s via %v, want %v; BIRD: %s", addr, got, want, proto)
	})
	return time.Since(start)
}
