package driver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/netip"
	"strings"

	"github.com/docker/go-plugins-helpers/ipam"
	"github.com/docker/go-plugins-helpers/network"
	"github.com/podnet/podnet/internal/dockerid"
	"github.com/podnet/podnet/internal/link"
	"github.com/podnet/podnet/netspec"
	"github.com/podnet/podnet/store"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Interface names of macvlan/ipvlan networks (upgrade contract, like
// bridgePrefix): pnv<endpoint id[:12]> is a container's sub-interface,
// pnp<network id[:12]> a short-lived probe, and the host-access shim takes
// the network's bridge name pn-<network id[:12]> so that the NAT engine
// treats it as the network's host-side interface.
const (
	lanPrefix   = "pnv"
	probePrefix = "pnp"
)

func lanIfName(endpointID string) string { return lanPrefix + dockerid.Short(endpointID) }

// shimMetric is the metric of the host-access shim's subnet route: above
// the kernel's connected routes (metric 0), so a host that already sits on
// the subnet through the parent keeps using the parent for the rest of
// the LAN, and only its own containers (host routes) go through the shim.
const shimMetric = 1000

// HostAddresses hands out and takes back the addresses of host-access
// shims: podnet's IPAM, so they come from the network's pool like any
// container's and are unique across hosts.
type HostAddresses interface {
	RequestAddress(ctx context.Context, r *ipam.RequestAddressRequest) (*ipam.RequestAddressResponse, error)
	ReleaseAddress(ctx context.Context, r *ipam.ReleaseAddressRequest) error
}

// lanMode puts containers directly on a parent interface's segment with a
// macvlan or ipvlan sub-interface each (kind says which).
type lanMode struct {
	kind  string
	k     *link.Kernel
	log   *slog.Logger
	vlans *vlanParents
	addrs HostAddresses
	// othersOn reports whether a network of this host other than exceptID
	// has parent as its parent (VLAN parents go with the last user).
	othersOn func(parent, exceptID string) bool
	// options are the network's parsed settings (Driver.lanOptions).
	options func(n *store.Network) (netspec.Options, error)
}

// lanOptions are the macvlan/ipvlan settings of n's record, with the
// defaults of those it leaves out, parsed the first time they are asked
// for (when the network is created or restored) and kept: later uses
// never parse again, and a record that cannot be parsed fails the network
// there, naming it, instead of being read as defaults.
func (d *Driver) lanOptions(n *store.Network) (netspec.Options, error) {
	d.mu.Lock()
	o, ok := d.lan[n.ID]
	d.mu.Unlock()
	if ok {
		return o, nil
	}
	raw := maps.Clone(n.Options)
	if raw == nil {
		raw = map[string]string{}
	}
	raw[netspec.OptMode] = n.Mode
	o, err := netspec.ParseOptions(raw, nil)
	if err != nil {
		return o, fmt.Errorf("options of network %s: %w", dockerid.Short(n.ID), err)
	}
	d.mu.Lock()
	d.lan[n.ID] = o
	d.mu.Unlock()
	return o, nil
}

// parentName is the network's parent on this host: -o parent (inherited
// from the definition or a per-host override), else its isolated parent.
func (m *lanMode) parentName(n *store.Network) string {
	if p := strings.TrimSpace(n.Options[netspec.OptParent]); p != "" {
		return p
	}
	return isolatedName(n.ID)
}

func isolated(n *store.Network) bool { return strings.TrimSpace(n.Options[netspec.OptParent]) == "" }

// newLink describes a sub-interface of this network on parent.
func (m *lanMode) newLink(n *store.Network, name string, parent netlink.Link, mac net.HardwareAddr) (netlink.Link, error) {
	o, err := m.options(n)
	if err != nil {
		return nil, err
	}
	attrs := netlink.LinkAttrs{Name: name, MTU: n.MTU, ParentIndex: parent.Attrs().Index, TxQLen: -1, HardwareAddr: mac}
	if m.kind == netspec.ModeIpvlan {
		return ipvlanLink(attrs, o.IpvlanMode, o.IpvlanFlag), nil
	}
	return macvlanLink(attrs, o.MacvlanMode), nil
}

// addNewLink creates a sub-interface of this network on parent.
func (m *lanMode) addNewLink(n *store.Network, name string, parent netlink.Link, mac net.HardwareAddr) error {
	l, err := m.newLink(n, name, parent, mac)
	if err != nil {
		return err
	}
	return m.addLink(l, parent.Attrs().Name)
}

// addLink creates l, naming a missing kernel feature when that is why it
// failed.
func (m *lanMode) addLink(l netlink.Link, parent string) error {
	err := m.k.NL.LinkAdd(l)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, unix.EOPNOTSUPP):
		return fmt.Errorf("this host's kernel has no %s support (CONFIG_%s, module %s): load the module, or use another mode: %w",
			m.kind, strings.ToUpper(m.kind), m.kind, err)
	case errors.Is(err, unix.EBUSY):
		return fmt.Errorf("parent %s refuses another %s interface %s (another kind of sub-interface, or a passthru one, holds it): %w",
			parent, m.kind, l.Attrs().Name, err)
	}
	return fmt.Errorf("create %s interface %s on %s: %w", m.kind, l.Attrs().Name, parent, err)
}

