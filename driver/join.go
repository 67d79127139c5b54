package driver

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"strings"

	"github.com/docker/go-plugins-helpers/network"
	"github.com/podnet/podnet/dataplane"
	"github.com/podnet/podnet/internal/dockerid"
	"github.com/podnet/podnet/netspec"
	"github.com/podnet/podnet/store"
)

// Join is a lookup: the interface Docker moves into the sandbox and the
// gateways. It never touches the kernel (the sandbox may not exist yet).
func (d *Driver) Join(_ context.Context, r *network.JoinRequest) (*network.JoinResponse, error) {
	ep, ok := d.endpoint(r.EndpointID)
	if !ok {
		return nil, fmt.Errorf("endpoint %s is unknown (create it first)", dockerid.Short(r.EndpointID))
	}
	n, err := d.network(ep.Network)
	if err != nil {
		return nil, err
	}
	// podnet provides its own outbound NAT and -p: never let Docker attach
	// docker_gwbridge (it would for an IPv6-only or internal setup).
	res := &network.JoinResponse{DisableGatewayService: true}
	if n.Mode == netspec.ModeNone {
		return res, nil
	}
	res.InterfaceName = network.InterfaceName{SrcName: ep.PeerVeth, DstPrefix: "eth"}
	if n.Internal {
		// No default route: an internal network reaches nothing outside.
		return res, nil
	}
	res.Gateway = gatewayIn(n.IPv4, ep.IPv4)
	res.GatewayIPv6 = gatewayIn(n.IPv6, ep.IPv6)
	if s, ok := d.modes[n.Mode].(joinShaper); ok {
		s.shapeJoin(n, ep, res)
	}
	return res, nil
}

// gatewayIn returns the gateway (plain IP) of the subnet holding addr, or
// "" when addr is zero or its subnet has no gateway.
func gatewayIn(subs []store.Subnet, addr netip.Prefix) string {
	if !addr.IsValid() {
		return ""
	}
	for _, s := range subs {
		if s.Gateway.IsValid() && s.Pool.Masked().Contains(addr.Addr()) {
			return s.Gateway.Addr().String()
		}
	}
	return ""
}

// Leave has nothing to undo: the interface returns to the host and
// DeleteEndpoint removes it.
func (d *Driver) Leave(context.Context, *network.LeaveRequest) error { return nil }

// ProgramExternalConnectivity publishes the container's ports (docker run
// -p) and records the chosen host ports so a restarted podnetd restores
// them.
func (d *Driver) ProgramExternalConnectivity(ctx context.Context, r *network.ProgramExternalConnectivityRequest) error {
	d.netMu.RLock()
	defer d.netMu.RUnlock()
	ep, ok := d.endpoint(r.EndpointID)
	if !ok {
		return fmt.Errorf("endpoint %s is unknown", dockerid.Short(r.EndpointID))
	}
	return d.publish(ctx, ep, r.Options)
}

// publish programs the ports of com.docker.network.portmap in opts for ep
// and records them.
func (d *Driver) publish(ctx context.Context, ep *store.Endpoint, opts map[string]any) error {
	bindings, err := parsePortmap(opts[labelPortmap])
	if err != nil {
		return fmt.Errorf("endpoint %s: %w", dockerid.Short(ep.ID), err)
	}
	if len(bindings) == 0 {
		return nil
	}
	if n, err := d.network(ep.Network); err == nil && !hasNAT(n) {
		return errNoHostAccess(n)
	}
	ip4, ip6 := ep.IPv4.Addr(), ep.IPv6.Addr()
	ms, err := d.cfg.Ports.Publish(ctx, ep.ID, ep.Network, ip4, ip6, bindings)
	if err != nil {
		return err
	}
	updated := *ep
	updated.Ports = toStorePorts(ms)
	if err := d.cfg.Store.Put(ctx, store.EndpointKey(d.cfg.Host, ep.ID), &updated); err != nil {
		_ = d.cfg.Ports.Unpublish(context.WithoutCancel(ctx), ep.ID)
		return fmt.Errorf("record published ports of endpoint %s: %w", dockerid.Short(ep.ID), err)
	}
	d.mu.Lock()
	d.eps[ep.ID] = &updated
	d.mu.Unlock()
	d.log.Info("ports published", "endpoint", dockerid.Short(ep.ID), "network", dockerid.Short(ep.Network), "ports", describePorts(ms))
	return nil
}

