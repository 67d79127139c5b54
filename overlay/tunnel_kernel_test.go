package overlay

import (
	"fmt"
	"io"
	"net"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/podnet/podnet/internal/testutil"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// deviceAddrs lists a device's addresses other than link-local ones.
func deviceAddrs(t *testing.T, ns *testutil.NetNS, dev string) []string {
	t.Helper()
	l, err := ns.NL.LinkByName(dev)
	must(t, err)
	as, err := nlKernel{h: ns.NL}.listAddrs(l.Attrs().Index)
	must(t, err)
	var out []string
	for _, a := range as {
		out = append(out, a.String())
	}
	slices.Sort(out)
	return out
}

// The tunnel addresses land on the VXLAN device as host addresses
// without prefix routes (IPv6 not tentative), before the routes that name
// them as source; a second full pass finds everything in place; a new
// tunnel address replaces the old one in the routes and on the device;
// an address put there behind podnet's back is removed.
func TestTunnelAddressesInKernel(t *testing.T) {
	o, ns, _ := offlineOverlay(t)
	f := tunnelFixture()
	f.v.keys = map[string]hostKey{}
	n := tunnelNet(false)
	_, err := o.EnsureNetwork(n)
	must(t, err)
	o.view = f.v
	ch, err := o.sync(syncOptions{full: true})
	must(t, err)
	if ch.AddrsAdded != 2 {
		t.Fatalf("first pass: %+v", ch)
	}
	if got, want := deviceAddrs(t, ns, "pnx42"), []string{"10.1.0.5/32", "fd00:1::5/128"}; !slices.Equal(got, want) {
		t.Fatalf("pnx42 addresses %v, want %v", got, want)
	}
	dev, err := ns.NL.LinkByName("pnx42")
	must(t, err)
	as, err := ns.NL.AddrList(dev, netlink.FAMILY_ALL)
	must(t, err)
	for _, a := range as {
		if a.IP.IsLinkLocalUnicast() {
			continue
		}
		if a.Flags&unix.IFA_F_NOPREFIXROUTE == 0 || a.Flags&unix.IFA_F_TENTATIVE != 0 {
			t.Errorf("address %s flags %#x: want noprefixroute, not tentative", a.IPNet, a.Flags)
		}
	}
	routes, err := nlKernel{h: ns.NL}.listRoutes()
	must(t, err)
	srcs := 0
	for _, r := range routes {
		if r.LinkIndex == dev.Attrs().Index {
			if r.Src == nil {
				t.Errorf("route %s into pnx42 without a source", r.Dst)
			}
			srcs++
		}
	}
	if srcs != 4 {
		t.Errorf("%d routes into pnx42 with a source, want 4: %v", srcs, routes)
	}
	if ch, err = o.sync(syncOptions{full: true}); err != nil || ch.Total() != 0 {
		t.Fatalf("second full pass changed %+v (%v): the read-back differs from what was written", ch, err)
	}

	n.Tunnels[0] = netip.MustParseAddr("10.1.0.6")
	_, err = o.EnsureNetwork(n)
	must(t, err)
	must(t, ns.NL.AddrAdd(dev, mustAddr("10.9.9.9/24")))
	ch, err = o.sync(syncOptions{full: true})
	must(t, err)
	if ch.AddrsAdded != 1 || ch.AddrsDeleted != 2 || ch.RoutesReplaced != 3 {
		t.Fatalf("new tunnel address: %+v", ch)
	}
	if got, want := deviceAddrs(t, ns, "pnx42"), []string{"10.1.0.6/32", "fd00:1::5/128"}; !slices.Equal(got, want) {
		t.Fatalf("pnx42 addresses %v, want %v", got, want)
	}
}

// TestHostReachesRemotePods: with strict reverse-path filtering on both
// hosts, a process of host1 itself (not a container) reaches a container
// on host2 over IPv4 and IPv6, and the container sees it come from
// host1's tunnel address in the pool: the source every host routes back
// to host1 through the overlay. Without it the kernel would pick the
// underlay address (dropped by host2's reverse-path check: it arrived on
// the VXLAN device) or, for IPv6, the anycast gateway (the reply would
// stay on host2).
func TestHostReachesRemotePods(t *testing.T) {
	l := newLab(t, labOptions{hosts: 2, v6: true, tunnels: true})
	h1, h2 := l.hosts[0], l.hosts[1]
	for _, h := range l.hosts {
		for _, k := range []string{"all", "default", "eth0", DeviceName(labVNI), labBridge} {
			must(t, h.sysctl("net/ipv4/conf/"+k+"/rp_filter", "1"))
		}
	}
	for _, pool := range []netip.Prefix{l.pool, l.pool6} {
		c2 := h2.containerIn(pool, "")
		tunnel := h1.net.Tunnels[slices.IndexFunc(h1.net.Tunnels, pool.Contains)]
		ln := c2.listen(t)
		from := make(chan string, 4)
		go func() {
			for {
				conn, err := ln.Accept()
				if err != nil {
					return
				}
				from <- conn.RemoteAddr().(*net.TCPAddr).IP.String()
				go func() { _, _ = io.Copy(conn, conn); conn.Close() }()
			}
		}()
		var conn net.Conn
		took := testutil.Eventually(t, 5*time.Second, fmt.Sprintf("host1 → %s", c2.addr), func() (err error) {
			return h1.ns.Do(func() (err error) {
				conn, err = net.DialTimeout("tcp", ln.Addr().String(), time.Second)
				return err
			})
		})
		echo(t, conn, "from the host")
		conn.Close()
		if got := <-from; got != tunnel.String() {
			t.Errorf("the container saw host1 as %s, want its tunnel address %s", got, tunnel)
		}
		t.Logf("host1 → %s from %s in %v", c2.addr, tunnel, took)
	}
}

// A restarted podnetd finds the tunnel addresses and the routes naming
// them in place and changes nothing; removing the network takes both
// away, a second removal is no error, and a device that stays (pnwg, a
// shared VNI) loses the removed network's tunnel addresses at once.
func TestTunnelAddressesRestartAndRemove(t *testing.T) {
	o, ns, k := offlineOverlay(t)
	f := tunnelFixture()
	f.v.keys = map[string]hostKey{}
	n := tunnelNet(false)
	_, err := o.EnsureNetwork(n)
	must(t, err)
	o.view = f.v
	_, err = o.sync(syncOptions{full: true})
	must(t, err)

	restarted, err := New(Config{Host: "a", Store: o.st, Kernel: k, Logger: o.log, Underlay: o.underlay,
		Sysctl: func(string, string) error { return nil }})
	must(t, err)
	_, err = restarted.EnsureNetwork(n)
	must(t, err)
	restarted.view = f.v
	if ch, err := restarted.sync(syncOptions{full: true}); err != nil || ch.Total() != 0 {
		t.Fatalf("first pass after a restart changed %+v (%v), want nothing", ch, err)
	}
	if got, want := deviceAddrs(t, ns, "pnx42"), []string{"10.1.0.5/32", "fd00:1::5/128"}; !slices.Equal(got, want) {
		t.Fatalf("after the restart pnx42 holds %v, want %v", got, want)
	}

	must(t, restarted.RemoveNetwork(n.ID))
	routes, err := nlKernel{h: ns.NL}.listRoutes()
	must(t, err)
	for _, r := range routes {
		if dst, ok := ipNetToPrefix(r.Dst); ok && inPools(dst, n.Pools) || r.Src != nil {
			t.Errorf("route %s (src %v) survived the network", r.Dst, r.Src)
		}
	}
	must(t, restarted.RemoveNetwork(n.ID))

	// A device that stays: the addresses go, absent ones and devices are
	// no error.
	eth1, err := ns.NL.LinkByName("eth1")
	must(t, err)
	for _, a := range []string{"10.1.0.5/32", "fd00:1::5/128", "10.9.9.9/32"} {
		must(t, ns.NL.AddrAdd(eth1, mustAddr(a)))
	}
	nk := nlKernel{h: ns.NL}
	for range 2 {
		if errs := removeTunnels(nk, n.Tunnels, []string{"eth1", "pnwg"}); len(errs) != 0 {
			t.Fatalf("removeTunnels: %v", errs)
		}
	}
	if got := deviceAddrs(t, ns, "eth1"); !slices.Equal(got, []string{"10.9.9.9/32"}) {
		t.Fatalf("eth1 holds %v after its tunnel addresses were removed, want only 10.9.9.9/32", got)
	}
}
