package driver

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"time"

	"github.com/podnet/podnet/dataplane"
	"github.com/podnet/podnet/internal/dockerid"
	"github.com/podnet/podnet/internal/link"
	"github.com/podnet/podnet/netspec"
	"github.com/podnet/podnet/overlay"
	"github.com/podnet/podnet/store"
)

// Ports is what the driver needs from the NAT/filter engine.
type Ports interface {
	AddNetwork(ctx context.Context, n dataplane.Network) error
	RemoveNetwork(ctx context.Context, networkID string) error
	Publish(ctx context.Context, endpointID, networkID string, ip4, ip6 netip.Addr, b []dataplane.Binding) ([]dataplane.Mapping, error)
	Unpublish(ctx context.Context, endpointID string) error
	Restore(nets []dataplane.Network, eps []dataplane.EndpointPorts)
	Sync(ctx context.Context) error
}

// Config wires a Driver.
type Config struct {
	Host   string
	Store  *store.Store
	Ports  Ports
	Kernel *link.Kernel
	Logger *slog.Logger
	// DefaultMTU for bridge networks without an mtu option (default 1500).
	DefaultMTU int
	// Overlay enables vxlan mode (nil: single-host modes only, and
	// OverlayUnavailable says why, for the error a user sees).
	Overlay            Overlay
	OverlayUnavailable string
	// Tunnels reserves this host's tunnel address in the pools of vxlan
	// networks, for service traffic to other hosts (nil: none).
	Tunnels Tunnels
	// HostAddresses allocates the addresses of macvlan/ipvlan host-access
	// shims (podnet's IPAM; nil: host access is refused).
	HostAddresses HostAddresses
	// HostNetworks reads the networks of this host's interfaces, for the
	// subnet safety rule (netspec.CheckSafeBeside); nil: not checked here
	// (IPAM's RequestPool checks it too).
	HostNetworks func() ([]netspec.HostNetwork, error)
	// Policy is the network policy agent (nil: none).
	Policy Policy
}

// Driver implements the NetworkDriver side of the plugin. Its maps are a
// cache of what is in etcd under networks/<host>/ and endpoints/<host>/;
// Restore rebuilds them (and the kernel) at start.
type Driver struct {
	cfg   Config
	log   *slog.Logger
	k     *link.Kernel
	modes map[string]mode
	vlans *vlanParents

	// netMu orders network-level changes (write) against endpoint-level
	// ones (read), so an endpoint never lands on a bridge being deleted
	// and GC never sees half-created endpoints.
	netMu sync.RWMutex
	// gcMu lets one GC round run at a time (it works partly outside
	// netMu).
	gcMu sync.Mutex
	mu   sync.Mutex // guards nets, eps and tunnels
	nets map[string]*store.Network
	// lan holds the parsed options of macvlan/ipvlan networks, by ID:
	// parsed once from the record (lan.go, lanOptions), never again.
	lan     map[string]netspec.Options
	eps     map[string]*store.Endpoint
	tunnels map[string][]netip.Addr // tunnel addresses by network
}

// mode is one network mode's kernel work. Implementations are idempotent:
// Restore calls createNetwork for networks that already exist.
type mode interface {
	createNetwork(n *store.Network) error
	deleteNetwork(n *store.Network) error
	createEndpoint(n *store.Network, ep *store.Endpoint) error
	deleteEndpoint(n *store.Network, ep *store.Endpoint) error
	// restoreEndpoint re-attaches a surviving endpoint after a restart; it
	// reports whether the endpoint's interface still exists.
	restoreEndpoint(n *store.Network, ep *store.Endpoint) (bool, error)
}

// New builds a Driver; call Restore before serving requests.
func New(cfg Config) (*Driver, error) {
	if cfg.Host == "" || cfg.Store == nil || cfg.Ports == nil || cfg.Kernel == nil {
		return nil, fmt.Errorf("driver: Host, Store, Ports and Kernel are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.DefaultMTU == 0 {
		cfg.DefaultMTU = 1500
	}
	d := &Driver{cfg: cfg, log: cfg.Logger, k: cfg.Kernel,
		nets: map[string]*store.Network{}, eps: map[string]*store.Endpoint{}, tunnels: map[string][]netip.Addr{},
		lan: map[string]netspec.Options{}}
	br := &bridgeMode{k: cfg.Kernel, log: cfg.Logger}
	d.modes = map[string]mode{
		netspec.ModeBridge: br,
		netspec.ModeNone:   noneMode{},
	}
	if cfg.Overlay != nil {
		d.modes[netspec.ModeVXLAN] = &vxlanMode{bridge: br, ov: cfg.Overlay, tunnels: d.tunnelAddrs}
	}
	d.vlans = &vlanParents{st: cfg.Store, host: cfg.Host, k: cfg.Kernel, log: cfg.Logger}
	for _, kind := range []string{netspec.ModeMacvlan, netspec.ModeIpvlan} {
		d.modes[kind] = &lanMode{kind: kind, k: cfg.Kernel, log: cfg.Logger, vlans: d.vlans,
			addrs: cfg.HostAddresses, othersOn: d.othersOnParent, options: d.lanOptions}
	}
	return d, nil
}

// Modes lists the modes this driver implements.
func (d *Driver) Modes() []string {
	out := make([]string, 0, len(d.modes))
	for _, m := range []string{netspec.ModeBridge, netspec.ModeVXLAN, netspec.ModeMacvlan, netspec.ModeIpvlan, netspec.ModeNone} {
		if _, ok := d.modes[m]; ok {
			out = append(out, m)
		}
	}
	return out
}

func (d *Driver) network(id string) (*store.Network, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	n, ok := d.nets[id]
	if !ok {
		return nil, fmt.Errorf("network %s is not known to podnet on this host (was it created while podnetd used another etcd or host name?)", dockerid.Short(id))
	}
	return n, nil
}

func (d *Driver) endpoint(id string) (*store.Endpoint, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	ep, ok := d.eps[id]
	return ep, ok
}

// HasNetwork reports whether id is a podnet network on this host.
func (d *Driver) HasNetwork(id string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	_, ok := d.nets[id]
	return ok
}

// Networks returns a copy of this host's networks.
func (d *Driver) Networks() []store.Network {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]store.Network, 0, len(d.nets))
	for _, n := range d.nets {
		out = append(out, *n)
	}
	return out
}

// Endpoints returns a copy of this host's endpoints.
func (d *Driver) Endpoints() []store.Endpoint {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]store.Endpoint, 0, len(d.eps))
	for _, e := range d.eps {
		out = append(out, *e)
	}
	return out
}

func (d *Driver) planeNetwork(n *store.Network) dataplane.Network {
	pn := dataplane.Network{ID: n.ID, Bridge: n.Bridge, Masquerade: n.Masquerade, Internal: n.Internal,
		Subnets: n.Pools(), TunnelAddrs: d.tunnelAddrs(n.ID), LAN: netspec.IsLAN(n.Mode)}
	if n.Mode == netspec.ModeVXLAN {
		pn.Uplink = overlay.DeviceName(n.VNI)
	}
	return pn
}

// hasNAT reports whether the NAT engine has a part in the network: every
// mode with a host-side interface (a macvlan/ipvlan network only with its
// host-access shim).
func hasNAT(n *store.Network) bool {
	return n.Mode != netspec.ModeNone && (!netspec.IsLAN(n.Mode) || n.Bridge != "")
}

func now() time.Time { return time.Now().UTC().Truncate(time.Second) }
