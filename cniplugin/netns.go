package cniplugin

import (
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/podnet/podnet/admin"
	"github.com/podnet/podnet/internal/link"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// container is a container's network namespace, reached through netlink
// handles bound to it: the calling thread never switches namespace.
type container struct {
	path string
	ns   netns.NsHandle
	nl   *netlink.Handle
}

// errNoNetNS marks a namespace path that does not exist (any more).
var errNoNetNS = errors.New("network namespace not found")

func openContainer(path string) (*container, error) {
	ns, err := netns.GetFromPath(path)
	if err != nil {
		if errors.Is(err, unix.ENOENT) {
			return nil, fmt.Errorf("%s: %w", path, errNoNetNS)
		}
		return nil, fmt.Errorf("open network namespace %s: %w", path, err)
	}
	nl, err := netlink.NewHandleAt(ns)
	if err != nil {
		ns.Close()
		return nil, fmt.Errorf("netlink in network namespace %s: %w", path, err)
	}
	return &container{path: path, ns: ns, nl: nl}, nil
}

func (c *container) close() {
	c.nl.Close()
	c.ns.Close()
}

// setup moves the peer of the veth pair podnetd made (res.PeerIface, in
// the host namespace host) into the container as ifname, and gives it
// its addresses and routes (ip link set PEER netns NS; ip -n NS link set
// PEER name IFNAME up; ip -n NS addr add ...; ip -n NS route add ...).
// It is idempotent: after a retried ADD the interface may be in place
// already.
func (c *container) setup(host *netlink.Handle, res admin.CNIResult, ifname string) (netlink.Link, error) {
	l, err := c.nl.LinkByName(ifname)
	if err == nil && l.Type() != "veth" {
		return nil, fmt.Errorf("container %s already has an interface %s (%s)", c.path, ifname, l.Type())
	}
	if err != nil {
		if l, err = c.moveIn(host, res.PeerIface, ifname); err != nil {
			return nil, err
		}
	}
	for _, a := range res.IPs {
		addr := &netlink.Addr{IPNet: ipNet(a.Address)}
		if a.Address.Addr().Is6() {
			// Usable at once: the address is podnet's, nobody else's.
			addr.Flags = unix.IFA_F_NODAD
		}
		if err := c.nl.AddrReplace(l, addr); err != nil {
			return nil, fmt.Errorf("address %s on %s in %s: %w", a.Address, ifname, c.path, err)
		}
	}
	if err := c.nl.LinkSetUp(l); err != nil {
		return nil, fmt.Errorf("set %s up in %s: %w", ifname, c.path, err)
	}
	for _, r := range res.Routes {
		rt := &netlink.Route{LinkIndex: l.Attrs().Index, Dst: ipNet(r.Dst), Gw: r.GW.AsSlice()}
		if err := c.nl.RouteReplace(rt); err != nil {
			return nil, fmt.Errorf("route %s via %s on %s in %s: %w", r.Dst, r.GW, ifname, c.path, err)
		}
	}
	return l, nil
}

// moveIn moves host link peer into the container and renames it.
func (c *container) moveIn(host *netlink.Handle, peer, ifname string) (netlink.Link, error) {
	pl, err := host.LinkByName(peer)
	if err != nil {
		return nil, fmt.Errorf("interface %s podnetd made for the container: %w", peer, err)
	}
	if err := host.LinkSetNsFd(pl, int(c.ns)); err != nil {
		return nil, fmt.Errorf("move %s into %s: %w", peer, c.path, err)
	}
	l, err := c.nl.LinkByName(peer)
	if err != nil {
		return nil, fmt.Errorf("find %s in %s: %w", peer, c.path, err)
	}
	if err := c.nl.LinkSetName(l, ifname); err != nil {
		return nil, fmt.Errorf("rename %s to %s in %s: %w", peer, ifname, c.path, err)
	}
	return c.nl.LinkByName(ifname)
}

// remove deletes ifname from the container if it is a veth (its host end
// goes with it); absent is fine.
func (c *container) remove(ifname string) error {
	l, err := c.nl.LinkByName(ifname)
	var nf netlink.LinkNotFoundError
	if errors.As(err, &nf) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("look up %s in %s: %w", ifname, c.path, err)
	}
	if l.Type() != "veth" {
		return nil
	}
	if err := c.nl.LinkDel(l); err != nil {
		return fmt.Errorf("delete %s in %s: %w", ifname, c.path, err)
	}
	return nil
}

// check verifies the container side: ifname is up with the MAC, every
// address and every route the attachment has.
func (c *container) check(res admin.CNIResult, ifname string) error {
	l, err := c.nl.LinkByName(ifname)
	if err != nil {
		return fmt.Errorf("interface %s in %s: %w", ifname, c.path, err)
	}
	if l.Attrs().Flags&net.FlagUp == 0 {
		return fmt.Errorf("interface %s in %s is down", ifname, c.path)
	}
	if res.MAC != "" && l.Attrs().HardwareAddr.String() != res.MAC {
		return fmt.Errorf("interface %s in %s has MAC %s, want %s", ifname, c.path, l.Attrs().HardwareAddr, res.MAC)
	}
	addrs, err := link.Dump(func() ([]netlink.Addr, error) { return c.nl.AddrList(l, netlink.FAMILY_ALL) })
	if err != nil {
		return fmt.Errorf("addresses of %s in %s: %w", ifname, c.path, err)
	}
	for _, want := range res.IPs {
		found := false
		for _, a := range addrs {
			found = found || a.IPNet.String() == ipNet(want.Address).String()
		}
		if !found {
			return fmt.Errorf("interface %s in %s lacks address %s", ifname, c.path, want.Address)
		}
	}
	routes, err := link.Dump(func() ([]netlink.Route, error) { return c.nl.RouteList(l, netlink.FAMILY_ALL) })
	if err != nil {
		return fmt.Errorf("routes of %s in %s: %w", ifname, c.path, err)
	}
	for _, want := range res.Routes {
		found := false
		for _, r := range routes {
			dst := "0.0.0.0/0"
			if r.Family == netlink.FAMILY_V6 {
				dst = "::/0"
			}
			if r.Dst != nil {
				dst = r.Dst.String()
			}
			found = found || dst == want.Dst.String() && r.Gw.Equal(want.GW.AsSlice())
		}
		if !found {
			return fmt.Errorf("container %s lacks route %s via %s on %s", c.path, want.Dst, want.GW, ifname)
		}
	}
	return nil
}

func ipNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}