// RevokeExternalConnectivity unpublishes the container's ports.
func (d *Driver) RevokeExternalConnectivity(ctx context.Context, r *network.RevokeExternalConnectivityRequest) error {
	d.netMu.RLock()
	defer d.netMu.RUnlock()
	if err := d.cfg.Ports.Unpublish(ctx, r.EndpointID); err != nil {
		return err
	}
	ep, ok := d.endpoint(r.EndpointID)
	if !ok || len(ep.Ports) == 0 {
		return nil
	}
	updated := *ep
	updated.Ports = nil
	d.mu.Lock()
	d.eps[ep.ID] = &updated
	d.mu.Unlock()
	return d.cfg.Store.Put(ctx, store.EndpointKey(d.cfg.Host, ep.ID), &updated)
}

// portBinding is libnetwork's types.PortBinding as it travels in JSON.
type portBinding struct {
	Proto       int    `json:"Proto"`
	IP          string `json:"IP"`
	Port        uint16 `json:"Port"`
	HostIP      string `json:"HostIP"`
	HostPort    uint16 `json:"HostPort"`
	HostPortEnd uint16 `json:"HostPortEnd"`
}

// parsePortmap decodes com.docker.network.portmap (JSON-decoded into
// interface{} by the mux) into bindings.
func parsePortmap(v any) ([]dataplane.Binding, error) {
	if v == nil {
		return nil, nil
	}
	raw, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("port map: %w", err)
	}
	var pbs []portBinding
	if err := json.Unmarshal(raw, &pbs); err != nil {
		return nil, fmt.Errorf("malformed port map %s: %w", raw, err)
	}
	out := make([]dataplane.Binding, 0, len(pbs))
	for _, pb := range pbs {
		b := dataplane.Binding{ContainerPort: pb.Port, HostPort: pb.HostPort, HostPortEnd: pb.HostPortEnd}
		switch pb.Proto {
		case 6:
			b.Proto = dataplane.TCP
		case 17:
			b.Proto = dataplane.UDP
		case 132:
			b.Proto = dataplane.SCTP
		default:
			return nil, fmt.Errorf("cannot publish port %d: protocol number %d is not tcp, udp or sctp", pb.Port, pb.Proto)
		}
		if pb.Port == 0 {
			return nil, fmt.Errorf("cannot publish container port 0")
		}
		if pb.HostIP != "" {
			a, err := netip.ParseAddr(pb.HostIP)
			if err != nil {
				return nil, fmt.Errorf("host IP %q of published port %d: %w", pb.HostIP, pb.Port, err)
			}
			if !a.IsUnspecified() {
				b.HostIP = a.Unmap()
			}
		}
		if b.HostPortEnd == 0 {
			b.HostPortEnd = b.HostPort
		}
		if b.HostPortEnd < b.HostPort {
			return nil, fmt.Errorf("host port range %d-%d is reversed", b.HostPort, b.HostPortEnd)
		}
		out = append(out, b)
	}
	return out, nil
}

func toStorePorts(ms []dataplane.Mapping) []store.PortMapping {
	out := make([]store.PortMapping, 0, len(ms))
	for _, m := range ms {
		out = append(out, store.PortMapping{Proto: string(m.Proto), HostIP: m.HostIP, HostPort: m.HostPort,
			ContainerIP: m.ContainerIP, ContainerPort: m.ContainerPort})
	}
	return out
}

func fromStorePorts(ps []store.PortMapping) []dataplane.Mapping {
	out := make([]dataplane.Mapping, 0, len(ps))
	for _, p := range ps {
		out = append(out, dataplane.Mapping{Proto: dataplane.Proto(p.Proto), HostIP: p.HostIP, HostPort: p.HostPort,
			ContainerIP: p.ContainerIP, ContainerPort: p.ContainerPort})
	}
	return out
}

func describePorts(ms []dataplane.Mapping) string {
	parts := make([]string, 0, len(ms))
	for _, m := range ms {
		host := "0.0.0.0"
		if m.HostIP.IsValid() {
			host = m.HostIP.String()
		}
		if m.ContainerIP.Is6() && !m.HostIP.IsValid() {
			host = "[::]"
		}
		parts = append(parts, fmt.Sprintf("%s:%d->%s/%s", host, m.HostPort, netip.AddrPortFrom(m.ContainerIP, m.ContainerPort), m.Proto))
	}
	return strings.Join(parts, ", ")
}
