package driver

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"

	"github.com/docker/go-plugins-helpers/network"
	"github.com/podnet/podnet/internal/dockerid"
	"github.com/podnet/podnet/netspec"
	"github.com/podnet/podnet/store"
)

// CreateEndpoint creates the endpoint's interface and records it (one etcd
// transaction, which also names the endpoint as the owner of its address).
// It answers only with what Docker left empty: the MAC, when Docker had none.
func (d *Driver) CreateEndpoint(ctx context.Context, r *network.CreateEndpointRequest) (*network.CreateEndpointResponse, error) {
	d.netMu.RLock()
	defer d.netMu.RUnlock()
	n, err := d.network(r.NetworkID)
	if err != nil {
		return nil, err
	}
	if old, ok := d.endpoint(r.EndpointID); ok {
		// Docker retried after a lost answer: the same endpoint is fine.
		return d.endpointResponse(r, old), nil
	}
	if err := d.checkLANEndpoint(n, r); err != nil {
		return nil, err
	}
	ep, err := d.newEndpoint(n, r)
	if err != nil {
		return nil, err
	}
	m := d.modes[n.Mode]
	if err := m.createEndpoint(n, ep); err != nil {
		return nil, fmt.Errorf("endpoint %s on network %s: %w", dockerid.Short(ep.ID), dockerid.Short(n.ID), err)
	}
	if err := d.recordEndpoint(ctx, n, ep); err != nil {
		_ = m.deleteEndpoint(n, ep)
		return nil, err
	}
	d.mu.Lock()
	d.eps[ep.ID] = ep
	d.mu.Unlock()
	// Before Docker can start the container (after Join): isolated
	// before it runs.
	if err := d.isolate(ctx, n, ep); err != nil {
		_ = d.removeEndpoint(context.WithoutCancel(ctx), n, ep)
		return nil, err
	}
	if err := d.publishAtCreate(ctx, n, ep, r.Options); err != nil {
		_ = d.removeEndpoint(context.WithoutCancel(ctx), n, ep)
		return nil, err
	}
	d.log.Debug("endpoint created", "endpoint", dockerid.Short(ep.ID), "network", dockerid.Short(n.ID), "ipv4", ep.IPv4, "ipv6", ep.IPv6, "mac", ep.MAC, "iface", ep.HostVeth)
	return d.endpointResponse(r, ep), nil
}

func (d *Driver) endpointResponse(r *network.CreateEndpointRequest, ep *store.Endpoint) *network.CreateEndpointResponse {
	if r.Interface != nil && r.Interface.MacAddress != "" || ep.MAC == "" {
		return nil
	}
	return &network.CreateEndpointResponse{Interface: &network.EndpointInterface{MacAddress: ep.MAC}}
}

func (d *Driver) newEndpoint(n *store.Network, r *network.CreateEndpointRequest) (*store.Endpoint, error) {
	ep := &store.Endpoint{ID: r.EndpointID, Network: n.ID, Host: d.cfg.Host, Created: now()}
	if r.Interface != nil {
		ep.MAC = r.Interface.MacAddress
		for _, a := range []struct {
			dst *netip.Prefix
			s   string
		}{{&ep.IPv4, r.Interface.Address}, {&ep.IPv6, r.Interface.AddressIPv6}} {
			if a.s == "" {
				continue
			}
			p, err := netip.ParsePrefix(a.s)
			if err != nil {
				return nil, fmt.Errorf("endpoint address %q from Docker: %w", a.s, err)
			}
			*a.dst = p
		}
	}
	for _, p := range []netip.Prefix{ep.IPv4, ep.IPv6} {
		if !p.IsValid() {
			continue
		}
		if _, ok := poolOf(n, p.Addr()); !ok {
			return nil, fmt.Errorf("endpoint address %s is in no subnet of network %s", p.Addr(), dockerid.Short(n.ID))
		}
	}
	if n.Mode == netspec.ModeNone {
		return ep, nil
	}
	if netspec.IsLAN(n.Mode) {
		ep.PeerVeth = lanIfName(ep.ID)
		if n.Mode == netspec.ModeIpvlan {
			return ep, nil // the parent's MAC
		}
	}
	if ep.MAC == "" {
		ep.MAC = macFor(ep.IPv4).String()
	} else if _, err := net.ParseMAC(ep.MAC); err != nil {
		return nil, fmt.Errorf("MAC address %q: %w", ep.MAC, err)
	}
	if !netspec.IsLAN(n.Mode) {
		ep.HostVeth, ep.PeerVeth = hostVeth(ep.ID), peerVeth(ep.ID)
	}
	return ep, nil
}

