package driver

import (
	"crypto/sha256"
	"fmt"
	"log/slog"
	"net"
	"net/netip"

	"github.com/podnet/podnet/internal/dockerid"
	"github.com/podnet/podnet/internal/link"
	"github.com/podnet/podnet/store"
)

// Interface names. They are an upgrade contract (restore finds links by
// them): never change them. IFNAMSIZ allows 15 characters.
const (
	bridgePrefix   = "pn-" // pn-<network id[:12]>
	hostVethPrefix = "pnh" // pnh<endpoint id[:12]>, stays on the host
	peerVethPrefix = "pnc" // pnc<endpoint id[:12]>, moved into the container as ethN
)

func bridgeName(networkID string) string { return bridgePrefix + dockerid.Short(networkID) }
func hostVeth(endpointID string) string  { return hostVethPrefix + dockerid.Short(endpointID) }
func peerVeth(endpointID string) string  { return peerVethPrefix + dockerid.Short(endpointID) }

// bridgeMode: one Linux bridge per network holding the gateway addresses,
// one veth pair per endpoint.
type bridgeMode struct {
	k   *link.Kernel
	log *slog.Logger
}

// gatewayMAC derives the bridge MAC from the network's first pool, so it is
// the same on every host (the gateway is anycast) and stable across
// restarts, and the bridge MAC never flips when ports come and go.
func gatewayMAC(n *store.Network) net.HardwareAddr {
	key := n.ID
	if subs := n.Subnets(); len(subs) > 0 {
		key = subs[0].Pool.String()
	}
	h := sha256.Sum256([]byte("podnet-gateway:" + key))
	return net.HardwareAddr{0x02, 0x70, h[0], h[1], h[2], h[3]}
}

func gatewayAddrs(n *store.Network) []netip.Prefix {
	var out []netip.Prefix
	for _, s := range n.Subnets() {
		if s.Gateway.IsValid() {
			out = append(out, s.Gateway)
		}
	}
	return out
}

// createNetwork ensures the bridge, its gateways and the sysctls podnet
// relies on: route_localnet (so 127.0.0.1:port can be DNATed into the
// network), proxy_delay 0 (proxy ARP answers at once), forwarding.
func (b *bridgeMode) createNetwork(n *store.Network) error {
	gws := gatewayAddrs(n)
	if _, err := b.k.EnsureBridge(n.Bridge, n.MTU, gatewayMAC(n), gws); err != nil {
		return err
	}
	sysctls := [][2]string{
		{"net/ipv4/ip_forward", "1"},
		{"net/ipv4/conf/" + n.Bridge + "/route_localnet", "1"},
		{"net/ipv4/neigh/" + n.Bridge + "/proxy_delay", "0"},
	}
	if len(n.IPv6) > 0 {
		sysctls = append(sysctls,
			[2]string{"net/ipv6/conf/all/forwarding", "1"},
			// A fresh bridge's link-local address stays tentative for ~1 s
			// under DAD, and until then the kernel sends no neighbor
			// solicitations from it: forwarding to containers stalls.
			[2]string{"net/ipv6/conf/" + n.Bridge + "/accept_dad", "0"},
			[2]string{"net/ipv6/neigh/" + n.Bridge + "/proxy_delay", "0"})
	}
	for _, s := range sysctls {
		if err := b.k.Sysctl(s[0], s[1]); err != nil {
			return fmt.Errorf("bridge %s: %w", n.Bridge, err)
		}
	}
	// Network policy filters traffic between containers of one bridge at
	// the IP forward hook, which bridged frames reach only through
	// br_netfilter (dockerd does not always load it).
	if err := b.k.EnsureBridgeNetfilter(n.Bridge); err != nil {
		b.log.Error("network policy cannot filter traffic between containers of this network", "network", n.ID, "err", err)
	}
	return nil
}

func (b *bridgeMode) deleteNetwork(n *store.Network) error {
	return b.k.DeleteLink(n.Bridge)
}

func (b *bridgeMode) createEndpoint(n *store.Network, ep *store.Endpoint) error {
	br, err := b.k.ByName(n.Bridge)
	if err != nil {
		return fmt.Errorf("bridge %s of network %s is missing (restart podnetd to restore it): %w", n.Bridge, dockerid.Short(n.ID), err)
	}
	var mac net.HardwareAddr
	if ep.MAC != "" {
		if mac, err = net.ParseMAC(ep.MAC); err != nil {
			return fmt.Errorf("MAC address %q: %w", ep.MAC, err)
		}
	}
	// A veth left by a crashed attempt with the same endpoint ID would make
	// the create fail with EEXIST; it is ours, so replace it.
	if err := b.k.DeleteLink(ep.HostVeth); err != nil {
		return err
	}
	if err := b.k.AddVeth(link.VethConfig{Host: ep.HostVeth, Peer: ep.PeerVeth, MTU: n.MTU, PeerMAC: mac, Master: br.Attrs().Index, Hairpin: true}); err != nil {
		return err
	}
	// Tell the host the new address's MAC now: a peer (on another host, or a
	// client of a published port) that tried the address before this
	// container existed left an INCOMPLETE neighbor entry that would hold
	// its packets until the next ARP retry, a second later. Only a speed-up:
	// the kernel still resolves the address by itself if this fails.
	for _, p := range []netip.Prefix{ep.IPv4, ep.IPv6} {
		if p.IsValid() && mac != nil {
			if err := b.k.AnnounceNeighbor(br.Attrs().Index, p.Addr(), mac); err != nil {
				b.log.Warn("cannot record the endpoint's neighbor entry", "endpoint", dockerid.Short(ep.ID), "err", err)
			}
		}
	}
	return nil
}

// deleteEndpoint removes the veth pair through its host end. When the
// container's namespace died first, the pair is already gone.
func (b *bridgeMode) deleteEndpoint(_ *store.Network, ep *store.Endpoint) error {
	if err := b.k.DeleteLink(ep.HostVeth); err != nil {
		return err
	}
	// The peer is normally inside the container or gone with the host end;
	// if Docker moved it back to the host (after Leave) deleting the host
	// end removed it too. Delete it by name in case the pair was split.
	return b.k.DeleteLink(ep.PeerVeth)
}

func (b *bridgeMode) restoreEndpoint(n *store.Network, ep *store.Endpoint) (bool, error) {
	br, err := b.k.ByName(n.Bridge)
	if err != nil {
		return false, fmt.Errorf("bridge %s: %w", n.Bridge, err)
	}
	return b.k.EnsureMaster(ep.HostVeth, br.Attrs().Index)
}

// noneMode gives containers no interface from the network: Join returns no
// SrcName, and the network has no kernel objects at all.
type noneMode struct{}

func (noneMode) createNetwork(*store.Network) error                   { return nil }
func (noneMode) deleteNetwork(*store.Network) error                   { return nil }
func (noneMode) createEndpoint(*store.Network, *store.Endpoint) error { return nil }
func (noneMode) deleteEndpoint(*store.Network, *store.Endpoint) error { return nil }
func (noneMode) restoreEndpoint(*store.Network, *store.Endpoint) (bool, error) {
	return true, nil
}
