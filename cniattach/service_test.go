package cniattach

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/docker/go-plugins-helpers/ipam"
	"github.com/podnet/podnet/admin"
	"github.com/podnet/podnet/driver"
	"github.com/podnet/podnet/store"
)

// fakeDriver keeps attachments in memory; the driver's side is tested for
// real in package driver (attach_kernel_test.go).
type fakeDriver struct {
	mu        sync.Mutex
	nets      []store.Network
	eps       map[string]store.Endpoint
	specs     []driver.AttachSpec
	failNext  error
	dead      []string
	unhealthy map[string]bool
}

func newFakeDriver(nets ...store.Network) *fakeDriver {
	return &fakeDriver{nets: nets, eps: map[string]store.Endpoint{}, unhealthy: map[string]bool{}}
}

func (f *fakeDriver) NetworkByPool(p netip.Prefix) (store.Network, bool) {
	for _, n := range f.nets {
		if slices.Contains(n.Pools(), p) {
			return n, true
		}
	}
	return store.Network{}, false
}

func (f *fakeDriver) Attach(_ context.Context, s driver.AttachSpec) (*store.Endpoint, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.specs = append(f.specs, s)
	if err := f.failNext; err != nil {
		f.failNext = nil
		return nil, err
	}
	cni := s.CNI
	ep := store.Endpoint{ID: s.ID, Network: s.Network, IPv4: s.IPv4, IPv6: s.IPv6, HostVeth: "pnh" + s.ID[:12], PeerVeth: "pnc" + s.ID[:12],
		MAC: "02:70:00:00:00:01", CNI: &cni, Created: time.Now()}
	f.eps[s.ID] = ep
	return &ep, nil
}

func (f *fakeDriver) Detach(_ context.Context, id string) (*store.Endpoint, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	ep, ok := f.eps[id]
	if !ok {
		return nil, nil
	}
	delete(f.eps, id)
	return &ep, nil
}

func (f *fakeDriver) Attachment(id string) (store.Endpoint, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	ep, ok := f.eps[id]
	return ep, ok
}

func (f *fakeDriver) CheckAttachment(id string) (*store.Endpoint, error) {
	ep, ok := f.Attachment(id)
	if !ok {
		return nil, driver.ErrNoAttachment
	}
	if f.unhealthy[id] {
		return nil, errors.New("host interface is missing")
	}
	return &ep, nil
}

func (f *fakeDriver) Attachments() []store.Endpoint {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []store.Endpoint
	for _, ep := range f.eps {
		out = append(out, ep)
	}
	return out
}

func (f *fakeDriver) DeadAttachments(time.Duration) ([]store.Endpoint, error) {
	var out []store.Endpoint
	for _, id := range f.dead {
		if ep, ok := f.Attachment(id); ok {
			out = append(out, ep)
		}
	}
	return out, nil
}

// fakeIPAM hands out addresses in order and records what is held.
type fakeIPAM struct {
	mu   sync.Mutex
	next map[string]int
	held map[netip.Addr]bool
	fail map[string]error // by pool
}

func newFakeIPAM() *fakeIPAM {
	return &fakeIPAM{next: map[string]int{}, held: map[netip.Addr]bool{}, fail: map[string]error{}}
}

func (f *fakeIPAM) RequestAddress(_ context.Context, r *ipam.RequestAddressRequest) (*ipam.RequestAddressResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.fail[r.PoolID]; err != nil {
		return nil, err
	}
	p := netip.MustParsePrefix(r.PoolID)
	var a netip.Addr
	if r.Address != "" {
		a = netip.MustParseAddr(r.Address)
		if f.held[a] {
			return nil, fmt.Errorf("address %s is taken", a)
		}
	} else {
		f.next[r.PoolID]++
		a = p.Addr()
		for range f.next[r.PoolID] + 1 {
			a = a.Next()
		}
	}
	f.held[a] = true
	return &ipam.RequestAddressResponse{Address: netip.PrefixFrom(a, p.Bits()).String()}, nil
}

