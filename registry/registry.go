package registry

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/podnet/podnet/admin"
	"github.com/podnet/podnet/catalog"
	"github.com/podnet/podnet/store"
)

// maxTxnAttempts bounds the optimistic loops: each retry means another
// writer took a VIP or NodePort picked from the same listing.
const maxTxnAttempts = 20

// probeTimeout bounds the etcd check every write starts with, so that an
// outage fails a command in about this long, naming etcd.
const probeTimeout = 2 * time.Second

// Config wires a Registry.
type Config struct {
	Store *store.Store
	Range ServiceRange
	// Host is this podnetd's host name (views compute Local from it).
	Host   string
	Logger *slog.Logger
}

// Registry creates, changes and removes service objects in etcd. A
// service's record, its VIP claim and its NodePort claims are written in
// one transaction conditioned on the claims being free, so VIPs and
// NodePorts are unique cluster-wide and nothing is half-created.
type Registry struct {
	st       *store.Store
	svcRange ServiceRange
	// host names this podnetd in views.
	host string
	log  *slog.Logger
}

// New returns a Registry.
func New(cfg Config) *Registry {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Registry{st: cfg.Store, svcRange: cfg.Range, host: cfg.Host, log: cfg.Logger}
}

// Range is the service range the registry allocates from.
func (r *Registry) Range() ServiceRange { return r.svcRange }

// probe fails fast, naming etcd, when etcd does not answer.
func (r *Registry) probe(ctx context.Context) error {
	pctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	return r.st.Ping(pctx)
}

// Create validates spec and creates the service, allocating its VIP and
// NodePorts. A service of that name must not exist.
func (r *Registry) Create(ctx context.Context, spec admin.ServiceSpec) (store.Service, error) {
	s, err := r.svcRange.ValidateService(spec)
	if err != nil {
		return s, err
	}
	if err := r.probe(ctx); err != nil {
		return s, err
	}
	lb, err := r.loadLB(ctx)
	if err != nil {
		return s, err
	}
	if err := r.checkAgainstCluster(ctx, lb, []store.Service{s}); err != nil {
		return s, err
	}
	return r.create(ctx, s)
}

// claims are the claim keys a service holds: its VIP, its NodePorts and
// each port of each external IP, with what each is (for errors).
func claims(s store.Service) []string {
	var out []string
	for _, c := range claimsOf(s) {
		out = append(out, c.key)
	}
	return out
}

type claim struct{ key, what string }

func claimsOf(s store.Service) []claim {
	var out []claim
	add := func(key, what string) {
		if !slices.ContainsFunc(out, func(c claim) bool { return c.key == key }) {
			out = append(out, claim{key, what})
		}
	}
	if s.ClusterIP.IsValid() {
		add(store.ServiceIPKey(s.ClusterIP), "clusterIP "+s.ClusterIP.String())
	}
	if s.LoadBalancerIP.IsValid() {
		add(store.LBIPKey(s.LoadBalancerIP), "loadBalancerIP "+s.LoadBalancerIP.String())
	}
	for _, p := range s.Ports {
		if p.NodePort != 0 {
			add(store.NodePortKey(p.NodePort), "nodePort "+strconv.Itoa(int(p.NodePort)))
		}
		for _, a := range s.ExternalIPs {
			add(store.ExternalIPKey(a, p.Protocol, p.Port), fmt.Sprintf("external IP %s port %s", a, portKey(p.Port, p.Protocol)))
		}
	}
	if hc := s.HealthCheckNodePort; hc != 0 {
		add(store.NodePortKey(hc), "healthCheckNodePort "+strconv.Itoa(int(hc)))
	}
	return out
}

// claimWhat describes a claim key of s.
func claimWhat(s store.Service, key string) string {
	for _, c := range claimsOf(s) {
		if c.key == key {
			return c.what
		}
	}
	return key
}

func claimOps(s store.Service, keys []string) []store.Op {
	ops := make([]store.Op, 0, len(keys))
	for _, k := range keys {
		switch {
		case strings.HasPrefix(k, store.ServiceIPsPrefix):
			ops = append(ops, store.Put(k, store.ServiceIPClaim{Service: s.Name}))
		case strings.HasPrefix(k, store.ExternalIPsPrefix):
			ops = append(ops, store.Put(k, store.ExternalIPClaim{Service: s.Name}))
		case strings.HasPrefix(k, store.LBIPsPrefix):
			ops = append(ops, store.Put(k, store.LBIPClaim{Service: s.Name}))
		default:
			ops = append(ops, store.Put(k, store.NodePortClaim{Service: s.Name}))
		}
	}
	return ops
}

