package link

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Kernel wraps a netlink handle and the /proc/sys root.
type Kernel struct {
	NL      *netlink.Handle
	ProcSys string
}

// New returns a Kernel on nl (nil = the current namespace) writing sysctls
// under procSys ("" = /proc/sys).
func New(nl *netlink.Handle, procSys string) (*Kernel, error) {
	if nl == nil {
		h, err := netlink.NewHandle()
		if err != nil {
			return nil, fmt.Errorf("netlink handle: %w", err)
		}
		nl = h
	}
	if procSys == "" {
		procSys = "/proc/sys"
	}
	return &Kernel{NL: nl, ProcSys: procSys}, nil
}

// IsNotFound reports whether err means the link does not exist.
func IsNotFound(err error) bool {
	var nf netlink.LinkNotFoundError
	return errors.As(err, &nf) || errors.Is(err, unix.ENODEV) || errors.Is(err, unix.ENOENT)
}

// Dump runs a netlink dump until the kernel does not interrupt it (the
// table changed mid-dump and the result may be partial), at most 5 times.
func Dump[T any](f func() (T, error)) (T, error) {
	var v T
	var err error
	for range 5 {
		v, err = f()
		if !errors.Is(err, netlink.ErrDumpInterrupted) {
			return v, err
		}
	}
	return v, err
}

// Links lists all links (ip -o link show).
func (k *Kernel) Links() ([]netlink.Link, error) {
	return Dump(k.NL.LinkList)
}

// ByName returns the link called name (ip link show name).
func (k *Kernel) ByName(name string) (netlink.Link, error) {
	return k.NL.LinkByName(name)
}

// EnsureBridge creates bridge name if missing (ip link add name type bridge),
// sets its MTU and MAC, puts addrs on it (ip addr replace) and brings it up.
func (k *Kernel) EnsureBridge(name string, mtu int, mac net.HardwareAddr, addrs []netip.Prefix) (netlink.Link, error) {
	l, err := k.NL.LinkByName(name)
	switch {
	case IsNotFound(err):
		br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: name, MTU: mtu, HardwareAddr: mac}}
		if err := k.NL.LinkAdd(br); err != nil && !errors.Is(err, unix.EEXIST) {
			return nil, fmt.Errorf("create bridge %s: %w", name, err)
		}
		if l, err = k.NL.LinkByName(name); err != nil {
			return nil, fmt.Errorf("bridge %s after create: %w", name, err)
		}
	case err != nil:
		return nil, fmt.Errorf("look up bridge %s: %w", name, err)
	case l.Type() != "bridge":
		return nil, fmt.Errorf("link %s exists but is a %s, not a bridge; remove it or choose another network", name, l.Type())
	}
	if l.Attrs().MTU != mtu {
		if err := k.NL.LinkSetMTU(l, mtu); err != nil {
			return nil, fmt.Errorf("set MTU %d on bridge %s: %w", mtu, name, err)
		}
	}
	if mac != nil && l.Attrs().HardwareAddr.String() != mac.String() {
		if err := k.NL.LinkSetHardwareAddr(l, mac); err != nil {
			return nil, fmt.Errorf("set MAC %s on bridge %s: %w", mac, name, err)
		}
	}
	for _, a := range addrs {
		if a.Addr().Is6() {
			// A fresh bridge may have IPv6 disabled (all.disable_ipv6 or
			// default.disable_ipv6); the gateway needs it.
			if err := k.Sysctl(fmt.Sprintf("net/ipv6/conf/%s/disable_ipv6", name), "0"); err != nil {
				return nil, err
			}
		}
		na := &netlink.Addr{IPNet: prefixToIPNet(a)}
		if a.Addr().Is6() {
			na.Flags = unix.IFA_F_NODAD
		}
		if err := k.NL.AddrReplace(l, na); err != nil {
			return nil, fmt.Errorf("add address %s to bridge %s: %w", a, name, err)
		}
	}
	if err := k.NL.LinkSetUp(l); err != nil {
		return nil, fmt.Errorf("set bridge %s up: %w", name, err)
	}
	return l, nil
}

// DeleteLink removes link name (ip link del name); absence is fine.
func (k *Kernel) DeleteLink(name string) error {
	l, err := k.NL.LinkByName(name)
	if IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("look up %s: %w", name, err)
	}
	if err := k.NL.LinkDel(l); err != nil && !IsNotFound(err) {
		return fmt.Errorf("delete link %s: %w", name, err)
	}
	return nil
}

