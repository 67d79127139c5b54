package driver

import (
	"fmt"
	"net/netip"

	"github.com/podnet/podnet/internal/dockerid"
	"github.com/podnet/podnet/netspec"
	"github.com/podnet/podnet/overlay"
	"github.com/podnet/podnet/store"
)

// Overlay is what vxlan mode needs from the multi-host data plane.
type Overlay interface {
	EnsureNetwork(n overlay.Network) (string, error)
	RemoveNetwork(id string) error
	// DefaultMTU is a new network's MTU, MaxMTU the largest one allowed
	// (they differ with encryption: see package overlay).
	DefaultMTU() int
	MaxMTU() int
}

// vxlanMode is bridge mode plus the overlay: the same bridge, veths and
// anycast gateway, with proxy ARP on the bridge (containers see the whole
// subnet on-link; the host answers for addresses on other hosts) and a
// VXLAN device per VNI carrying remote blocks.
type vxlanMode struct {
	bridge *bridgeMode
	ov     Overlay
	// tunnels are this host's tunnel addresses in a network's pools
	// (Driver.ensureTunnels reserves them before the network is made).
	tunnels func(networkID string) []netip.Addr
}

func (v *vxlanMode) createNetwork(n *store.Network) error {
	if err := v.bridge.createNetwork(n); err != nil {
		return err
	}
	// proxy_arp: answer a container's ARP for an address on another host
	// with the bridge's MAC, because the host routes that address.
	if err := v.bridge.k.Sysctl("net/ipv4/conf/"+n.Bridge+"/proxy_arp", "1"); err != nil {
		return fmt.Errorf("bridge %s: %w", n.Bridge, err)
	}
	// IPv6 has no proxy ARP: the overlay's NDP responder answers for
	// other hosts' addresses of the IPv6 pools (package overlay, "IPv6").
	pools := n.Pools()
	for i, p := range pools {
		pools[i] = p.Masked()
	}
	direct, err := netspec.Bool(n.Options, netspec.OptDirect, false)
	if err != nil {
		return fmt.Errorf("network %s: %w", dockerid.Short(n.ID), err)
	}
	if _, err := v.ov.EnsureNetwork(overlay.Network{ID: n.ID, VNI: n.VNI, Bridge: n.Bridge, Pools: pools,
		MTU: n.MTU, DirectRouting: direct, Tunnels: v.tunnels(n.ID)}); err != nil {
		return fmt.Errorf("vxlan device for VNI %d: %w", n.VNI, err)
	}
	return nil
}

func (v *vxlanMode) deleteNetwork(n *store.Network) error {
	err := v.ov.RemoveNetwork(n.ID)
	if berr := v.bridge.deleteNetwork(n); berr != nil && err == nil {
		err = berr
	}
	return err
}

func (v *vxlanMode) createEndpoint(n *store.Network, ep *store.Endpoint) error {
	return v.bridge.createEndpoint(n, ep)
}

func (v *vxlanMode) deleteEndpoint(n *store.Network, ep *store.Endpoint) error {
	return v.bridge.deleteEndpoint(n, ep)
}

func (v *vxlanMode) restoreEndpoint(n *store.Network, ep *store.Endpoint) (bool, error) {
	return v.bridge.restoreEndpoint(n, ep)
}