func (r *Registry) create(ctx context.Context, want store.Service) (store.Service, error) {
	for range maxTxnAttempts {
		taken, lb, err := r.listClaims(ctx, []store.Service{want})
		if err != nil {
			return want, err
		}
		s, cmps, ops, err := r.planCreate(want, taken, lb)
		if err != nil {
			return s, err
		}
		ok, _, err := r.st.Txn(ctx, cmps, ops)
		if err != nil {
			return s, fmt.Errorf("create service %s: %w", s.Name, err)
		}
		if ok {
			r.logCreated(s)
			return s, nil
		}
		if err := r.whyTaken(ctx, want, true); err != nil {
			return s, err
		}
	}
	return want, fmt.Errorf("create service %s: gave up after %d attempts: VIPs and NodePorts keep being taken concurrently; retry", want.Name, maxTxnAttempts)
}

// planCreate allocates want's VIP, load-balancer address and NodePorts
// from taken and lb and returns the record with the transaction that
// creates it: conditioned on the service and its claims being absent (and
// the load-balancer address's pool as read), it writes the record and the
// claims.
func (r *Registry) planCreate(want store.Service, taken claimSet, lb *lbState) (store.Service, []store.Cmp, []store.Op, error) {
	s := want
	s.Ports = slices.Clone(want.Ports)
	poolCmps, err := r.allocateFrom(&s, taken, lb, nil)
	if err != nil {
		return s, nil, nil, err
	}
	s.Created = time.Now().UTC()
	s.Updated = s.Created
	keys := claims(s)
	cmps := append([]store.Cmp{store.Absent(store.ServiceKey(s.Name))}, poolCmps...)
	for _, k := range keys {
		cmps = append(cmps, store.Absent(k))
	}
	return s, cmps, append([]store.Op{store.Put(store.ServiceKey(s.Name), s)}, claimOps(s, keys)...), nil
}

func (r *Registry) logCreated(s store.Service) {
	r.log.Info("service created", "service", s.Name, "clusterIP", s.ClusterIP, "headless", s.Headless,
		"loadBalancerIP", s.LoadBalancerIP, "ports", len(s.Ports), "selector", s.Selector)
}

// listClaims lists the claims ss may need to allocate from: VIPs when one
// has none, NodePorts (and ports containers publish) when one may need
// some, the load-balancer state when one is a LoadBalancer.
func (r *Registry) listClaims(ctx context.Context, ss []store.Service) (claimSet, *lbState, error) {
	var vips, ports, lbs bool
	for _, s := range ss {
		vips = vips || (!s.Headless && !s.ClusterIP.IsValid())
		ports = ports || hasNodePorts(s.Type) || s.ExternalTrafficPolicy == store.TrafficPolicyLocal
		lbs = lbs || s.Type == store.ServiceTypeLoadBalancer
	}
	taken := claimSet{vips: map[string]bool{}, nodePorts: map[string]bool{}}
	var err error
	if vips {
		if taken.vips, err = r.claimed(ctx, store.ServiceIPsPrefix); err != nil {
			return taken, nil, err
		}
	}
	if ports {
		if taken.nodePorts, err = r.claimed(ctx, store.NodePortsPrefix); err != nil {
			return taken, nil, err
		}
		pub, err := r.publishedPorts(ctx)
		if err != nil {
			return taken, nil, err
		}
		for k := range pub {
			port, _, _ := strings.Cut(k, "/")
			taken.nodePorts[port] = true // a port published with any protocol: no NodePort of any
		}
	}
	var lb *lbState
	if lbs {
		if lb, err = r.loadLB(ctx); err != nil {
			return taken, nil, err
		}
	}
	return taken, lb, nil
}

// whyTaken explains a failed transaction: the service exists (when
// creating), or a VIP or NodePort want asked for belongs to another
// service. nil means a dynamic pick was taken meanwhile: retry.
func (r *Registry) whyTaken(ctx context.Context, want store.Service, creating bool) error {
	if creating {
		if _, err := r.st.Get(ctx, store.ServiceKey(want.Name), nil); err == nil {
			return inputf("service %s already exists (podnetctl service get %s shows it; podnetctl apply -f changes it)", want.Name, want.Name)
		}
	}
	for _, cl := range claimsOf(want) {
		var c store.NodePortClaim // every claim is {"service": name}
		if _, err := r.st.Get(ctx, cl.key, &c); err == nil && c.Service != want.Name {
			return inputf("service %s: %s is taken by service %s", want.Name, cl.what, c.Service)
		}
	}
	return nil
}