func (m *lanMode) createNetwork(n *store.Network) error { return m.ensureNetwork(n, true) }

// restoreNetwork is createNetwork without the probe: the network was
// accepted once, and a passthru network's running container would make
// the probe fail.
func (m *lanMode) restoreNetwork(n *store.Network) error { return m.ensureNetwork(n, false) }

func (m *lanMode) ensureNetwork(n *store.Network, probe bool) error {
	parent, err := m.ensureParent(n)
	if err != nil {
		return err
	}
	if err := m.checkParent(n, parent); err != nil {
		return err
	}
	pmtu := parent.Attrs().MTU
	_, set := n.Options[netspec.OptMTU]
	_, dset := n.Options[netspec.OptDockerMTU]
	if !set && !dset {
		n.MTU = pmtu // MTU follows the parent unless set (at restore too)
	} else if n.MTU > pmtu {
		return fmt.Errorf("mtu %d is larger than the MTU %d of parent %s: a %s interface cannot exceed its parent", n.MTU, pmtu, parent.Attrs().Name, m.kind)
	}
	o, err := m.options(n)
	if err != nil {
		return err
	}
	if !o.HostAccess {
		n.Bridge = ""
		if !probe {
			return nil
		}
		return m.probe(n, parent)
	}
	n.Bridge = bridgeName(n.ID)
	return m.ensureShim(n, parent)
}

// ensureParent finds the parent, creating an isolated one, or a VLAN
// sub-interface IFACE.VID of an existing IFACE.
func (m *lanMode) ensureParent(n *store.Network) (netlink.Link, error) {
	name := m.parentName(n)
	if isolated(n) {
		return ensureIsolated(m.k, name)
	}
	l, err := m.k.ByName(name)
	if err == nil {
		return l, nil
	}
	if !link.IsNotFound(err) {
		return nil, fmt.Errorf("look up parent %s: %w", name, err)
	}
	base, vid, perr := netspec.ParseParent(name)
	if perr != nil {
		return nil, perr
	}
	if vid == 0 {
		return nil, fmt.Errorf("parent %s does not exist on host %s: name an existing interface (ip link), or IFACE.VLAN to have podnet create an 802.1q sub-interface", name, m.vlans.host)
	}
	return m.vlans.ensure(name, base, vid)
}

