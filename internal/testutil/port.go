package testutil

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"testing"
)

// FreePort returns a loopback TCP port that was free a moment ago, for a
// server a test starts (and may stop and start again) on a fixed port.
//
// It picks below the kernel's ephemeral range rather than asking for port
// 0: a port from that range is the next one any outgoing connection may
// take as its source port, so a server that binds it a few seconds later,
// or binds it again after a restart, can find it taken. Below the range
// only an explicit bind can take it.
func FreePort(t testing.TB) int {
	t.Helper()
	low := ephemeralLow()
	const floor = 10000
	for range 200 {
		port := floor + rand.IntN(low-floor)
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			continue
		}
		_ = l.Close()
		return port
	}
	t.Fatalf("no free loopback port in %d–%d after 200 tries", floor, low-1)
	return 0
}

// ephemeralLow is the first port of net.ipv4.ip_local_port_range (32768
// when it cannot be read or leaves too little room below it).
func ephemeralLow() int {
	var lo, hi int
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err == nil {
		_, err = fmt.Sscan(string(b), &lo, &hi)
	}
	if err != nil || lo < 20000 {
		return 32768
	}
	return lo
}