// claimSet is the VIPs (by store.AddrName) and NodePorts (by number)
// taken, as listed; allocateFrom adds what it hands out.
type claimSet struct{ vips, nodePorts map[string]bool }

// needsHealthCheckPort: a Local service gets a health-check NodePort.
func needsHealthCheckPort(s store.Service) bool {
	return s.ExternalTrafficPolicy == store.TrafficPolicyLocal && s.HealthCheckNodePort == 0
}

// allocateFrom picks a VIP (unless given or headless), a load-balancer
// address (type LoadBalancer, unless given; from lb) and the NodePorts
// left at 0, and a health-check NodePort for a Local service, against
// claims already listed; what it picks is added to them, so that one
// listing serves a whole file. held are claim keys the service already
// owns (not "taken"). The conditions it returns hold the pool of the
// load-balancer address as read, so that the service's write fails if
// the pool changed meanwhile.
func (r *Registry) allocateFrom(s *store.Service, taken claimSet, lb *lbState, held []string) ([]store.Cmp, error) {
	if !s.Headless && !s.ClusterIP.IsValid() {
		a, ok := r.pickVIP(taken.vips)
		if !ok {
			return nil, inputf("service %s: no free VIP left in the service CIDR %s (%d taken)", s.Name, r.svcRange.CIDR, len(taken.vips))
		}
		s.ClusterIP = a
		taken.vips[store.AddrName(a)] = true
	}
	cmps, err := r.allocateLBFrom(lb, s, held)
	if err != nil {
		return nil, err
	}
	free := func(n int) bool {
		return !taken.nodePorts[strconv.Itoa(n)] || slices.Contains(held, store.NodePortKey(uint16(n)))
	}
	inUse := map[int]bool{int(s.HealthCheckNodePort): true}
	for _, p := range s.Ports {
		if p.NodePort != 0 {
			inUse[int(p.NodePort)] = true
		}
	}
	span := NodePortMax - NodePortMin + 1
	pick := func() (uint16, error) {
		start := rand.IntN(span)
		for j := range span {
			n := NodePortMin + (start+j)%span
			if free(n) && !inUse[n] {
				inUse[n] = true
				taken.nodePorts[strconv.Itoa(n)] = true
				return uint16(n), nil
			}
		}
		return 0, inputf("service %s: no free NodePort left in %d-%d", s.Name, NodePortMin, NodePortMax)
	}
	for i := range s.Ports {
		if !hasNodePorts(s.Type) || s.Ports[i].NodePort != 0 {
			continue
		}
		n, err := pick()
		if err != nil {
			return nil, err
		}
		s.Ports[i].NodePort = n
	}
	if needsHealthCheckPort(*s) {
		n, err := pick()
		if err != nil {
			return nil, err
		}
		s.HealthCheckNodePort = n
	}
	return cmps, nil
}

// claimed lists the claim keys under prefix, by their last component.
func (r *Registry) claimed(ctx context.Context, prefix string) (map[string]bool, error) {
	kvs, _, err := r.st.List(ctx, prefix)
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", prefix, err)
	}
	out := make(map[string]bool, len(kvs))
	for _, kv := range kvs {
		out[strings.TrimPrefix(kv.Key, prefix)] = true
	}
	return out, nil
}

// pickVIP picks a free VIP, scanning from a random offset (as Kubernetes
// does) so that concurrent creates rarely collide.
func (r *Registry) pickVIP(taken map[string]bool) (netip.Addr, bool) {
	n := r.svcRange.size()
	start := rand.Uint32N(n)
	for i := range n {
		a := nthAddr(r.svcRange.CIDR.Addr(), (start+i)%n)
		if _, res := r.svcRange.Reserved[a]; !res && !taken[store.AddrName(a)] {
			return a, true
		}
	}
	return netip.Addr{}, false
}