// checkParent refuses parents whose traffic is not the network's to take,
// and sub-interface settings that would change or break another network
// on the same parent (the kernel would refuse them, or worse, apply them
// to every interface of the parent).
func (m *lanMode) checkParent(n *store.Network, p netlink.Link) error {
	a := p.Attrs()
	switch {
	case a.Flags&net.FlagLoopback != 0:
		return fmt.Errorf("parent %s is a loopback interface: name the interface on the LAN", a.Name)
	case strings.HasPrefix(a.Name, bridgePrefix) || strings.HasPrefix(a.Name, hostVethPrefix) ||
		strings.HasPrefix(a.Name, peerVethPrefix) || strings.HasPrefix(a.Name, lanPrefix) ||
		strings.HasPrefix(a.Name, isolatedPeerPrefix) ||
		strings.HasPrefix(a.Name, isolatedPrefix) && a.Name != isolatedName(n.ID):
		return fmt.Errorf("parent %s is an interface of another podnet network (a %s): name the interface on the LAN", a.Name, p.Type())
	case a.EncapType != "" && a.EncapType != "ether":
		return fmt.Errorf("parent %s is not an Ethernet interface (%s): %s needs one", a.Name, a.EncapType, m.kind)
	case a.MasterIndex != 0:
		master := fmt.Sprintf("index %d", a.MasterIndex)
		if ml, err := m.k.NL.LinkByIndex(a.MasterIndex); err == nil {
			master = fmt.Sprintf("%s %s", ml.Type(), ml.Attrs().Name)
		}
		return fmt.Errorf("parent %s is enslaved to %s: its frames belong to that device; use the %s itself or another interface", a.Name, master, strings.Fields(master)[0])
	}
	links, err := m.k.Links()
	if err != nil {
		return err
	}
	own := map[string]bool{bridgeName(n.ID): true, probePrefix + dockerid.Short(n.ID): true}
	for _, l := range links {
		la := l.Attrs()
		if la.ParentIndex != a.Index || la.Index == a.Index || own[la.Name] {
			continue
		}
		if err := m.conflict(n, a.Name, l); err != nil {
			return err
		}
	}
	return nil
}

// conflict says why an existing sub-interface c of parent rules out this
// network's settings, if it does.
func (m *lanMode) conflict(n *store.Network, parent string, c netlink.Link) error {
	name := c.Attrs().Name
	switch l := c.(type) {
	case *netlink.Macvlan:
		if m.kind == netspec.ModeIpvlan {
			return fmt.Errorf("parent %s already carries macvlan interface %s: a parent takes macvlan or ipvlan interfaces, not both; use another parent (or a VLAN of it: -o parent=%s.VLAN)", parent, name, parent)
		}
		if l.Mode == netlink.MACVLAN_MODE_PASSTHRU {
			return fmt.Errorf("parent %s is given whole to macvlan passthru interface %s: it takes no other macvlan interface", parent, name)
		}
		if o, err := m.options(n); err != nil {
			return err
		} else if o.MacvlanMode == netspec.MacvlanPassthru {
			return fmt.Errorf("macvlan_mode=passthru needs parent %s to itself, but it already carries macvlan interface %s (%s)", parent, name, macvlanModeName(l.Mode))
		}
	case *netlink.IPVlan:
		if m.kind == netspec.ModeMacvlan {
			return fmt.Errorf("parent %s already carries ipvlan interface %s: a parent takes macvlan or ipvlan interfaces, not both; use another parent (or a VLAN of it: -o parent=%s.VLAN)", parent, name, parent)
		}
		mode, flag := ipvlanSettings(l)
		o, err := m.options(n)
		if err != nil {
			return err
		}
		if mode != o.IpvlanMode || flag != o.IpvlanFlag {
			return fmt.Errorf("parent %s already carries ipvlan interface %s in ipvlan_mode=%s ipvlan_flag=%s; the mode and flag belong to the parent, so every ipvlan network on it must use the same",
				parent, name, mode, flag)
		}
	}
	return nil
}

// probe creates and deletes a sub-interface, so that a network the kernel
// cannot carry (no ipvlan, a busy parent) fails at docker network create,
// not at the first docker run.
func (m *lanMode) probe(n *store.Network, parent netlink.Link) error {
	name := probePrefix + dockerid.Short(n.ID)
	_ = m.k.DeleteLink(name)
	if err := m.addNewLink(n, name, parent, nil); err != nil {
		return err
	}
	return m.k.DeleteLink(name)
}

