package dataplane

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/podnet/podnet/internal/testutil"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// TestKernelConntrackFilteredFlush: the in-kernel filtered flush deletes
// exactly the entries the filter names, and costs far less than dumping
// the table (both timed over the same table, logged: no timing is
// asserted).
func TestKernelConntrackFilteredFlush(t *testing.T) {
	t.Parallel()
	const n = 20000
	gone := netip.MustParseAddr("10.200.1.3")
	filter := ctFilter{fam: ipv4, proto: unix.IPPROTO_UDP, origDport: 53, replySrc: gone, replySport: 5353,
		mark: ctMarkService, markMask: ctMarkService}
	// fill creates n UDP entries NATed by a service to gone, except one in
	// ten to another endpoint, one unmarked and one to another port.
	fill := func(ns *testutil.NetNS) int {
		want := 0
		for i := 0; i < n; i++ {
			src := net.IPv4(10, 200, byte(2+i>>8), byte(i)).To4()
			ep, mark, dport := gone, uint32(ctMarkService), uint16(53)
			switch i % 10 {
			default:
				want++
			case 1:
				ep = netip.MustParseAddr("10.200.1.2")
			case 2:
				mark = 0
			case 3:
				dport = 54
			}
			f := &netlink.ConntrackFlow{FamilyType: unix.AF_INET, Mark: mark, TimeOut: 60}
			f.Forward = netlink.IPTuple{Protocol: unix.IPPROTO_UDP, SrcIP: src, DstIP: net.ParseIP(vip4), SrcPort: uint16(1024 + i%60000), DstPort: dport}
			f.Reverse = netlink.IPTuple{Protocol: unix.IPPROTO_UDP, SrcIP: ep.AsSlice(), DstIP: src, SrcPort: 5353, DstPort: uint16(1024 + i%60000)}
			if err := ns.NL.ConntrackCreate(netlink.ConntrackTable, unix.AF_INET, f); err != nil {
				t.Fatalf("create conntrack entry %d: %v", i, err)
			}
		}
		return want
	}
	count := func(ns *testutil.NetNS) (total, matching int) {
		flows, err := ns.NL.ConntrackTableList(netlink.ConntrackTable, unix.AF_INET)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range flows {
			if filter.matches(f) {
				matching++
			}
		}
		return len(flows), matching
	}
	var ct netlinkConntrack
	for _, how := range []string{"filtered flush", "dump and delete"} {
		ns := testutil.NewNetNS(t)
		want := fill(ns)
		run := func() time.Duration {
			start := time.Now()
			err := ns.Do(func() error {
				if how == "filtered flush" {
					return ct.flushFiltered(filter)
				}
				_, err := ct.deleteFlows([]family{ipv4}, filter.matches)
				return err
			})
			if err != nil {
				t.Fatalf("%s: %v", how, err)
			}
			return time.Since(start)
		}
		took := run()
		total, matching := count(ns)
		if matching != 0 || total != n-want {
			t.Fatalf("%s: %d entries left, %d of them matching; want %d and 0", how, total, matching, n-want)
		}
		// The common case of a change: few or no entries to delete.
		again := run()
		t.Logf("%s: %v for %d of %d entries; %v when none of %d matches", how, took, want, n, again, total)
	}
}
