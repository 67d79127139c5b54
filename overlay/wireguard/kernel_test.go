package wireguard

import (
	"errors"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/podnet/podnet/internal/link"
	"github.com/podnet/podnet/internal/testutil"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
	"golang.zx2c4.com/wireguard/wgctrl"
	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"
)

// hasWireGuard reports whether the kernel creates WireGuard devices (in a
// scratch namespace).
func hasWireGuard(t *testing.T) bool {
	ns := testutil.NewNetNS(t)
	err := ns.NL.LinkAdd(&netlink.Wireguard{LinkAttrs: netlink.LinkAttrs{Name: "probe"}})
	return !errors.Is(err, unix.EOPNOTSUPP)
}

// newTestDevice is a Device in a fresh namespace, with a wgctrl client
// made inside it.
func newTestDevice(t *testing.T) (*Device, *testutil.NetNS, *wgctrl.Client) {
	t.Helper()
	ns := testutil.NewNetNS(t)
	k, err := link.New(ns.NL, "")
	if err != nil {
		t.Fatal(err)
	}
	var c *wgctrl.Client
	if err := ns.Do(func() (err error) { c, err = wgctrl.New(); return err }); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	key, err := wgtypes.GeneratePrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	d, err := New(Config{Kernel: k, Client: c, Key: key, Port: 51999, MTU: 1440})
	if err != nil {
		t.Fatal(err)
	}
	return d, ns, c
}

// A kernel without WireGuard: Ensure fails naming CONFIG_WIREGUARD (what
// podnetd says when it refuses to start) and leaves no link behind.
func TestNoWireGuardNamesConfig(t *testing.T) {
	testutil.SkipUnlessRoot(t)
	if hasWireGuard(t) {
		t.Skip("this kernel has WireGuard: TestWireGuardDevice covers it")
	}
	d, ns, _ := newTestDevice(t)
	_, err := d.Ensure()
	if !errors.Is(err, ErrNoKernelSupport) || !strings.Contains(err.Error(), "CONFIG_WIREGUARD") {
		t.Fatalf("Ensure: %v, want ErrNoKernelSupport naming CONFIG_WIREGUARD", err)
	}
	if _, err := ns.NL.LinkByName(DeviceName); err == nil {
		t.Fatalf("%s left behind", DeviceName)
	}
}

// The device is made once with its key, port and MTU; a second Ensure (a
// restarted podnetd) changes nothing and keeps the peers; peers are set,
// read back, moved and removed as the overlay needs.
func TestWireGuardDevice(t *testing.T) {
	testutil.SkipUnlessRoot(t)
	if !hasWireGuard(t) {
		t.Skip("kernel lacks WireGuard (CONFIG_WIREGUARD): scripts/vm.sh kernel-tests runs this on Debian's kernel")
	}
	d, ns, c := newTestDevice(t)
	created, err := d.Ensure()
	if err != nil || !created {
		t.Fatalf("Ensure: created %v, err %v", created, err)
	}
	l, err := ns.NL.LinkByName(DeviceName)
	if err != nil || l.Attrs().MTU != 1440 || l.Attrs().Flags&net.FlagUp == 0 {
		t.Fatalf("link %+v, err %v", l, err)
	}
	dev, err := c.Device(DeviceName)
	if err != nil || dev.ListenPort != 51999 || dev.PublicKey != d.PublicKey() {
		t.Fatalf("device %+v, err %v", dev, err)
	}
	pb, pc := mustKey(t), mustKey(t)
	b := Peer{Key: pb, Endpoint: netip.MustParseAddrPort("10.250.0.2:51820"),
		AllowedIPs: prefixes("10.1.0.64/26", "10.1.0.200/32", "fd00:1::/122")}
	cc := Peer{Key: pc, Endpoint: netip.MustParseAddrPort("10.250.0.3:51820"), AllowedIPs: prefixes("10.1.0.128/26")}
	for _, p := range []Peer{b, cc} {
		if err := d.SetPeer(p); err != nil {
			t.Fatal(err)
		}
	}
	mustPeers(t, d, b, cc)
	if created, err := d.Ensure(); err != nil || created {
		t.Fatalf("second Ensure: created %v, err %v", created, err)
	}
	mustPeers(t, d, b, cc)
	// A block that changed hands: one call moves it.
	cc.AllowedIPs = prefixes("10.1.0.64/26", "10.1.0.128/26")
	if err := d.SetPeer(cc); err != nil {
		t.Fatal(err)
	}
	b.AllowedIPs = prefixes("10.1.0.200/32", "fd00:1::/122")
	mustPeers(t, d, b, cc)
	if err := d.RemovePeer(pb); err != nil {
		t.Fatal(err)
	}
	mustPeers(t, d, cc)
	if err := Delete(d.cfg.Kernel); err != nil {
		t.Fatal(err)
	}
	if d.Exists() {
		t.Fatal("device still there after Delete")
	}
	if err := Delete(d.cfg.Kernel); err != nil {
		t.Fatalf("Delete of a missing device: %v", err)
	}
}

func mustKey(t *testing.T) Key {
	k, err := wgtypes.GeneratePrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	return k.PublicKey()
}

func prefixes(ss ...string) []netip.Prefix {
	var out []netip.Prefix
	for _, s := range ss {
		out = append(out, netip.MustParsePrefix(s))
	}
	SortPrefixes(out)
	return out
}

func mustPeers(t *testing.T, d *Device, want ...Peer) {
	t.Helper()
	got, err := d.Peers()
	if err != nil {
		t.Fatal(err)
	}
	key := func(p Peer) string { return p.Key.String() }
	slices.SortFunc(got, func(a, b Peer) int { return strings.Compare(key(a), key(b)) })
	slices.SortFunc(want, func(a, b Peer) int { return strings.Compare(key(a), key(b)) })
	if !slices.EqualFunc(got, want, Peer.Equal) {
		t.Fatalf("peers:\n got %+v\nwant %+v", got, want)
	}
}