// ensureShim creates the host-access shim: a sub-interface of the parent in
// the host namespace with its own address from the pool, so the host
// reaches its containers (a parent never talks to its own sub-interfaces).
// The address is a /32; a route per local container (added with the
// endpoint) leads to it, and the subnet route through the shim has a
// higher metric than any the host already has.
func (m *lanMode) ensureShim(n *store.Network, parent netlink.Link) error {
	if m.addrs == nil {
		return fmt.Errorf("host access is unavailable in this podnetd (no address allocator)")
	}
	pool, ok := firstV4(n)
	if !ok {
		return fmt.Errorf("%s=true needs an IPv4 subnet for the shim's address", netspec.OptHostAccess)
	}
	name := n.Bridge
	l, err := m.k.ByName(name)
	if err == nil && (l.Type() != m.kind || l.Attrs().ParentIndex != parent.Attrs().Index) {
		_ = m.k.DeleteLink(name) // ours by name, but stale (another parent or kind)
		err = unix.ENODEV
	}
	if err != nil {
		if err := m.addNewLink(n, name, parent, nil); err != nil {
			return err
		}
		if l, err = m.k.ByName(name); err != nil {
			return fmt.Errorf("host-access shim %s after create: %w", name, err)
		}
	}
	if !n.HostAccess.IsValid() {
		res, err := m.addrs.RequestAddress(context.Background(), &ipam.RequestAddressRequest{PoolID: pool.String()})
		if err != nil {
			return fmt.Errorf("address for the host-access shim of network %s: %w", dockerid.Short(n.ID), err)
		}
		if n.HostAccess, err = netip.ParsePrefix(res.Address); err != nil {
			return fmt.Errorf("host-access address %q from IPAM: %w", res.Address, err)
		}
	}
	a := n.HostAccess
	host := netip.PrefixFrom(a.Addr(), 32)
	if err := m.k.NL.AddrReplace(l, &netlink.Addr{IPNet: prefixNet(host)}); err != nil {
		return fmt.Errorf("add %s to host-access shim %s: %w", host, name, err)
	}
	for _, s := range [][2]string{
		{"net/ipv4/ip_forward", "1"},
		// DNAT of 127.0.0.1:port to a container leaves through the shim.
		{"net/ipv4/conf/" + name + "/route_localnet", "1"},
	} {
		if err := m.k.Sysctl(s[0], s[1]); err != nil {
			return fmt.Errorf("host-access shim %s: %w", name, err)
		}
	}
	if err := m.k.NL.LinkSetUp(l); err != nil {
		return fmt.Errorf("set host-access shim %s up: %w", name, err)
	}
	r := &netlink.Route{LinkIndex: l.Attrs().Index, Dst: prefixNet(pool), Src: net.IP(a.Addr().AsSlice()),
		Priority: shimMetric, Scope: netlink.SCOPE_LINK}
	if err := m.k.NL.RouteReplace(r); err != nil {
		return fmt.Errorf("route %s via host-access shim %s: %w", pool, name, err)
	}
	return nil
}

func (m *lanMode) deleteNetwork(n *store.Network) error {
	var errs []error
	for _, name := range []string{bridgeName(n.ID), probePrefix + dockerid.Short(n.ID)} {
		if err := m.deleteOwn(name); err != nil {
			errs = append(errs, err)
		}
	}
	if a := n.HostAccess; a.IsValid() && m.addrs != nil {
		if pool, ok := firstV4(n); ok {
			if err := m.addrs.ReleaseAddress(context.Background(), &ipam.ReleaseAddressRequest{PoolID: pool.String(), Address: a.Addr().String()}); err != nil {
				errs = append(errs, fmt.Errorf("release host-access address %s: %w", a.Addr(), err))
			}
		}
	}
	parent := m.parentName(n)
	switch {
	case isolated(n):
		errs = append(errs, m.k.DeleteLink(parent))
	case m.othersOn == nil || !m.othersOn(parent, n.ID):
		errs = append(errs, m.vlans.release(parent))
	}
	return errors.Join(errs...)
}

// deleteOwn deletes a podnet-named link only if it is a macvlan or ipvlan
// interface: a bridge of that name belongs to a bridge network.
func (m *lanMode) deleteOwn(name string) error {
	l, err := m.k.ByName(name)
	if err != nil || (l.Type() != netspec.ModeMacvlan && l.Type() != netspec.ModeIpvlan) {
		return nil
	}
	return m.k.DeleteLink(name)
}

