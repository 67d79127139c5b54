package driver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/docker/go-plugins-helpers/network"
	"github.com/podnet/podnet/dataplane"
	"github.com/podnet/podnet/internal/dockerid"
	"github.com/podnet/podnet/internal/fault"
	"github.com/podnet/podnet/internal/link"
	"github.com/podnet/podnet/netspec"
	"github.com/podnet/podnet/store"
)

// Endpoints of CNI runtimes (podman, containerd, kubelets) go through the
// same steps as Docker's: a veth pair on the network's bridge, one etcd
// transaction recording the endpoint and naming it the owner of its
// addresses, and published ports in podnet's table. Only the caller
// differs: package cniattach, on behalf of the CNI plugin, instead of
// dockerd's plugin calls. The runtime (the plugin binary) moves the peer
// into the container, as dockerd does for Docker's endpoints.

// ErrCNIMode marks a network whose mode CNI attachments do not support:
// the caller's fault (errors.Is(err, fault.ErrInvalid) holds too).
var ErrCNIMode = fault.New("CNI attachments need a bridge or vxlan network")

// AttachSpec is a CNI attachment to create: its addresses are allocated
// already (by the caller, from podnet's IPAM).
type AttachSpec struct {
	// ID is the endpoint ID (derived from the CNI attachment: the same
	// ADD retried names the same endpoint).
	ID         string
	Network    string // the network's ID on this host
	IPv4, IPv6 netip.Prefix
	MAC        string
	Ports      []dataplane.Binding
	CNI        store.CNIAttachment
	// Meta is written with the endpoint, in its transaction, so the
	// container's name resolves from the moment its address exists.
	Meta store.EndpointMeta
}

// NetworkByPool returns this host's network holding pool (any of its
// subnets): a pool names a network across hosts, where network IDs differ.
func (d *Driver) NetworkByPool(pool netip.Prefix) (store.Network, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, n := range d.nets {
		for _, p := range n.Pools() {
			if p.Masked() == pool.Masked() {
				return *n, true
			}
		}
	}
	return store.Network{}, false
}

// CanAttach says why network n cannot take CNI attachments, or nil.
func CanAttach(n store.Network) error {
	if n.Mode != netspec.ModeBridge && n.Mode != netspec.ModeVXLAN {
		return fmt.Errorf("network %s is in mode %s: %w", dockerid.Short(n.ID), n.Mode, ErrCNIMode)
	}
	return nil
}

// Attach creates a CNI attachment's endpoint: veth pair, published ports,
// then one transaction writing the endpoint, its address ownership and its
// metadata. Anything that fails is undone. An endpoint that exists already
// (an ADD retried after a lost answer) is returned as it is.
func (d *Driver) Attach(ctx context.Context, s AttachSpec) (*store.Endpoint, error) {
	d.netMu.RLock()
	defer d.netMu.RUnlock()
	n, err := d.network(s.Network)
	if err != nil {
		return nil, err
	}
	if err := CanAttach(*n); err != nil {
		return nil, err
	}
	if old, ok := d.endpoint(s.ID); ok {
		return old, nil
	}
	r := &network.CreateEndpointRequest{NetworkID: n.ID, EndpointID: s.ID, Interface: &network.EndpointInterface{MacAddress: s.MAC}}
	if s.IPv4.IsValid() {
		r.Interface.Address = s.IPv4.String()
	}
	if s.IPv6.IsValid() {
		r.Interface.AddressIPv6 = s.IPv6.String()
	}
	ep, err := d.newEndpoint(n, r)
	if err != nil {
		return nil, err
	}
	cni := s.CNI
	ep.CNI = &cni
	m := d.modes[n.Mode]
	if err := m.createEndpoint(n, ep); err != nil {
		return nil, fmt.Errorf("endpoint %s on network %s: %w", dockerid.Short(ep.ID), dockerid.Short(n.ID), err)
	}
	undo := func() { _ = m.deleteEndpoint(n, ep) }
	if len(s.Ports) > 0 {
		ms, err := d.cfg.Ports.Publish(ctx, ep.ID, n.ID, ep.IPv4.Addr(), ep.IPv6.Addr(), s.Ports)
		if err != nil {
			undo()
			return nil, fmt.Errorf("publish ports of endpoint %s: %w", dockerid.Short(ep.ID), err)
		}
		ep.Ports = toStorePorts(ms)
		undo = func() {
			_ = d.cfg.Ports.Unpublish(context.WithoutCancel(ctx), ep.ID)
			_ = m.deleteEndpoint(n, ep)
		}
	}
	meta := s.Meta
	meta.Endpoint, meta.Network, meta.Runtime = ep.ID, n.ID, store.RuntimeCNI
	meta.IPv4, meta.IPv6 = ep.IPv4.Addr(), ep.IPv6.Addr()
	meta.Updated = time.Now().UTC()
	// Selected until the host's next reselection says otherwise (the
	// driver does not know the selectors: too much costs only fan-out).
	metaOps := append([]store.Op{store.Put(store.EndpointMetaKey(d.cfg.Host, ep.ID), meta),
		store.Put(store.SelectedEndpointKey(d.cfg.Host, ep.ID), meta)},
		store.DNSIndexOps(d.cfg.Host, ep.ID, nil, &meta)...)
	if err := d.recordEndpoint(ctx, n, ep, metaOps...); err != nil {
		undo()
		return nil, err
	}
	d.mu.Lock()
	d.eps[ep.ID] = ep
	d.mu.Unlock()
	// Before the runtime moves the interface into the container.
	if err := d.isolate(ctx, n, ep); err != nil {
		_ = d.removeEndpoint(context.WithoutCancel(ctx), n, ep)
		return nil, err
	}
	d.log.Debug("CNI endpoint created", "endpoint", dockerid.Short(ep.ID), "network", dockerid.Short(n.ID),
		"container", dockerid.Short(cni.ContainerID), "ifname", cni.IfName, "ipv4", ep.IPv4, "ipv6", ep.IPv6, "iface", ep.HostVeth)
	return ep, nil
}

