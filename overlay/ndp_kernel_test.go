package overlay

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/podnet/podnet/internal/nd"
	"github.com/podnet/podnet/internal/testutil"
)

// TestNDPResponderRefuses checks what the bridge's NDP responder must not
// answer, from a container on it: duplicate address detection for a
// remote pool address (the container's address would fail), a target
// outside the pool even though the host routes it to another host, a
// local container's address (its owner answers), and the gateway (the
// host's own address). A remote pool address is answered, as a control.
func TestNDPResponderRefuses(t *testing.T) {
	l := newLab(t, labOptions{hosts: 2, v6: true})
	h1, h2 := l.hosts[0], l.hosts[1]
	c1, c3 := h1.containerIn(l.pool6, ""), h1.containerIn(l.pool6, "")
	c2 := h2.containerIn(l.pool6, "")
	stats := func() nd.Stats { return h1.ov.ResponderStats()[labBridge] }
	testutil.Eventually(t, 5*time.Second, "c1 → c2 over IPv6 (answered for)", func() error { return c1.ping(c2.addr) })
	// The count moves just after the answer leaves: poll.
	testutil.Eventually(t, 3*time.Second, "the responder counting its answer for a remote pool address", func() error {
		if stats().Answered == 0 {
			return fmt.Errorf("no answer counted")
		}
		return nil
	})
	answered := stats().Answered

	// A local container and the gateway: the owner answers, not the
	// responder.
	testutil.Eventually(t, 3*time.Second, "c1 → c3 (local)", func() error { return c1.ping(c3.addr) })
	if mac := neighMAC(t, c1.ns, c3.addr); mac != c3.mac(t) {
		t.Errorf("c1 resolved the local container %s to %q, want its own MAC %s", c3.addr, mac, c3.mac(t))
	}
	gw := l.gateway(l.pool6)
	testutil.Eventually(t, 3*time.Second, "c1 → gateway", func() error { return c1.ping(gw) })

	// Outside the pool: h1 routes fd00:99::/64 into the overlay and c1
	// sees it on-link, yet nobody may answer for it.
	h1.ns.MustExec(t, "ip", "-6", "route", "add", "fd00:99::/64", "dev", DeviceName(labVNI))
	c1.ns.MustExec(t, "ip", "-6", "route", "add", "fd00:99::/64", "dev", "eth0")
	out := netip.MustParseAddr("fd00:99::5")
	before := stats()
	testutil.Eventually(t, 5*time.Second, "the responder sees c1's solicitation for "+out.String(), func() error {
		_ = c1.ping(out)
		if s := stats(); s.Declined == before.Declined {
			return fmt.Errorf("declined %d", s.Declined)
		}
		return nil
	})
	if mac := neighMAC(t, c1.ns, out); mac != "" {
		t.Errorf("c1 resolved %s, outside the pool, to %s", out, mac)
	}
	if s := stats(); s.Answered != answered {
		t.Errorf("answered %d times for the local container, the gateway and an address outside the pool", s.Answered-answered)
	}

	// Duplicate address detection for a remote pool address: c1 takes
	// c2's address with DAD on; the responder must let it pass.
	before = stats()
	c1.ns.MustExec(t, "sysctl", "-qw", "net.ipv6.conf.eth0.accept_dad=1")
	c1.ns.MustExec(t, "ip", "addr", "add", c2.addr.String()+"/128", "dev", "eth0")
	var flags string
	testutil.Until(t, 10*time.Second, "c1's DAD for "+c2.addr.String()+" to end", func() bool {
		flags = c1.ns.MustExec(t, "ip", "-6", "-o", "addr", "show", "dev", "eth0", "to", c2.addr.String()+"/128")
		return !strings.Contains(flags, "tentative")
	})
	if strings.Contains(flags, "dadfailed") {
		t.Errorf("c1's duplicate address detection for %s failed: the responder answered it (%s)", c2.addr, strings.TrimSpace(flags))
	}
	s := stats()
	if s.Ignored == before.Ignored {
		t.Errorf("the responder did not see the DAD probe (stats %+v, before %+v)", s, before)
	}
	if s.Answered != before.Answered {
		t.Errorf("the responder answered a DAD probe")
	}
}

// mac is the container's MAC (of eth0).
func (c *labContainer) mac(t *testing.T) string {
	t.Helper()
	l, err := c.ns.NL.LinkByName("eth0")
	must(t, err)
	return l.Attrs().HardwareAddr.String()
}