func (f *fakeIPAM) ReleaseAddress(_ context.Context, r *ipam.ReleaseAddressRequest) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.held, netip.MustParseAddr(r.Address))
	return nil
}

func (f *fakeIPAM) holding() []netip.Addr {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []netip.Addr
	for a := range f.held {
		out = append(out, a)
	}
	slices.SortFunc(out, func(a, b netip.Addr) int { return a.Compare(b) })
	return out
}

type fakeRecords map[string]store.Address

func (f fakeRecords) Get(_ context.Context, key string, v any) (int64, error) {
	a, ok := f[key]
	if !ok {
		return 0, store.ErrNotFound
	}
	*v.(*store.Address) = a
	return 1, nil
}

var (
	pool4 = netip.MustParsePrefix("10.44.0.0/16")
	pool6 = netip.MustParsePrefix("fd00:44::/64")
	dual  = store.Network{ID: "net1", Mode: "vxlan", MTU: 1450,
		IPv4: []store.Subnet{{Pool: pool4, Gateway: netip.MustParsePrefix("10.44.0.1/16")}},
		IPv6: []store.Subnet{{Pool: pool6, Gateway: netip.MustParsePrefix("fd00:44::1/64")}}}
	dns = admin.CNIDNS{Nameservers: []netip.Addr{netip.MustParseAddr("10.96.0.10")}, Search: []string{"svc.podnet.local"}}
)

func newService(d *fakeDriver, m *fakeIPAM) *Service {
	return New(Config{Driver: d, IPAM: m, Records: fakeRecords{}, DNS: dns})
}

func addReq() *admin.CNIRequest {
	cid := "c0ffee0123456789c0ffee0123456789c0ffee0123456789c0ffee0123456789"
	return &admin.CNIRequest{Network: "pods", Subnet: pool4, ContainerID: cid, IfName: "eth0", NetNS: "/run/netns/x",
		Name: "web1", Aliases: []string{"web", "web1", "", "web", cid[:12]},
		Ports: []admin.CNIPort{{HostPort: 8080, ContainerPort: 80}, {HostPort: 5353, ContainerPort: 53, Protocol: "UDP"}}}
}

func TestAdd(t *testing.T) {
	d, m := newFakeDriver(dual), newFakeIPAM()
	s := newService(d, m)
	res, err := s.Add(context.Background(), addReq())
	if err != nil {
		t.Fatal(err)
	}
	if len(d.specs) != 1 {
		t.Fatalf("attach calls: %d", len(d.specs))
	}
	spec := d.specs[0]
	if spec.ID != EndpointID("pods", addReq().ContainerID, "eth0") || spec.Network != "net1" || !spec.IPv4.IsValid() || !spec.IPv6.IsValid() {
		t.Fatalf("spec %+v: want the derived ID, the network and one address per family", spec)
	}
	if spec.Meta.Name != "web1" || !slices.Equal(spec.Meta.Aliases, []string{"web"}) || !spec.Meta.Ready || spec.Meta.Container != addReq().ContainerID {
		t.Fatalf("metadata %+v: want the name, aliases without the name, blanks, repeats or the short ID", spec.Meta)
	}
	if len(spec.Ports) != 2 || spec.Ports[1].Proto != "udp" || spec.Ports[0].HostPortEnd != 8080 {
		t.Fatalf("ports %+v", spec.Ports)
	}
	if len(res.IPs) != 2 || res.IPs[0].Gateway != netip.MustParseAddr("10.44.0.1") || res.MTU != 1450 ||
		len(res.Routes) != 2 || res.Routes[0].Dst != netip.MustParsePrefix("0.0.0.0/0") || res.Routes[1].GW != netip.MustParseAddr("fd00:44::1") {
		t.Fatalf("result %+v: want both addresses with gateways and default routes", res)
	}
	if !slices.Equal(res.DNS.Nameservers, dns.Nameservers) || res.PeerIface == "" {
		t.Fatalf("result %+v: want the cluster DNS and the peer interface", res)
	}
	// A retried ADD (lost answer) gets the same attachment, nothing new.
	again, err := s.Add(context.Background(), addReq())
	if err != nil || len(d.specs) != 1 || again.Endpoint != res.Endpoint || len(m.holding()) != 2 {
		t.Fatalf("retried ADD: %v, %d attach calls, holding %v", err, len(d.specs), m.holding())
	}
	// On an --internal network there is no default route.
	internal := dual
	internal.Internal = true
	r := addReq()
	r.ContainerID = "other"
	res, err = newService(newFakeDriver(internal), newFakeIPAM()).Add(context.Background(), r)
	if err != nil || len(res.Routes) != 0 || len(res.IPs) != 2 {
		t.Fatalf("internal network: %+v, %v: want addresses but no routes", res, err)
	}
}