// Detach removes a CNI attachment's endpoint (rules, veth pair, records)
// and returns it, so the caller can release its addresses. An unknown
// endpoint is fine (DEL is idempotent): its records are deleted anyway and
// nil is returned.
func (d *Driver) Detach(ctx context.Context, id string) (*store.Endpoint, error) {
	d.netMu.RLock()
	defer d.netMu.RUnlock()
	ep, ok := d.endpoint(id)
	if !ok {
		return nil, d.deleteRecords(ctx, id)
	}
	n, err := d.network(ep.Network)
	if err != nil {
		n = &store.Network{ID: ep.Network, Mode: netspec.ModeBridge}
	}
	return ep, d.removeEndpoint(ctx, n, ep)
}

// Attachments returns a copy of this host's CNI endpoints.
func (d *Driver) Attachments() []store.Endpoint {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []store.Endpoint
	for _, ep := range d.eps {
		if ep.CNI != nil {
			out = append(out, *ep)
		}
	}
	return out
}

// Attachment returns the CNI endpoint id, if this host has it.
func (d *Driver) Attachment(id string) (store.Endpoint, bool) {
	ep, ok := d.endpoint(id)
	if !ok || ep.CNI == nil {
		return store.Endpoint{}, false
	}
	return *ep, true
}

// CheckAttachment verifies the host side of a CNI endpoint: its record is
// known, its network exists and its host interface sits on the network's
// bridge, up.
func (d *Driver) CheckAttachment(id string) (*store.Endpoint, error) {
	ep, ok := d.endpoint(id)
	if !ok || ep.CNI == nil {
		return nil, fmt.Errorf("endpoint %s: %w", dockerid.Short(id), ErrNoAttachment)
	}
	n, err := d.network(ep.Network)
	if err != nil {
		return nil, err
	}
	br, err := d.k.ByName(n.Bridge)
	if err != nil {
		return nil, fmt.Errorf("bridge %s of network %s: %w", n.Bridge, dockerid.Short(n.ID), err)
	}
	l, err := d.k.ByName(ep.HostVeth)
	if err != nil {
		return nil, fmt.Errorf("host interface %s of endpoint %s: %w", ep.HostVeth, dockerid.Short(id), err)
	}
	if l.Attrs().MasterIndex != br.Attrs().Index {
		return nil, fmt.Errorf("host interface %s of endpoint %s is not on bridge %s", ep.HostVeth, dockerid.Short(id), n.Bridge)
	}
	if l.Attrs().Flags&net.FlagUp == 0 {
		return nil, fmt.Errorf("host interface %s of endpoint %s is down", ep.HostVeth, dockerid.Short(id))
	}
	return ep, nil
}

// ErrNoAttachment marks a CNI attachment podnet does not know.
var ErrNoAttachment = errors.New("no such CNI attachment on this host")

// DeadAttachments returns the CNI endpoints older than grace whose
// container is gone or was never reached: the host end of the veth pair
// is missing (the kernel deletes the pair with the container's network
// namespace), or the peer is still in the host namespace (the plugin
// never moved it: the runtime or podnetd died during ADD). Runtimes call
// DEL for the containers they remove; these are the ones whose DEL never
// came.
func (d *Driver) DeadAttachments(grace time.Duration) ([]store.Endpoint, error) {
	cutoff := time.Now().Add(-grace)
	var dead []store.Endpoint
	var errs []error
	for _, ep := range d.Attachments() {
		if !ep.Created.Before(cutoff) {
			continue
		}
		gone, err := d.linkGone(ep.HostVeth)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		stranded := false
		if !gone {
			peerGone, err := d.linkGone(ep.PeerVeth)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			stranded = !peerGone
		}
		if gone || stranded {
			dead = append(dead, ep)
		}
	}
	return dead, errors.Join(errs...)
}

func (d *Driver) linkGone(name string) (bool, error) {
	_, err := d.k.ByName(name)
	if link.IsNotFound(err) {
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("look up %s: %w", name, err)
	}
	return false, nil
}

// deleteRecords removes an endpoint's record and metadata (absent is fine).
func (d *Driver) deleteRecords(ctx context.Context, id string) error {
	_, err := store.WriteEndpointMeta(ctx, d.cfg.Store, d.cfg.Host, id, nil, nil, false, store.Delete(store.EndpointKey(d.cfg.Host, id)))
	return err
}
