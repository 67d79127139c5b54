package wireguard

import (
	"fmt"
	"net"
	"net/netip"

	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"
)

// Peers lists the device's peers (wg show pnwg).
func (d *Device) Peers() ([]Peer, error) {
	dev, err := d.cfg.Client.Device(DeviceName)
	if err != nil {
		return nil, fmt.Errorf("wg show %s: %w", DeviceName, err)
	}
	out := make([]Peer, 0, len(dev.Peers))
	for _, p := range dev.Peers {
		q := Peer{Key: p.PublicKey}
		if p.Endpoint != nil {
			q.Endpoint = p.Endpoint.AddrPort()
			q.Endpoint = netip.AddrPortFrom(q.Endpoint.Addr().Unmap(), q.Endpoint.Port())
		}
		for _, n := range p.AllowedIPs {
			if pf, ok := ipNetToPrefix(n); ok {
				q.AllowedIPs = append(q.AllowedIPs, pf)
			}
		}
		SortPrefixes(q.AllowedIPs)
		out = append(out, q)
	}
	return out, nil
}

// SetPeer adds p or makes the peer of its key exactly p: wg set pnwg peer
// K endpoint E allowed-ips A,B,… (the list replaces the peer's). An
// allowed prefix another peer holds moves to p (the kernel keeps each
// prefix on one peer), so a block that changed hands needs one call.
func (d *Device) SetPeer(p Peer) error {
	ep := net.UDPAddrFromAddrPort(p.Endpoint)
	allowed := make([]net.IPNet, 0, len(p.AllowedIPs))
	for _, a := range p.AllowedIPs {
		allowed = append(allowed, net.IPNet{IP: a.Addr().AsSlice(), Mask: net.CIDRMask(a.Bits(), a.Addr().BitLen())})
	}
	err := d.cfg.Client.ConfigureDevice(DeviceName, wgtypes.Config{Peers: []wgtypes.PeerConfig{{
		PublicKey: p.Key, Endpoint: ep, ReplaceAllowedIPs: true, AllowedIPs: allowed,
	}}})
	if err != nil {
		return fmt.Errorf("wg set %s peer %s endpoint %s allowed-ips (%d): %w", DeviceName, Fingerprint(p.Key), p.Endpoint,
			len(p.AllowedIPs), err)
	}
	return nil
}

// RemovePeer removes the peer of key: wg set pnwg peer K remove. Its
// sessions end with it: nothing it sends is accepted any more.
func (d *Device) RemovePeer(key Key) error {
	err := d.cfg.Client.ConfigureDevice(DeviceName, wgtypes.Config{Peers: []wgtypes.PeerConfig{{PublicKey: key, Remove: true}}})
	if err != nil {
		return fmt.Errorf("wg set %s peer %s remove: %w", DeviceName, Fingerprint(key), err)
	}
	return nil
}

func ipNetToPrefix(n net.IPNet) (netip.Prefix, bool) {
	a, ok := netip.AddrFromSlice(n.IP)
	if !ok {
		return netip.Prefix{}, false
	}
	ones, _ := n.Mask.Size()
	return netip.PrefixFrom(a.Unmap(), ones).Masked(), true
}