func (m *lanMode) createEndpoint(n *store.Network, ep *store.Endpoint) error {
	parentName := m.parentName(n)
	parent, err := m.k.ByName(parentName)
	if err != nil {
		return fmt.Errorf("parent %s of network %s is missing on this host (restart podnetd to restore it, or recreate the network): %w", parentName, dockerid.Short(n.ID), err)
	}
	var mac net.HardwareAddr
	if m.kind == netspec.ModeMacvlan && ep.MAC != "" {
		if mac, err = net.ParseMAC(ep.MAC); err != nil {
			return fmt.Errorf("MAC address %q: %w", ep.MAC, err)
		}
	}
	// A link left by a crashed attempt with the same endpoint ID is ours.
	if err := m.k.DeleteLink(ep.PeerVeth); err != nil {
		return err
	}
	if err := m.addNewLink(n, ep.PeerVeth, parent, mac); err != nil {
		return err
	}
	if err := m.routeEndpoint(n, ep, true); err != nil {
		_ = m.k.DeleteLink(ep.PeerVeth)
		return err
	}
	return nil
}

// routeEndpoint adds (or removes) the host route to a local container
// through the host-access shim (ip route replace IP/32 dev SHIM src ADDR).
func (m *lanMode) routeEndpoint(n *store.Network, ep *store.Endpoint, add bool) error {
	p := ep.IPv4
	if n.Bridge == "" || !n.HostAccess.IsValid() || !p.IsValid() {
		return nil
	}
	shim, err := m.k.ByName(n.Bridge)
	if err != nil {
		if !add && link.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("host-access shim %s of network %s: %w", n.Bridge, dockerid.Short(n.ID), err)
	}
	r := &netlink.Route{LinkIndex: shim.Attrs().Index, Dst: prefixNet(netip.PrefixFrom(p.Addr(), 32)),
		Src: net.IP(n.HostAccess.Addr().AsSlice()), Scope: netlink.SCOPE_LINK}
	if add {
		if err := m.k.NL.RouteReplace(r); err != nil {
			return fmt.Errorf("route %s via host-access shim %s: %w", p.Addr(), n.Bridge, err)
		}
		return nil
	}
	if err := m.k.NL.RouteDel(r); err != nil && !errors.Is(err, unix.ESRCH) && !link.IsNotFound(err) {
		return fmt.Errorf("remove route %s via host-access shim %s: %w", p.Addr(), n.Bridge, err)
	}
	return nil
}

// deleteEndpoint removes the sub-interface (back in the host namespace
// after Leave, or already gone with the container's namespace) and the
// host route.
func (m *lanMode) deleteEndpoint(n *store.Network, ep *store.Endpoint) error {
	return errors.Join(m.k.DeleteLink(ep.PeerVeth), m.routeEndpoint(n, ep, false))
}

// restoreEndpoint re-adds the host route; the sub-interface itself lives
// in the container's namespace, out of sight.
func (m *lanMode) restoreEndpoint(n *store.Network, ep *store.Endpoint) (bool, error) {
	return true, m.routeEndpoint(n, ep, true)
}

// shapeJoin: no gateway on an isolated segment; ipvlan l3/l3s route
// through the device itself (a default route per family, no gateway), as
// Docker's ipvlan does.
func (m *lanMode) shapeJoin(n *store.Network, ep *store.Endpoint, res *network.JoinResponse) {
	if isolated(n) {
		res.Gateway, res.GatewayIPv6 = "", ""
		return
	}
	if o, err := m.options(n); err != nil {
		m.log.Error("join on a network whose options cannot be read", "network", dockerid.Short(n.ID), "err", err)
		return
	} else if !o.L3Routed() {
		return
	}
	res.Gateway, res.GatewayIPv6 = "", ""
	if ep.IPv4.IsValid() {
		res.StaticRoutes = append(res.StaticRoutes, &network.StaticRoute{Destination: "0.0.0.0/0", RouteType: routeConnected})
	}
	if ep.IPv6.IsValid() {
		res.StaticRoutes = append(res.StaticRoutes, &network.StaticRoute{Destination: "::/0", RouteType: routeConnected})
	}
}

// routeConnected is libnetwork's types.CONNECTED: a route bound to the
// interface, without a next hop.
const routeConnected = 1

func firstV4(n *store.Network) (netip.Prefix, bool) {
	for _, s := range n.IPv4 {
		if s.Pool.IsValid() {
			return s.Pool.Masked(), true
		}
	}
	return netip.Prefix{}, false
}

func prefixNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}
