package registry

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/podnet/podnet/admin"
	"github.com/podnet/podnet/catalog"
	"github.com/podnet/podnet/internal/dockerid"
	"github.com/podnet/podnet/netspec"
	"github.com/podnet/podnet/policy"
	"github.com/podnet/podnet/store"
)

// policyView is a one-shot view of the cluster for policy queries: the
// catalog (policies, containers) and the mode of every host's networks.
type policyView struct {
	cat   *catalog.Catalog
	modes map[string]string // host/network ID → mode
}

func (r *Registry) policyView(ctx context.Context) (*policyView, error) {
	c, err := catalog.Load(ctx, r.st, r.host, r.svcRange.CIDR.Addr().Is6())
	if err != nil {
		return nil, err
	}
	kvs, _, err := r.st.List(ctx, store.NetworksPrefix(""))
	if err != nil {
		return nil, err
	}
	v := &policyView{cat: c, modes: map[string]string{}}
	for _, kv := range kvs {
		var n store.Network
		if kv.Decode(&n) == nil {
			v.modes[n.Host+"/"+n.ID] = n.Mode
		}
	}
	return v, nil
}

// enforced says whether policies are enforced on a container, and why
// not: only its endpoints on bridge and vxlan networks cross its host's
// netfilter hooks.
func (v *policyView) enforced(m catalog.PolicyMember) (bool, []netip.Addr, string) {
	switch m.Mode {
	case store.ModeHost:
		return false, nil, "--net host: it is its host (use an ipBlock with the host's address)"
	case store.ModeContainer:
		return false, nil, "--net container:" + dockerid.Short(m.Parent) + ": that container's policies apply to the stack they share"
	}
	var addrs []netip.Addr
	var skipped []string
	for _, ep := range m.Endpoints {
		mode := v.modes[m.Host+"/"+ep.Network]
		if mode == netspec.ModeBridge || mode == netspec.ModeVXLAN {
			addrs = append(addrs, ep.Addrs...)
		} else {
			skipped = append(skipped, mode)
		}
	}
	slices.SortFunc(addrs, netip.Addr.Compare)
	if len(addrs) == 0 {
		return false, nil, fmt.Sprintf("on %s networks only: their traffic goes straight to the LAN, not through the host", strings.Join(slices.Compact(skipped), ", "))
	}
	return true, addrs, ""
}

// Policies returns every network policy with the containers it selects.
func (r *Registry) Policies(ctx context.Context) ([]admin.PolicyView, error) {
	return r.policyViews(ctx, "")
}

// Policy returns one network policy.
func (r *Registry) Policy(ctx context.Context, name string) (admin.PolicyView, error) {
	vs, err := r.policyViews(ctx, name)
	if err != nil {
		return admin.PolicyView{}, err
	}
	if len(vs) == 0 {
		return admin.PolicyView{}, inputf("no network policy %s (podnetctl policy ls lists them)", name)
	}
	return vs[0], nil
}

func (r *Registry) policyViews(ctx context.Context, only string) ([]admin.PolicyView, error) {
	v, err := r.policyView(ctx)
	if err != nil {
		return nil, err
	}
	var out []admin.PolicyView
	for _, p := range v.cat.Policies() {
		if only != "" && p.Name != only {
			continue
		}
		st := &admin.PolicyStatus{Created: p.Created, Updated: p.Updated, Selected: []admin.PolicyTargetView{}}
		for _, m := range v.cat.SelectedMembers(p.PodSelector) {
			tv := admin.PolicyTargetView{Host: m.Host, Container: m.Name}
			if tv.Container == "" {
				tv.Container = dockerid.Short(m.ID)
			}
			var addrs []netip.Addr
			tv.Enforced, addrs, tv.Reason = v.enforced(m)
			for _, a := range addrs {
				tv.Addresses = append(tv.Addresses, a.String())
			}
			st.Selected = append(st.Selected, tv)
		}
		out = append(out, admin.PolicyView{PolicySpec: SpecOfPolicy(p), Status: st})
	}
	return out, nil
}

// end is one end of a checked connection.
type end struct {
	desc   string
	addr   netip.Addr
	target *policy.Target // set when policies are enforced on it
	host   string         // its host, for a container
}

