package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/netip"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/podnet/podnet/netdef"
	"github.com/podnet/podnet/store"
)

// HostReleaser frees what a dead host held in IPAM.
type HostReleaser interface {
	ReleaseHostBlocks(ctx context.Context, host string) (int, error)
}

// Manager performs cluster-wide operations.
type Manager struct {
	st   *store.Store
	ipam HostReleaser
	log  *slog.Logger
	// CheckOptions validates a mode's driver options (the driver's own
	// check, so podnetctl refuses what every host would refuse); nil
	// checks nothing.
	CheckOptions func(mode string, opts map[string]string, internal bool) error
}

// New returns a Manager.
func New(st *store.Store, ipam HostReleaser, log *slog.Logger) *Manager {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Manager{st: st, ipam: ipam, log: log}
}

// NetworkSpec is a named network to define.
type NetworkSpec struct {
	Name     string            `json:"name"`
	Mode     string            `json:"mode"`
	Subnets  []string          `json:"subnets"`
	Gateways map[string]string `json:"gateways,omitempty"` // subnet -> gateway IP
	IPRanges map[string]string `json:"ipRanges,omitempty"` // subnet -> range CIDR
	MTU      int               `json:"mtu,omitempty"`
	VNI      int               `json:"vni,omitempty"`
	Options  map[string]string `json:"options,omitempty"`
	Internal bool              `json:"internal,omitempty"`
	// Parent is a macvlan/ipvlan network's parent interface on every host
	// but those Parents (host → interface) name otherwise.
	Parent  string            `json:"parent,omitempty"`
	Parents map[string]string `json:"parents,omitempty"`
}

// InputError is a request the operator must fix.
type InputError struct{ Msg string }

func (e InputError) Error() string { return e.Msg }

func inputf(format string, args ...any) error { return InputError{Msg: fmt.Sprintf(format, args...)} }

