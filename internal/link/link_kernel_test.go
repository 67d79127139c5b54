package link_test

import (
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/podnet/podnet/internal/link"
	"github.com/podnet/podnet/internal/testutil"
	"github.com/vishvananda/netlink"
)

func TestDeleteLinksWhereDeletesOnlyMatches(t *testing.T) {
	testutil.SkipUnlessRoot(t)
	ns := testutil.NewNetNS(t)
	k := &link.Kernel{NL: ns.NL, ProcSys: "/proc/sys"}
	for _, name := range []string{"pn-a", "pn-b", "keep"} {
		if err := ns.NL.LinkAdd(&netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: name}}); err != nil {
			t.Fatal(err)
		}
	}
	removed, err := k.DeleteLinksWhere(func(l netlink.Link) bool { return strings.HasPrefix(l.Attrs().Name, "pn-") })
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(removed)
	if !slices.Equal(removed, []string{"pn-a", "pn-b"}) {
		t.Fatalf("removed %v, want [pn-a pn-b]", removed)
	}
	for name, want := range map[string]bool{"pn-a": false, "pn-b": false, "keep": true} {
		if _, err := ns.NL.LinkByName(name); (err == nil) != want {
			t.Errorf("%s present = %v, want %v", name, err == nil, want)
		}
	}
	// Nothing left to match: no error, nothing removed.
	if removed, err := k.DeleteLinksWhere(func(l netlink.Link) bool { return strings.HasPrefix(l.Attrs().Name, "pn-") }); err != nil || len(removed) != 0 {
		t.Fatalf("second pass: %v, %v", removed, err)
	}
}

func TestAnnounceNeighborReplacesAnIncompleteEntry(t *testing.T) {
	testutil.SkipUnlessRoot(t)
	ns := testutil.NewNetNS(t)
	k := &link.Kernel{NL: ns.NL, ProcSys: "/proc/sys"}
	ns.MustExec(t, "ip", "link", "add", "br0", "type", "bridge")
	ns.MustExec(t, "ip", "addr", "add", "10.9.0.1/24", "dev", "br0")
	ns.MustExec(t, "ip", "link", "set", "br0", "up")
	br, err := ns.NL.LinkByName("br0")
	if err != nil {
		t.Fatal(err)
	}
	// A sender tried 10.9.0.5 before it existed: INCOMPLETE/FAILED entry.
	_, _ = ns.Exec("ping", "-c1", "-W1", "10.9.0.5")
	mac := net.HardwareAddr{0x02, 0x70, 10, 9, 0, 5}
	if err := k.AnnounceNeighbor(br.Attrs().Index, netip.MustParseAddr("10.9.0.5"), mac); err != nil {
		t.Fatal(err)
	}
	if out := ns.MustExec(t, "ip", "neigh", "show", "10.9.0.5", "dev", "br0"); !strings.Contains(out, "lladdr 02:70:0a:09:00:05 REACHABLE") {
		t.Fatalf("neighbor entry: %q, want REACHABLE with the endpoint's MAC", out)
	}
	if err := k.AnnounceNeighbor(br.Attrs().Index, netip.MustParseAddr("10.9.0.5"), mac); err != nil {
		t.Fatalf("announcing again: %v", err)
	}
}

func TestInterfaceNetworksSkipsPodnetLinks(t *testing.T) {
	testutil.SkipUnlessRoot(t)
	ns := testutil.NewNetNS(t)
	k := &link.Kernel{NL: ns.NL, ProcSys: "/proc/sys"}
	ns.MustExec(t, "ip", "link", "add", "lan0", "type", "bridge")
	ns.MustExec(t, "ip", "addr", "add", "10.253.0.11/24", "dev", "lan0")
	ns.MustExec(t, "ip", "addr", "add", "2001:db8:1::11/64", "dev", "lan0")
	ns.MustExec(t, "ip", "link", "set", "lan0", "up")
	ns.MustExec(t, "ip", "link", "add", "pn-abc", "type", "bridge")
	ns.MustExec(t, "ip", "addr", "add", "10.20.0.1/24", "dev", "pn-abc")
	got, err := k.InterfaceNetworks("pn-", "pnx")
	if err != nil {
		t.Fatal(err)
	}
	var texts []string
	for _, h := range got {
		texts = append(texts, h.Iface+" "+h.Addr.String())
	}
	slices.Sort(texts)
	want := []string{"lan0 10.253.0.11/24", "lan0 2001:db8:1::11/64", "lo 127.0.0.1/8", "lo ::1/128"}
	if !slices.Equal(texts, want) {
		t.Fatalf("InterfaceNetworks = %q, want %q (no link-local, nothing of pn-*)", texts, want)
	}
}

func TestEnsureBridgeNetfilter(t *testing.T) {
	testutil.SkipUnlessRoot(t)
	ns := testutil.NewNetNS(t)
	k := &link.Kernel{NL: ns.NL, ProcSys: "/proc/sys"}
	ns.MustExec(t, "ip", "link", "add", "br0", "type", "bridge")
	if out := ns.MustExec(t, "ip", "-d", "link", "show", "br0"); !strings.Contains(out, "nf_call_iptables 0") {
		t.Skipf("a new bridge already has nf_call_iptables set, nothing to show: %s", out)
	}
	if err := ns.Do(func() error { return k.EnsureBridgeNetfilter("br0") }); err != nil {
		t.Fatal(err)
	}
	out := ns.MustExec(t, "ip", "-d", "link", "show", "br0")
	if !strings.Contains(out, "nf_call_iptables 1") || !strings.Contains(out, "nf_call_ip6tables 1") {
		t.Fatalf("ip -d link show br0: %s", out)
	}
}

func TestHasLocalAddrSeesOnlyTheHostAddress(t *testing.T) {
	testutil.SkipUnlessRoot(t)
	ns := testutil.NewNetNS(t)
	k := &link.Kernel{NL: ns.NL, ProcSys: "/proc/sys"}
	dns := netip.MustParseAddr("10.96.0.10")
	if has, err := k.HasLocalAddr("lo", dns); err != nil || has {
		t.Fatalf("fresh lo: %v %v", has, err)
	}
	// The same address inside a wider prefix is not the cluster DNS's /32.
	ns.MustExec(t, "ip", "addr", "add", "10.96.0.10/8", "dev", "lo")
	if has, _ := k.HasLocalAddr("lo", dns); has {
		t.Fatal("10.96.0.10/8 counted as the /32")
	}
	ns.MustExec(t, "ip", "addr", "del", "10.96.0.10/8", "dev", "lo")
	if err := k.EnsureLocalAddr("lo", dns); err != nil {
		t.Fatal(err)
	}
	if has, err := k.HasLocalAddr("lo", dns); err != nil || !has {
		t.Fatalf("after EnsureLocalAddr: %v %v", has, err)
	}
}