// A failed ADD leaves no address behind, whatever failed.
func TestAddFailureReleasesEverything(t *testing.T) {
	ctx := context.Background()
	d, m := newFakeDriver(dual), newFakeIPAM()
	s := newService(d, m)
	d.failNext = errors.New("veth: file exists")
	if _, err := s.Add(ctx, addReq()); err == nil {
		t.Fatal("ADD succeeded though the driver failed")
	}
	if h := m.holding(); len(h) != 0 {
		t.Fatalf("addresses held after a failed ADD: %v", h)
	}
	m.fail[pool6.String()] = errors.New("pool fd00:44::/64 is exhausted")
	if _, err := s.Add(ctx, addReq()); err == nil {
		t.Fatal("ADD succeeded without an IPv6 address")
	}
	if h := m.holding(); len(h) != 0 {
		t.Fatalf("IPv4 address held after the IPv6 allocation failed: %v", h)
	}
	delete(m.fail, pool6.String())
	r := addReq()
	r.IPs = []netip.Addr{netip.MustParseAddr("192.168.1.5")}
	if _, err := s.Add(ctx, r); !errors.Is(err, ErrInvalid) || len(m.holding()) != 0 {
		t.Fatalf("requested address outside the network: %v, holding %v", err, m.holding())
	}
	r.IPs = []netip.Addr{netip.MustParseAddr("10.44.7.7")}
	res, err := s.Add(ctx, r)
	if err != nil || res.IPs[0].Address != netip.MustParsePrefix("10.44.7.7/16") {
		t.Fatalf("requested address: %+v, %v", res, err)
	}
	r = addReq()
	r.Subnet = netip.MustParsePrefix("10.99.0.0/16")
	if _, err := s.Add(ctx, r); !errors.Is(err, ErrNoNetwork) {
		t.Fatalf("unknown subnet: %v, want ErrNoNetwork", err)
	}
	r = addReq()
	r.Ports = []admin.CNIPort{{HostPort: 1, ContainerPort: 1, Protocol: "icmp"}}
	if _, err := s.Add(ctx, r); !errors.Is(err, ErrInvalid) {
		t.Fatalf("bad protocol: %v, want ErrInvalid", err)
	}
	none := store.Network{ID: "n0", Mode: "none", IPv4: []store.Subnet{{Pool: pool4}}}
	if _, err := newService(newFakeDriver(none), m).Add(ctx, addReq()); !errors.Is(err, driver.ErrCNIMode) {
		t.Fatalf("none network: %v, want ErrCNIMode", err)
	}
}

func TestDelIsIdempotent(t *testing.T) {
	ctx := context.Background()
	d, m := newFakeDriver(dual), newFakeIPAM()
	s := newService(d, m)
	if err := s.Del(ctx, addReq()); err != nil {
		t.Fatalf("DEL of an attachment that never existed: %v", err)
	}
	if _, err := s.Add(ctx, addReq()); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		if err := s.Del(ctx, addReq()); err != nil {
			t.Fatalf("DEL #%d: %v", i+1, err)
		}
	}
	if len(d.eps) != 0 || len(m.holding()) != 0 {
		t.Fatalf("after DEL: endpoints %v, addresses %v", d.eps, m.holding())
	}
}