// CheckPolicy answers `podnetctl policy check`: would a new connection
// from one end to the other on port be allowed? It compiles the policies
// for the two ends with the function every host's data plane is
// programmed from (policy.Compile), on a fresh view of etcd.
func (r *Registry) CheckPolicy(ctx context.Context, q admin.PolicyCheck) (admin.PolicyVerdict, error) {
	proto, port, err := parseCheckPort(q.Port)
	if err != nil {
		return admin.PolicyVerdict{}, err
	}
	v, err := r.policyView(ctx)
	if err != nil {
		return admin.PolicyVerdict{}, err
	}
	to, err := v.resolve(q.To, netip.Addr{})
	if err != nil {
		return admin.PolicyVerdict{}, err
	}
	from, err := v.resolve(q.From, to.addr)
	if err != nil {
		return admin.PolicyVerdict{}, err
	}
	if !to.addr.IsValid() || from.addr.Is4() != to.addr.Is4() {
		if to, err = v.resolve(q.To, from.addr); err != nil {
			return admin.PolicyVerdict{}, err
		}
	}
	if from.addr.Is4() != to.addr.Is4() {
		return admin.PolicyVerdict{}, inputf("%s and %s have no address of one family", from.desc, to.desc)
	}
	pols := v.cat.Policies()
	sels := map[string]store.LabelSelector{}
	for _, p := range pols {
		for _, s := range policy.Selectors(p) {
			sels[policy.Key(s)] = s
		}
	}
	in := policy.Input{Policies: pols, Selected: func(key string) []netip.Addr {
		if s, ok := sels[key]; ok {
			return v.cat.SelectionAddrs(s)
		}
		return nil
	}}
	for _, e := range []end{from, to} {
		if e.target != nil {
			in.Targets = append(in.Targets, *e.target)
		}
	}
	m := policy.Compile(in)
	fromHost := false
	if to.host != "" && !from.addr.IsUnspecified() {
		if u, ok := v.cat.Underlay(to.host); ok && u == from.addr {
			fromHost = true
		}
	}
	d := m.Decide(policy.Conn{Src: from.addr, Dst: to.addr, Proto: proto, Port: port, FromHost: fromHost})
	return admin.PolicyVerdict{Allowed: d.Allowed, From: from.desc, To: to.desc,
		Egress: sideView(d.Egress, "egress"), Ingress: sideView(d.Ingress, "ingress")}, nil
}

func sideView(s policy.Side, dir string) admin.PolicySide {
	out := admin.PolicySide{Allowed: s.Allowed, Isolated: s.Isolated, Policies: s.Policies, Reason: s.Reason}
	for _, r := range s.Rules {
		out.Rules = append(out.Rules, policy.RuleName(r, dir)+": "+r.Text)
	}
	return out
}

// resolve turns a container name, ID or IP address into an end; near
// picks the address family when the container has several addresses.
func (v *policyView) resolve(s string, near netip.Addr) (end, error) {
	if a, err := netip.ParseAddr(s); err == nil {
		a = a.Unmap()
		m, ok := v.cat.MemberByAddr(a)
		if !ok {
			return end{desc: a.String() + " (not a container)", addr: a}, nil
		}
		return v.containerEnd(m, a)
	}
	ms := v.cat.MemberByName(s)
	switch len(ms) {
	case 0:
		return end{}, inputf("no container %q on any host (give a container name, an ID of at least 12 digits, or an IP address)", s)
	case 1:
	default:
		var where []string
		for _, m := range ms {
			where = append(where, m.Host+"/"+dockerid.Short(m.ID))
		}
		return end{}, inputf("%q names several containers (%s): give an ID or an address", s, strings.Join(where, ", "))
	}
	m := ms[0]
	if m.Mode == store.ModeContainer {
		parent := v.cat.MemberByName(m.Parent)
		if len(parent) != 1 {
			return end{}, inputf("container %s shares the network stack of %s, which is not on a podnet network", s, dockerid.Short(m.Parent))
		}
		e, err := v.containerEnd(parent[0], near)
		e.desc = m.Name + " (in the network stack of " + e.desc + ")"
		return e, err
	}
	if m.Mode == store.ModeHost {
		u, ok := v.cat.Underlay(m.Host)
		if !ok {
			return end{}, inputf("container %s runs with --net host on %s, whose address is unknown", s, m.Host)
		}
		return end{desc: m.Name + " (--net host on " + m.Host + ")", addr: u}, nil
	}
	return v.containerEnd(m, near)
}

// containerEnd is a container at the address of the family of near (or
// the one given), with its target when policies are enforced on it.
func (v *policyView) containerEnd(m catalog.PolicyMember, near netip.Addr) (end, error) {
	name := m.Name
	if name == "" {
		name = dockerid.Short(m.ID)
	}
	enforced, addrs, why := v.enforced(m)
	var all []netip.Addr
	for _, ep := range m.Endpoints {
		all = append(all, ep.Addrs...)
	}
	slices.SortFunc(all, netip.Addr.Compare)
	e := end{desc: name + " on " + m.Host, host: m.Host}
	switch {
	case near.IsValid() && slices.Contains(all, near):
		e.addr = near
	default:
		for _, a := range all {
			if !near.IsValid() || a.Is4() == near.Is4() {
				e.addr = a
				break
			}
		}
	}
	if !e.addr.IsValid() && len(all) > 0 {
		e.addr = all[0]
	}
	if !e.addr.IsValid() {
		return e, inputf("container %s has no address", name)
	}
	e.desc += " (" + e.addr.String() + ")"
	if !enforced {
		e.desc += ": policies not enforced: " + why
		return e, nil
	}
	e.target = &policy.Target{ID: m.ID, Name: name, Labels: m.Labels, Known: true, Addrs: addrs}
	return e, nil
}

// parseCheckPort reads PORT[/PROTO].
func parseCheckPort(s string) (string, uint16, error) {
	num, proto, _ := strings.Cut(s, "/")
	switch strings.ToLower(proto) {
	case "", "tcp":
		proto = "TCP"
	case "udp":
		proto = "UDP"
	case "sctp":
		proto = "SCTP"
	default:
		return "", 0, inputf("port %q: unknown protocol %q: use tcp, udp or sctp", s, proto)
	}
	n, err := strconv.Atoi(num)
	if err != nil || n < 1 || n > 65535 {
		return "", 0, inputf("port %q: want PORT[/PROTO] with a port of 1-65535", s)
	}
	return proto, uint16(n), nil
}