var nameRE = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]*$`)

// CreateNetwork validates spec and records it as a named definition.
func (m *Manager) CreateNetwork(ctx context.Context, spec NetworkSpec) (store.LogicalNetwork, error) {
	if !nameRE.MatchString(spec.Name) {
		return store.LogicalNetwork{}, inputf("network name %q: use letters, digits, '_', '.', '-', starting with a letter or digit", spec.Name)
	}
	switch spec.Mode {
	case "":
		spec.Mode = "bridge"
	case "bridge", "vxlan", "none":
	case "macvlan", "ipvlan":
		if err := m.lanSpec(&spec); err != nil {
			return store.LogicalNetwork{}, err
		}
	default:
		return store.LogicalNetwork{}, inputf("unknown mode %q: use bridge, vxlan, macvlan, ipvlan or none", spec.Mode)
	}
	if len(spec.Subnets) == 0 {
		return store.LogicalNetwork{}, inputf("give at least one --subnet: every host must create the network with the same subnet")
	}
	def := store.LogicalNetwork{Name: spec.Name, Mode: spec.Mode, MTU: spec.MTU, VNI: spec.VNI, Options: spec.Options,
		Internal: spec.Internal, Gateways: map[string]string{}, IPRanges: map[string]string{}, Parents: spec.Parents,
		Created: time.Now().UTC()}
	var first netip.Prefix
	for _, s := range spec.Subnets {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return def, inputf("subnet %q: %v", s, err)
		}
		p = p.Masked()
		def.Subnets = append(def.Subnets, p.String())
		if p.Addr().Is6() {
			def.IPv6 = true
		}
		if g, ok := spec.Gateways[s]; ok {
			a, err := netip.ParseAddr(g)
			if err != nil || !p.Contains(a) {
				return def, inputf("gateway %q is not an address of subnet %s", g, p)
			}
			def.Gateways[p.String()] = a.String()
		}
		if r, ok := spec.IPRanges[s]; ok {
			rp, err := netip.ParsePrefix(r)
			if err != nil || !p.Contains(rp.Addr()) || rp.Bits() < p.Bits() {
				return def, inputf("ip-range %q is not inside subnet %s", r, p)
			}
			def.IPRanges[p.String()] = rp.Masked().String()
		}
		if p.Addr().Is4() && (!first.IsValid() || first.Addr().Is6() || p.Addr().Less(first.Addr())) ||
			!first.IsValid() {
			first = p
		}
	}
	if spec.MTU != 0 && (spec.MTU < 68 || spec.MTU > 65535) {
		return def, inputf("mtu %d is out of range 68-65535", spec.MTU)
	}
	if spec.VNI != 0 && spec.Mode != "vxlan" {
		return def, inputf("--vni applies to mode vxlan only")
	}
	if err := m.checkName(ctx, spec.Name); err != nil {
		return def, err
	}
	if err := m.checkOverlap(ctx, def.Subnets); err != nil {
		return def, err
	}
	out, err := netdef.Define(ctx, m.st, def, first, spec.Mode == "vxlan")
	if err != nil {
		return out, err
	}
	m.log.Info("network defined", "name", spec.Name, "mode", spec.Mode, "subnets", def.Subnets, "vni", out.VNI)
	return out, nil
}

// lanSpec checks a macvlan/ipvlan definition: a parent for every host
// (an isolated segment per host is no cluster-wide network), valid names
// and options. The parent goes into the options every host passes to
// Docker; Parents override it per host.
func (m *Manager) lanSpec(spec *NetworkSpec) error {
	if spec.Parent == "" {
		return inputf("mode %s needs --parent IFACE: the interface on the LAN on every host (--host-parent HOST=IFACE where it is named differently)", spec.Mode)
	}
	if _, ok := spec.Options["parent"]; ok {
		return inputf("give the parent with --parent (and --host-parent), not --opt parent")
	}
	opts := map[string]string{}
	for k, v := range spec.Options {
		opts[k] = v
	}
	parents := []string{spec.Parent}
	for _, h := range slices.Sorted(maps.Keys(spec.Parents)) {
		parents = append(parents, spec.Parents[h])
	}
	for _, p := range parents {
		opts["parent"] = p
		if m.CheckOptions != nil {
			if err := m.CheckOptions(spec.Mode, opts, spec.Internal); err != nil {
				return InputError{Msg: err.Error()}
			}
		}
	}
	if spec.Options == nil {
		spec.Options = map[string]string{}
	}
	spec.Options["parent"] = spec.Parent
	return nil
}

func (m *Manager) checkName(ctx context.Context, name string) error {
	defs, err := m.definitions(ctx)
	if err != nil {
		return err
	}
	for _, d := range defs {
		if d.Name == name {
			return inputf("network %q is already defined (subnets %s)", name, strings.Join(d.Subnets, ","))
		}
	}
	return nil
}

// checkOverlap refuses subnets overlapping any podnet pool or definition.
func (m *Manager) checkOverlap(ctx context.Context, subnets []string) error {
	kvs, _, err := m.st.List(ctx, store.PoolsPrefix)
	if err != nil {
		return err
	}
	var taken []string
	for _, kv := range kvs {
		var p store.Pool
		if kv.Decode(&p) == nil {
			taken = append(taken, p.Subnet)
		}
	}
	defs, err := m.definitions(ctx)
	if err != nil {
		return err
	}
	for _, d := range defs {
		taken = append(taken, d.Subnets...)
	}
	for _, s := range subnets {
		mine := netip.MustParsePrefix(s)
		for _, t := range taken {
			if p, err := netip.ParsePrefix(t); err == nil && p.Overlaps(mine) {
				return inputf("subnet %s overlaps %s, already used by podnet", mine, p)
			}
		}
	}
	return nil
}

func (m *Manager) definitions(ctx context.Context) ([]store.LogicalNetwork, error) {
	kvs, _, err := m.st.List(ctx, store.LNetsPrefix)
	if err != nil {
		return nil, err
	}
	out := make([]store.LogicalNetwork, 0, len(kvs))
	for _, kv := range kvs {
		var d store.LogicalNetwork
		if kv.Decode(&d) == nil {
			out = append(out, d)
		}
	}
	return out, nil
}

// NetworkStatus is a definition and where it exists.
type NetworkStatus struct {
	store.LogicalNetwork
	// Hosts maps a host to its Docker network ID for this definition.
	Hosts map[string]string `json:"hosts"`
	// Missing lists live hosts that do not have it (yet).
	Missing []string `json:"missing,omitempty"`
}

// Networks lists every definition (named or not) with its hosts.
func (m *Manager) Networks(ctx context.Context) ([]NetworkStatus, error) {
	defs, err := m.definitions(ctx)
	if err != nil {
		return nil, err
	}
	alive, err := m.aliveHosts(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]NetworkStatus, 0, len(defs))
	for _, d := range defs {
		pool, err := defPool(d)
		if err != nil {
			continue
		}
		using, err := netdef.HostsUsing(ctx, m.st, pool)
		if err != nil {
			return nil, err
		}
		ns := NetworkStatus{LogicalNetwork: d, Hosts: map[string]string{}}
		for h, ids := range using {
			ns.Hosts[h] = ids[0]
		}
		if d.Name != "" {
			for h := range alive {
				if _, ok := ns.Hosts[h]; !ok && !d.Deleting {
					ns.Missing = append(ns.Missing, h)
				}
			}
			sort.Strings(ns.Missing)
		}
		out = append(out, ns)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name+out[i].Subnets[0] < out[j].Name+out[j].Subnets[0] })
	return out, nil
}

// defPool is the key pool of a definition (lowest IPv4 subnet, else lowest IPv6).
func defPool(d store.LogicalNetwork) (netip.Prefix, error) {
	n := store.Network{}
	for _, s := range d.Subnets {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, err
		}
		if p.Addr().Is4() {
			n.IPv4 = append(n.IPv4, store.Subnet{Pool: s})
		} else {
			n.IPv6 = append(n.IPv6, store.Subnet{Pool: s})
		}
	}
	return netdef.FirstPool(&n), nil
}

// RemoveNetwork marks a named definition for removal. It refuses while
// containers on any host are attached, listing them.
func (m *Manager) RemoveNetwork(ctx context.Context, name string) error {
	kvs, _, err := m.st.List(ctx, store.LNetsPrefix)
	if err != nil {
		return err
	}
	for _, kv := range kvs {
		var d store.LogicalNetwork
		if kv.Decode(&d) != nil || d.Name != name {
			continue
		}
		pool, err := defPool(d)
		if err != nil {
			return err
		}
		attached, err := m.attached(ctx, pool)
		if err != nil {
			return err
		}
		if len(attached) > 0 {
			return inputf("network %q still has %d container(s) attached: %s; remove them first",
				name, len(attached), strings.Join(attached, ", "))
		}
		if !d.Deleting {
			d.Deleting = true
			if err := m.st.Update(ctx, kv.Key, kv.ModRev, d); err != nil {
				return fmt.Errorf("mark network %q for removal: %w", name, err)
			}
		}
		// Nobody may have it: then nothing else would delete the definition.
		if err := netdef.Release(ctx, m.st, pool); err != nil {
			return err
		}
		m.log.Info("network removal requested", "name", name)
		return nil
	}
	return inputf("no network %q is defined (podnetctl network ls --cluster lists them)", name)
}

// attached lists "host: container (ip)" for endpoints on pool's networks.
func (m *Manager) attached(ctx context.Context, pool netip.Prefix) ([]string, error) {
	using, err := netdef.HostsUsing(ctx, m.st, pool)
	if err != nil {
		return nil, err
	}
	ids := map[string]bool{}
	for _, list := range using {
		for _, id := range list {
			ids[id] = true
		}
	}
	kvs, _, err := m.st.List(ctx, store.EndpointsPrefix(""))
	if err != nil {
		return nil, err
	}
	var out []string
	for _, kv := range kvs {
		var ep store.Endpoint
		if kv.Decode(&ep) != nil || !ids[ep.Network] {
			continue
		}
		who := "endpoint " + ep.ID[:min(12, len(ep.ID))]
		var meta store.EndpointMeta
		if _, err := m.st.Get(ctx, store.EndpointMetaKey(ep.Host, ep.ID), &meta); err == nil && meta.Name != "" {
			who = meta.Name
		}
		ip := strings.SplitN(ep.IPv4, "/", 2)[0]
		out = append(out, fmt.Sprintf("%s: %s (%s)", ep.Host, who, ip))
	}
	sort.Strings(out)
	return out, nil
}

func (m *Manager) aliveHosts(ctx context.Context) (map[string]store.HostAlive, error) {
	kvs, _, err := m.st.List(ctx, store.AlivePrefix)
	if err != nil {
		return nil, err
	}
	out := map[string]store.HostAlive{}
	for _, kv := range kvs {
		var a store.HostAlive
		if kv.Decode(&a) == nil {
			out[strings.TrimPrefix(kv.Key, store.AlivePrefix)] = a
		}
	}
	return out, nil
}

// ErrAlive is returned when removing a host that is up.
var ErrAlive = errors.New("host is alive")