func TestCheck(t *testing.T) {
	ctx := context.Background()
	d, m := newFakeDriver(dual), newFakeIPAM()
	recs := fakeRecords{}
	s := New(Config{Driver: d, IPAM: m, Records: recs})
	if _, err := s.Check(ctx, addReq()); !errors.Is(err, driver.ErrNoAttachment) {
		t.Fatalf("CHECK of nothing: %v", err)
	}
	res, err := s.Add(ctx, addReq())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Check(ctx, addReq()); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("CHECK without the address reservation: %v, want it to name the missing record", err)
	}
	for _, a := range res.IPs {
		recs[store.AddrKey(a.Address.Masked(), a.Address.Addr())] = store.Address{Endpoint: res.Endpoint}
	}
	if _, err := s.Check(ctx, addReq()); err != nil {
		t.Fatalf("CHECK of a healthy attachment: %v", err)
	}
	a := res.IPs[0].Address
	recs[store.AddrKey(a.Masked(), a.Addr())] = store.Address{Endpoint: "someone-else"}
	if _, err := s.Check(ctx, addReq()); err == nil {
		t.Fatal("CHECK passed while the address belongs to another endpoint")
	}
	recs[store.AddrKey(a.Masked(), a.Addr())] = store.Address{Endpoint: res.Endpoint}
	d.unhealthy[res.Endpoint] = true
	if _, err := s.Check(ctx, addReq()); err == nil {
		t.Fatal("CHECK passed while the host interface is gone")
	}
}

func TestGCAndSweep(t *testing.T) {
	ctx := context.Background()
	d, m := newFakeDriver(dual), newFakeIPAM()
	s := newService(d, m)
	add := func(network, cid string) string {
		r := addReq()
		r.Network, r.ContainerID = network, cid
		res, err := s.Add(ctx, r)
		if err != nil {
			t.Fatal(err)
		}
		return res.Endpoint
	}
	keep, gone, busy := add("pods", "keep"), add("pods", "gone"), add("pods", "busy")
	other := add("kube", "gone")
	unlock, _ := s.tryLock(busy) // an ADD or DEL in progress
	rep, err := s.GC(ctx, &admin.CNIGCRequest{Network: "pods", Valid: []admin.CNIAttachmentRef{{ContainerID: "keep", IfName: "eth0"}}})
	unlock()
	if err != nil || !slices.Equal(rep.Endpoints, []string{gone}) {
		t.Fatalf("GC removed %v, %v; want only %s", rep.Endpoints, err, gone)
	}
	for _, id := range []string{keep, busy, other} {
		if _, ok := d.Attachment(id); !ok {
			t.Fatalf("GC removed %s (valid, busy or another network's)", id)
		}
	}
	if len(m.holding()) != 3*2 {
		t.Fatalf("addresses held after GC: %v, want those of the 3 left", m.holding())
	}
	d.dead = []string{keep}
	removed, err := s.Sweep(ctx, time.Minute)
	if err != nil || !slices.Equal(removed, []string{keep}) || len(m.holding()) != 2*2 {
		t.Fatalf("Sweep removed %v, %v, holding %v", removed, err, m.holding())
	}
}

func TestEndpointID(t *testing.T) {
	a := EndpointID("pods", "c1", "eth0")
	if a != EndpointID("pods", "c1", "eth0") || len(a) != 64 {
		t.Fatalf("EndpointID not stable or not Docker's form: %s", a)
	}
	for _, b := range []string{EndpointID("pods", "c1", "eth1"), EndpointID("kube", "c1", "eth0"), EndpointID("pods", "c2", "eth0")} {
		if a == b {
			t.Fatalf("two attachments share endpoint %s", a)
		}
	}
}
