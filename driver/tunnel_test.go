package driver

import (
	"context"
	"github.com/podnet/podnet/netspec"
	"net/netip"
	"slices"
	"testing"

	"github.com/docker/go-plugins-helpers/network"
	"github.com/podnet/podnet/overlay"
)

// fakeOverlay stands in for the VXLAN device (the overlay's own tests
// cover it); fakeTunnels for IPAM's tunnel addresses.
type fakeOverlay struct{}

func (fakeOverlay) EnsureNetwork(n overlay.Network) (string, error) {
	return overlay.DeviceName(n.VNI), nil
}
func (fakeOverlay) RemoveNetwork(string) error { return nil }
func (fakeOverlay) DefaultMTU() int            { return 1450 }
func (fakeOverlay) MaxMTU() int                { return 1450 }

type fakeTunnels struct{ held map[netip.Prefix]netip.Addr }

func (f *fakeTunnels) TunnelAddress(_ context.Context, p netip.Prefix) (netip.Addr, error) {
	if a, ok := f.held[p]; ok {
		return a, nil
	}
	a := p.Addr().Next().Next().Next() // .3 of the pool
	f.held[p] = a
	return a, nil
}

func (f *fakeTunnels) ReleaseTunnelAddress(_ context.Context, p netip.Prefix) error {
	delete(f.held, p)
	return nil
}

// TestVXLANNetworkTunnelAddress: a vxlan network's NAT rules get this
// host's tunnel address, again after a restart, and the address is
// released with the network.
func TestVXLANNetworkTunnelAddress(t *testing.T) {
	r := newRig(t, nil, "h1")
	tun := &fakeTunnels{held: map[netip.Prefix]netip.Addr{}}
	newDriver := func() {
		d, err := New(Config{Host: r.host, Store: r.st, Ports: r.ports, Kernel: r.d.k, Logger: r.d.log,
			Overlay: fakeOverlay{}, Tunnels: tun})
		if err != nil {
			t.Fatal(err)
		}
		r.d = d
	}
	newDriver()
	ctx := context.Background()
	req := bridgeReq(netID, map[string]any{netspec.OptMode: netspec.ModeVXLAN}, false)
	r.mustCall(func() error { return r.d.CreateNetwork(ctx, req) })
	want := []netip.Addr{netip.MustParseAddr("10.77.0.3")}
	if got := r.ports.nets[netID].TunnelAddrs; !slices.Equal(got, want) {
		t.Fatalf("tunnel addresses in the NAT rules: %v, want %v", got, want)
	}
	r.ports = newFakePorts()
	newDriver()
	r.mustCall(func() error { return r.d.Restore(ctx) })
	if got := r.ports.nets[netID].TunnelAddrs; !slices.Equal(got, want) {
		t.Fatalf("after restore: %v, want %v", got, want)
	}
	r.mustCall(func() error { return r.d.DeleteNetwork(ctx, &network.DeleteNetworkRequest{NetworkID: netID}) })
	if len(tun.held) != 0 {
		t.Fatalf("tunnel addresses left after the network went: %v", tun.held)
	}
}