// checkAgainstCluster refuses what the spec alone cannot show: an
// external IP that is an address podnet or its underlay lives on (a
// registered host's underlay address, its network's own, broadcast and
// gateway addresses, an etcd member, a pod address), whatever the
// allow-list says, or that lies in a load-balancer pool; a loadBalancerIP
// outside every load-balancer pool (lb); and a NodePort a container
// publishes with -p.
func (r *Registry) checkAgainstCluster(ctx context.Context, lb *lbState, ss []store.Service) error {
	var ctl ControlAddrs
	if slices.ContainsFunc(ss, func(s store.Service) bool { return len(s.ExternalIPs) > 0 }) {
		var err error
		if ctl, err = loadControlAddrs(ctx, r.st, r.log); err != nil {
			return fmt.Errorf("check external IPs: %w", err)
		}
	}
	for _, s := range ss {
		for _, a := range s.ExternalIPs {
			if why := ctl.why(a); why != "" {
				return inputf("service %s: external IP %s is %s, which podnet never takes over (not even inside --external-ip-cidrs)", s.Name, a, why)
			}
			if p, ok := lb.poolOf(a); ok {
				return inputf("service %s: external IP %s lies in load-balancer pool %s: use type LoadBalancer with loadBalancerIP %s instead", s.Name, a, p.Name, a)
			}
		}
		if err := lb.checkLoadBalancerIP(s); err != nil {
			return err
		}
	}
	return r.checkPublished(ctx, ss)
}

// Remove deletes a service and releases its VIP and NodePorts; found is
// false when there was no such service (not an error).
func (r *Registry) Remove(ctx context.Context, name string) (bool, error) {
	if err := r.probe(ctx); err != nil {
		return false, err
	}
	for range maxTxnAttempts {
		var s store.Service
		rev, err := r.st.Get(ctx, store.ServiceKey(name), &s)
		if errors.Is(err, store.ErrNotFound) {
			return false, nil
		}
		if err != nil {
			return false, fmt.Errorf("read service %s: %w", name, err)
		}
		ops := []store.Op{store.Delete(store.ServiceKey(name))}
		for _, k := range claims(s) {
			ops = append(ops, store.Delete(k))
		}
		ok, _, err := r.st.Txn(ctx, []store.Cmp{store.ModRevIs(store.ServiceKey(name), rev)}, ops)
		if err != nil {
			return false, fmt.Errorf("remove service %s: %w", name, err)
		}
		if ok {
			r.log.Info("service removed", "service", name, "clusterIP", s.ClusterIP)
			return true, nil
		}
	}
	return false, fmt.Errorf("remove service %s: it keeps changing concurrently; retry", name)
}

// Get returns one service with its endpoints and errors.
func (r *Registry) Get(ctx context.Context, name string) (admin.ServiceView, error) {
	vs, err := r.views(ctx, name)
	if err != nil {
		return admin.ServiceView{}, err
	}
	if len(vs) == 0 {
		return admin.ServiceView{}, inputf("no service %s (podnetctl service ls lists them)", name)
	}
	return vs[0], nil
}

// List returns every service with its endpoints and errors, by name.
func (r *Registry) List(ctx context.Context) ([]admin.ServiceView, error) { return r.views(ctx, "") }

func (r *Registry) views(ctx context.Context, only string) ([]admin.ServiceView, error) {
	c, err := catalog.Load(ctx, r.st, r.host, r.svcRange.CIDR.Addr().Is6())
	if err != nil {
		return nil, err
	}
	status, _, err := r.st.List(ctx, store.ServiceStatusPrefix(""))
	if err != nil {
		return nil, err
	}
	errs := map[string][]admin.ServiceHostError{}
	for _, kv := range status {
		var st store.ServiceStatus
		if kv.Decode(&st) == nil && c.Alive(st.Host) {
			errs[st.Service] = append(errs[st.Service], admin.ServiceHostError{Host: st.Host, Error: st.Error, Since: st.Since})
		}
	}
	lb, err := r.loadLB(ctx)
	if err != nil {
		return nil, err
	}
	l2, err := r.l2Claims(ctx)
	if err != nil {
		return nil, err
	}
	speakers, err := r.Speakers(ctx)
	if err != nil {
		return nil, err
	}
	names := c.ServiceNames()
	if only != "" {
		names = slices.DeleteFunc(names, func(n string) bool { return n != only })
	}
	out := make([]admin.ServiceView, 0, len(names))
	for _, n := range names {
		st, _ := c.Lookup(n)
		s := st.Service
		out = append(out, admin.ServiceView{ServiceSpec: SpecOf(*s), Status: &admin.ServiceStatus{
			Created: s.Created, Updated: s.Updated, Endpoints: c.EndpointViews(s), Errors: errs[n],
			LoadBalancer: r.lbStatus(lb, l2, speakers, *s)}})
	}
	return out, nil
}
