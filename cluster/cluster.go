package cluster

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"regexp"
	"sort"
	"strings"

	"github.com/podnet/podnet/admin"
	"github.com/podnet/podnet/internal/dockerid"
	"github.com/podnet/podnet/internal/fault"
	"github.com/podnet/podnet/lnet"
	"github.com/podnet/podnet/netspec"
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
	// host is this host's name and hostNets reads its interface networks
	// (SetHostNetworks).
	host     string
	hostNets func() ([]netspec.HostNetwork, error)
}

// New returns a Manager.
func New(st *store.Store, ipam HostReleaser, log *slog.Logger) *Manager {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Manager{st: st, ipam: ipam, log: log}
}

// inputf is a request the operator must fix (podnet's one kind of
// caller's fault: HTTP 400).
func inputf(format string, args ...any) error { return fault.Invalidf(format, args...) }

var nameRE = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]*$`)

// CreateNetwork validates spec with the driver's own rules (netspec) and
// records it as a named definition; a spec that fails them is never
// stored, so no host's network sync is left retrying it.
func (m *Manager) CreateNetwork(ctx context.Context, spec admin.NetworkSpec) (admin.NetworkStatus, error) {
	if !nameRE.MatchString(spec.Name) {
		return admin.NetworkStatus{}, inputf("network name %q: use letters, digits, '_', '.', '-', starting with a letter or digit", spec.Name)
	}
	if len(spec.Subnets) == 0 {
		return admin.NetworkStatus{}, inputf("give at least one --subnet: every host must create the network with the same subnet")
	}
	ns, err := specOf(spec)
	if err != nil {
		return admin.NetworkStatus{}, fault.Invalid(err)
	}
	n, err := netspec.Validate(ns, nil)
	if err != nil {
		return admin.NetworkStatus{}, fault.Invalid(err)
	}
	if err := checkParents(spec, n); err != nil {
		return admin.NetworkStatus{}, fault.Invalid(err)
	}
	def := definitionOf(spec.Name, n, spec.Parents)
	for _, p := range def.Subnets {
		if err := m.checkSubnetSafe(p, m.parentHere(def)); err != nil {
			return admin.NetworkStatus{}, err
		}
	}
	if err := m.checkName(ctx, spec.Name); err != nil {
		return admin.NetworkStatus{}, err
	}
	if err := m.checkOverlap(ctx, def.Subnets); err != nil {
		return admin.NetworkStatus{}, err
	}
	out, err := lnet.Define(ctx, m.st, def, lnet.KeyPool(def.Subnets), n.Mode == netspec.ModeVXLAN)
	if err != nil {
		return admin.NetworkStatus{}, err
	}
	m.log.Info("network defined", "name", spec.Name, "mode", out.Mode, "subnets", out.Subnets, "vni", out.VNI)
	return NetworkView(out), nil
}

func (m *Manager) checkName(ctx context.Context, name string) error {
	defs, err := m.definitions(ctx)
	if err != nil {
		return err
	}
	for _, d := range defs {
		if d.Name == name {
			return inputf("network %q is already defined (subnets %s)", name, netspec.JoinPrefixes(d.Subnets, ","))
		}
	}
	return nil
}

// checkOverlap refuses subnets overlapping any podnet pool or definition.
func (m *Manager) checkOverlap(ctx context.Context, subnets []netip.Prefix) error {
	kvs, _, err := m.st.List(ctx, store.PoolsPrefix)
	if err != nil {
		return err
	}
	var taken []netip.Prefix
	for _, kv := range kvs {
		var p store.Pool
		if err := kv.Decode(&p); err != nil {
			return err
		}
		taken = append(taken, p.Subnet)
	}
	defs, err := m.definitions(ctx)
	if err != nil {
		return err
	}
	for _, d := range defs {
		taken = append(taken, d.Subnets...)
	}
	var sc store.ServiceCIDR
	if _, err := m.st.Get(ctx, store.ServiceCIDRKey, &sc); err == nil && sc.CIDR.IsValid() {
		taken = append(taken, sc.CIDR)
	}
	for _, mine := range subnets {
		for _, p := range taken {
			if p.Overlaps(mine) {
				return inputf("subnet %s overlaps %s, already used by podnet (pools and the service CIDR)", mine, p)
			}
		}
	}
	return nil
}

// definitions reads every network definition. An undecodable one is an
// error: skipping it would let a new definition overlap it.
func (m *Manager) definitions(ctx context.Context) ([]store.LogicalNetwork, error) {
	kvs, _, err := m.st.List(ctx, store.LNetsPrefix)
	if err != nil {
		return nil, err
	}
	out := make([]store.LogicalNetwork, 0, len(kvs))
	for _, kv := range kvs {
		var d store.LogicalNetwork
		if err := kv.Decode(&d); err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, nil
}

// Networks lists every definition (named or not) with its hosts.
func (m *Manager) Networks(ctx context.Context) ([]admin.NetworkStatus, error) {
	defs, err := m.definitions(ctx)
	if err != nil {
		return nil, err
	}
	alive, err := m.aliveHosts(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]admin.NetworkStatus, 0, len(defs))
	for _, d := range defs {
		pool := lnet.KeyPool(d.Subnets)
		using, err := lnet.HostsUsing(ctx, m.st, pool)
		if err != nil {
			return nil, err
		}
		ns := NetworkView(d)
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
	sort.Slice(out, func(i, j int) bool {
		if out[i].Name != out[j].Name {
			return out[i].Name < out[j].Name
		}
		return lnet.KeyPool(out[i].Subnets).Addr().Less(lnet.KeyPool(out[j].Subnets).Addr())
	})
	return out, nil
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
		if err := kv.Decode(&d); err != nil {
			return err
		}
		if d.Name != name {
			continue
		}
		pool := lnet.KeyPool(d.Subnets)
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
		if err := lnet.Release(ctx, m.st, pool); err != nil {
			return err
		}
		m.log.Info("network removal requested", "name", name)
		return nil
	}
	return inputf("no network %q is defined (podnetctl network ls --cluster lists them)", name)
}

// attached lists "host: container (ip)" for endpoints on pool's networks.
func (m *Manager) attached(ctx context.Context, pool netip.Prefix) ([]string, error) {
	using, err := lnet.HostsUsing(ctx, m.st, pool)
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
		if err := kv.Decode(&ep); err != nil {
			return nil, err
		}
		if !ids[ep.Network] {
			continue
		}
		who := "endpoint " + dockerid.Short(ep.ID)
		var meta store.EndpointMeta
		if _, err := m.st.Get(ctx, store.EndpointMetaKey(ep.Host, ep.ID), &meta); err == nil && meta.Name != "" {
			who = meta.Name
		}
		ip := ep.IPv4
		if !ip.IsValid() {
			ip = ep.IPv6
		}
		out = append(out, fmt.Sprintf("%s: %s (%s)", ep.Host, who, ip.Addr()))
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
		if err := kv.Decode(&a); err != nil {
			m.log.Warn("undecodable liveness record ignored", "key", kv.Key, "err", err)
		}
		// The key alone says the host is up.
		out[strings.TrimPrefix(kv.Key, store.AlivePrefix)] = a
	}
	return out, nil
}