// macFor derives a MAC from the IPv4 address, as Docker's bridge does
// (02:42:<ip>), under podnet's own prefix 02:70: addresses are unique
// across hosts, so the MACs are too, and a restarted container keeps its
// MAC with its address. Without IPv4 the MAC is random.
func macFor(p netip.Prefix) net.HardwareAddr {
	if p.IsValid() && p.Addr().Is4() {
		b := p.Addr().As4()
		return net.HardwareAddr{0x02, 0x70, b[0], b[1], b[2], b[3]}
	}
	mac := make(net.HardwareAddr, 6)
	_, _ = rand.Read(mac)
	mac[0] = (mac[0] | 0x02) &^ 0x01
	return mac
}

// recordEndpoint writes the endpoint (and extra, such as a CNI
// attachment's metadata) and, in the same transaction, names it as the
// owner of its addresses, so a leaked address can be traced. The owner is
// written only over an existing address record: never resurrect an
// address IPAM has released.
func (d *Driver) recordEndpoint(ctx context.Context, n *store.Network, ep *store.Endpoint, extra ...store.Op) error {
	epOps := append([]store.Op{store.Put(store.EndpointKey(d.cfg.Host, ep.ID), ep)}, extra...)
	ops := slices.Clone(epOps)
	var cmps []store.Cmp
	for _, p := range []netip.Prefix{ep.IPv4, ep.IPv6} {
		if !p.IsValid() {
			continue
		}
		pool, ok := poolOf(n, p.Addr())
		if !ok {
			continue
		}
		key := store.AddrKey(pool, p.Addr())
		cmps = append(cmps, store.Present(key))
		ops = append(ops, store.Put(key, store.Address{
			IP: p.Addr(), Kind: store.AddrContainer, Host: d.cfg.Host, Endpoint: ep.ID, Since: ep.Created}))
	}
	ok, _, err := d.cfg.Store.Txn(ctx, cmps, ops)
	if err == nil && !ok {
		d.log.Warn("endpoint address has no IPAM record; recording the endpoint only", "endpoint", dockerid.Short(ep.ID), "ipv4", ep.IPv4, "ipv6", ep.IPv6)
		_, _, err = d.cfg.Store.Txn(ctx, nil, epOps)
	}
	if err != nil {
		return fmt.Errorf("record endpoint %s: %w", dockerid.Short(ep.ID), err)
	}
	return nil
}

func poolOf(n *store.Network, a netip.Addr) (netip.Prefix, bool) {
	subs := n.IPv4
	if a.Is6() {
		subs = n.IPv6
	}
	for _, s := range subs {
		if p := s.Pool.Masked(); p.Contains(a) {
			return p, true
		}
	}
	return netip.Prefix{}, false
}

// DeleteEndpoint removes the endpoint's rules, interface and record. It
// tolerates an endpoint that is already gone (forced cleanup, retries).
func (d *Driver) DeleteEndpoint(ctx context.Context, r *network.DeleteEndpointRequest) error {
	d.netMu.RLock()
	defer d.netMu.RUnlock()
	ep, ok := d.endpoint(r.EndpointID)
	if !ok {
		return d.deleteRecords(ctx, r.EndpointID)
	}
	n, err := d.network(ep.Network)
	if err != nil {
		n = &store.Network{ID: ep.Network, Mode: netspec.ModeBridge}
	}
	return d.removeEndpoint(ctx, n, ep)
}

// removeEndpoint undoes everything CreateEndpoint and
// ProgramExternalConnectivity did, continuing past failures.
func (d *Driver) removeEndpoint(ctx context.Context, n *store.Network, ep *store.Endpoint) error {
	var errs []error
	if err := d.cfg.Ports.Unpublish(ctx, ep.ID); err != nil {
		errs = append(errs, err)
	}
	if m, ok := d.modes[n.Mode]; ok {
		if err := m.deleteEndpoint(n, ep); err != nil {
			errs = append(errs, err)
		}
	}
	if _, err := store.WriteEndpointMeta(ctx, d.cfg.Store, d.cfg.Host, ep.ID, nil, nil, false,
		store.Delete(store.EndpointKey(d.cfg.Host, ep.ID))); err != nil {
		errs = append(errs, err)
	}
	d.mu.Lock()
	delete(d.eps, ep.ID)
	d.mu.Unlock()
	if d.cfg.Policy != nil {
		d.cfg.Policy.EndpointDeleted(ctx, ep.ID)
	}
	d.log.Debug("endpoint deleted", "endpoint", dockerid.Short(ep.ID), "network", dockerid.Short(n.ID))
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("delete endpoint %s: %w", dockerid.Short(ep.ID), err)
	}
	return nil
}

// EndpointInfo is mandatory for Docker but nothing reads its contents for
// remote drivers; return a small object for `docker` debugging.
func (d *Driver) EndpointInfo(_ context.Context, r *network.InfoRequest) (*network.InfoResponse, error) {
	v := map[string]string{}
	if ep, ok := d.endpoint(r.EndpointID); ok && ep.HostVeth != "" {
		v["podnet.host-interface"] = ep.HostVeth
	}
	return &network.InfoResponse{Value: v}, nil
}