// VethConfig describes a veth pair whose host end joins a bridge.
type VethConfig struct {
	Host, Peer string
	MTU        int
	// PeerMAC is the MAC of the container end (nil = kernel's choice).
	PeerMAC net.HardwareAddr
	// Master is the bridge the host end is attached to (0 = none).
	Master int
	// Hairpin lets the bridge send a frame back out the port it came in on:
	// a container reaching its own published port through a host address
	// is DNATed back to itself, and with br_netfilter that frame is bridged.
	Hairpin bool
}

// AddVeth creates the pair with both ends at MTU, the host end attached to
// Master and up, the peer down (Docker moves it into the container and
// brings it up) — ip link add HOST mtu M master BR type veth peer name PEER
// mtu M address MAC; ip link set HOST up.
func (k *Kernel) AddVeth(c VethConfig) error {
	v := &netlink.Veth{
		LinkAttrs:        netlink.LinkAttrs{Name: c.Host, MTU: c.MTU, MasterIndex: c.Master},
		PeerName:         c.Peer,
		PeerHardwareAddr: c.PeerMAC,
		PeerMTU:          uint32(c.MTU),
	}
	if err := k.NL.LinkAdd(v); err != nil {
		return fmt.Errorf("create veth %s/%s: %w", c.Host, c.Peer, err)
	}
	if c.Hairpin && c.Master != 0 {
		if err := k.NL.LinkSetHairpin(v, true); err != nil {
			_ = k.DeleteLink(c.Host)
			return fmt.Errorf("set hairpin on bridge port %s: %w", c.Host, err)
		}
	}
	if err := k.NL.LinkSetUp(v); err != nil {
		_ = k.DeleteLink(c.Host)
		return fmt.Errorf("set veth %s up: %w", c.Host, err)
	}
	return nil
}

// EnsureMaster attaches link name to master index in hairpin mode and sets
// it up, if it exists (ip link set NAME master BR up; bridge link set dev
// NAME hairpin on). It reports whether the link exists.
func (k *Kernel) EnsureMaster(name string, master int) (bool, error) {
	l, err := k.NL.LinkByName(name)
	if IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("look up %s: %w", name, err)
	}
	if l.Attrs().MasterIndex != master {
		if err := k.NL.LinkSetMasterByIndex(l, master); err != nil {
			return true, fmt.Errorf("attach %s to bridge: %w", name, err)
		}
	}
	if err := k.NL.LinkSetHairpin(l, true); err != nil {
		return true, fmt.Errorf("set hairpin on bridge port %s: %w", name, err)
	}
	if l.Attrs().Flags&net.FlagUp == 0 {
		if err := k.NL.LinkSetUp(l); err != nil {
			return true, fmt.Errorf("set %s up: %w", name, err)
		}
	}
	return true, nil
}

// Sysctl writes value to ProcSys/key (key uses "/" separators), e.g.
// Sysctl("net/ipv4/conf/pn-x/route_localnet", "1").
func (k *Kernel) Sysctl(key, value string) error {
	p := filepath.Join(k.ProcSys, key)
	cur, err := os.ReadFile(p)
	if err == nil && strings.TrimSpace(string(cur)) == value {
		return nil
	}
	if err := os.WriteFile(p, []byte(value), 0o644); err != nil {
		return fmt.Errorf("sysctl %s=%s: %w", strings.ReplaceAll(key, "/", "."), value, err)
	}
	return nil
}

// Routes returns the destinations of every IPv4 and IPv6 route in the main
// table (ip route; ip -6 route), for picking subnets that clash with none.
func (k *Kernel) Routes() ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, fam := range []int{netlink.FAMILY_V4, netlink.FAMILY_V6} {
		rs, err := Dump(func() ([]netlink.Route, error) { return k.NL.RouteList(nil, fam) })
		if err != nil {
			return nil, fmt.Errorf("list routes: %w", err)
		}
		for _, r := range rs {
			if r.Dst == nil {
				continue // default route: overlaps everything, ignore
			}
			if p, ok := ipNetToPrefix(r.Dst); ok && !p.Addr().IsLinkLocalUnicast() {
				out = append(out, p)
			}
		}
	}
	return out, nil
}

func prefixToIPNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

func ipNetToPrefix(n *net.IPNet) (netip.Prefix, bool) {
	a, ok := netip.AddrFromSlice(n.IP)
	if !ok {
		return netip.Prefix{}, false
	}
	ones, _ := n.Mask.Size()
	return netip.PrefixFrom(a.Unmap(), ones).Masked(), true
}

// EnsureLocalAddr puts addr (as a /32 or /128) on link name, e.g. the
// cluster DNS address on lo (ip addr replace ADDR/32 dev lo).
func (k *Kernel) EnsureLocalAddr(name string, addr netip.Addr) error {
	l, err := k.NL.LinkByName(name)
	if err != nil {
		return fmt.Errorf("look up %s: %w", name, err)
	}
	p := netip.PrefixFrom(addr, addr.BitLen())
	if err := k.NL.AddrReplace(l, &netlink.Addr{IPNet: prefixToIPNet(p)}); err != nil {
		return fmt.Errorf("add %s to %s: %w", p, name, err)
	}
	return nil
}

// HasLocalAddr says whether link name carries addr (/32 or /128), as
// ip addr show dev NAME to ADDR/32 would.
func (k *Kernel) HasLocalAddr(name string, addr netip.Addr) (bool, error) {
	l, err := k.NL.LinkByName(name)
	if err != nil {
		return false, fmt.Errorf("look up %s: %w", name, err)
	}
	family := netlink.FAMILY_V4
	if addr.Is6() {
		family = netlink.FAMILY_V6
	}
	as, err := k.NL.AddrList(l, family)
	if err != nil {
		return false, fmt.Errorf("addresses of %s: %w", name, err)
	}
	for _, a := range as {
		if p, ok := ipNetToPrefix(a.IPNet); ok && p.Bits() == addr.BitLen() && p.Addr() == addr {
			return true, nil
		}
	}
	return false, nil
}

// DeleteLocalAddr removes addr (/32 or /128) from link name (ip addr del
// ADDR/32 dev lo); absence is fine.
func (k *Kernel) DeleteLocalAddr(name string, addr netip.Addr) error {
	l, err := k.NL.LinkByName(name)
	if err != nil {
		return fmt.Errorf("look up %s: %w", name, err)
	}
	p := netip.PrefixFrom(addr, addr.BitLen())
	if err := k.NL.AddrDel(l, &netlink.Addr{IPNet: prefixToIPNet(p)}); err != nil &&
		!errors.Is(err, unix.EADDRNOTAVAIL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("remove %s from %s: %w", p, name, err)
	}
	return nil
}

// AnnounceNeighbor records addr → mac on link index as REACHABLE (ip neigh
// replace ADDR lladdr MAC dev LINK nud reachable). A host that already sent
// to addr before the owner existed holds an INCOMPLETE entry and would wait
// for its next ARP/NDP retry (one second) before delivering; the update
// sends the queued packets at once. REACHABLE, not PERMANENT: the kernel
// ages it out by itself, so a removed endpoint leaves nothing to delete.
func (k *Kernel) AnnounceNeighbor(index int, addr netip.Addr, mac net.HardwareAddr) error {
	family := netlink.FAMILY_V4
	if addr.Is6() {
		family = netlink.FAMILY_V6
	}
	n := &netlink.Neigh{LinkIndex: index, Family: family, State: netlink.NUD_REACHABLE,
		IP: net.IP(addr.AsSlice()), HardwareAddr: mac}
	if err := k.NL.NeighSet(n); err != nil {
		return fmt.Errorf("neighbor %s lladdr %s on link %d: %w", addr, mac, index, err)
	}
	return nil
}

// DeleteLinksWhere deletes every link for which match is true (podnetd
// cleanup: podnet's bridges, veths and VXLAN devices, found by name prefix
// and type), continuing past failures. It returns the names deleted.
func (k *Kernel) DeleteLinksWhere(match func(netlink.Link) bool) ([]string, error) {
	links, err := k.Links()
	if err != nil {
		return nil, err
	}
	var removed []string
	var errs []error
	for _, l := range links {
		if !match(l) {
			continue
		}
		name := l.Attrs().Name
		if err := k.DeleteLink(name); err != nil {
			errs = append(errs, err)
			continue
		}
		removed = append(removed, name)
	}
	return removed, errors.Join(errs...)
}
