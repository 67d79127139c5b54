package lbannounce

import (
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/podnet/podnet/internal/testutil"
)

// pair is two namespaces on one veth: "host" (where the responder runs,
// eth0 10.9.0.1/24, fd00:9::1/64) and "lan" (a machine of the LAN, eth0
// 10.9.0.2/24, fd00:9::2/64).
func pair(t *testing.T) (host, lan *testutil.NetNS, hostMAC string) {
	t.Helper()
	host, lan = testutil.NewNetNS(t), testutil.NewNetNS(t)
	host.MustExec(t, "ip", "link", "add", "eth0", "type", "veth", "peer", "name", "eth0", "netns", lan.Name)
	for i, ns := range []*testutil.NetNS{host, lan} {
		// No duplicate address detection: addresses (and the link-local
		// one NDP sends from) are usable at once.
		ns.MustExec(t, "sysctl", "-qw", "net.ipv6.conf.eth0.accept_dad=0")
		ns.MustExec(t, "sysctl", "-qw", "net.ipv4.neigh.eth0.locktime=0")
		// One request, given up after 200 ms: an unanswered one fails fast.
		ns.MustExec(t, "sysctl", "-qw", "net.ipv4.neigh.eth0.mcast_solicit=1", "net.ipv4.neigh.eth0.retrans_time_ms=200")
		ns.MustExec(t, "ip", "addr", "add", fmt.Sprintf("10.9.0.%d/24", i+1), "dev", "eth0")
		ns.MustExec(t, "ip", "addr", "add", fmt.Sprintf("fd00:9::%d/64", i+1), "dev", "eth0", "nodad")
		ns.MustExec(t, "ip", "link", "set", "eth0", "up")
	}
	// NDP answers from the link-local address: wait until it is usable.
	testutil.Until(t, 5*time.Second, "the host's link-local address", func() bool {
		out, _ := host.Exec("ip", "-6", "-o", "addr", "show", "dev", "eth0", "scope", "link")
		return strings.Contains(out, "fe80") && !strings.Contains(out, "tentative")
	})
	f := strings.Fields(host.MustExec(t, "ip", "-o", "link", "show", "eth0"))
	for i := 0; i+1 < len(f); i++ {
		if f[i] == "link/ether" {
			return host, lan, f[i+1]
		}
	}
	t.Fatalf("no MAC in %v", f)
	return nil, nil, ""
}

// poke sends a datagram from ns to a, so that ns resolves a (no ping on
// these machines).
func poke(t *testing.T, ns *testutil.NetNS, a string) {
	t.Helper()
	_ = ns.Do(func() error {
		c, err := net.Dial("udp", net.JoinHostPort(a, "9"))
		if err != nil {
			return err
		}
		defer c.Close()
		_, err = c.Write([]byte("x"))
		return err
	})
}

// unanswered asks ns to resolve a and waits until the kernel gives up
// (the entry FAILED): nobody answered.
func unanswered(t *testing.T, ns *testutil.NetNS, a string) {
	t.Helper()
	poke(t, ns, a)
	testutil.Until(t, 5*time.Second, a+"'s resolution to end", func() bool {
		out, _ := ns.Exec("ip", "neigh", "show", a, "dev", "eth0")
		return strings.Contains(out, "FAILED") || strings.Contains(out, "lladdr")
	})
	if m := neigh(t, ns, a); m != "" {
		t.Fatalf("%s resolved to %s: nobody should answer for it", a, m)
	}
}

// neigh is lan's neighbor entry for a ("" when none resolved).
func neigh(t *testing.T, lan *testutil.NetNS, a string) string {
	out, _ := lan.Exec("ip", "neigh", "show", a, "dev", "eth0")
	f := strings.Fields(out)
	for i := 0; i+1 < len(f); i++ {
		if f[i] == "lladdr" {
			return f[i+1]
		}
	}
	return ""
}

// The responder answers ARP and NDP for its addresses with the host's
// MAC, for nothing else, announces an address it adds (the LAN's stale
// cache entry moves to it), and stops answering what it is no longer
// given.
func TestKernelResponder(t *testing.T) {
	host, lan, mac := pair(t)
	r := NewResponder(nil)
	t.Cleanup(r.Close)
	// A stale entry elsewhere for .101, as after a takeover.
	lan.MustExec(t, "ip", "neigh", "replace", "10.9.0.101", "lladdr", "02:00:00:00:00:99", "dev", "eth0", "nud", "stale")
	set := func(m map[netip.Addr]string) {
		t.Helper()
		if err := host.Do(func() error { return r.Set(m) }); err != nil {
			t.Fatal(err)
		}
	}
	set(map[netip.Addr]string{netip.MustParseAddr("10.9.0.100"): "eth0", netip.MustParseAddr("10.9.0.101"): "eth0",
		netip.MustParseAddr("fd00:9::100"): "eth0"})
	testutil.Until(t, 5*time.Second, "the gratuitous ARP moves the LAN's entry for 10.9.0.101", func() bool {
		return neigh(t, lan, "10.9.0.101") == mac
	})
	for _, a := range []string{"10.9.0.100", "fd00:9::100"} {
		testutil.Until(t, 10*time.Second, "the LAN resolves "+a+" to the host's MAC", func() bool {
			poke(t, lan, a)
			return neigh(t, lan, a) == mac
		})
	}
	// Not given: not answered.
	unanswered(t, lan, "10.9.0.102")
	// Taken away: no longer answered.
	set(map[netip.Addr]string{netip.MustParseAddr("10.9.0.101"): "eth0"})
	if got := r.Answering(); len(got) != 1 {
		t.Fatalf("answering %v", got)
	}
	lan.MustExec(t, "ip", "neigh", "flush", "dev", "eth0")
	unanswered(t, lan, "10.9.0.100")
	r.Close()
	lan.MustExec(t, "ip", "neigh", "flush", "dev", "eth0")
	unanswered(t, lan, "10.9.0.101")
}
