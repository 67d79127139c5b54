package reconcile

import (
	"context"
	"errors"
	"github.com/podnet/podnet/netspec"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	dnet "github.com/docker/docker/api/types/network"
	"github.com/docker/go-plugins-helpers/ipam"
	"github.com/podnet/podnet/driver"
	pnipam "github.com/podnet/podnet/ipam"
	"github.com/podnet/podnet/store"
	"github.com/podnet/podnet/store/storetest"
)

// fakeDocker answers NetworkList and NetworkInspect from what the test
// says Docker holds, or fails like an unreachable daemon.
type fakeDocker struct {
	mu         sync.Mutex
	nets       map[string]dnet.Inspect
	listErr    error
	inspectErr map[string]error
	inspected  []string
}

func (f *fakeDocker) NetworkList(context.Context, dnet.ListOptions) ([]dnet.Summary, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.listErr != nil {
		return nil, f.listErr
	}
	out := []dnet.Summary{{ID: "bridge0000000000", Name: "bridge", Driver: "bridge"}}
	for _, n := range f.nets {
		out = append(out, n)
	}
	return out, nil
}

func (f *fakeDocker) NetworkInspect(_ context.Context, id string, _ dnet.InspectOptions) (dnet.Inspect, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.inspected = append(f.inspected, id)
	if err := f.inspectErr[id]; err != nil {
		return dnet.Inspect{}, err
	}
	n, ok := f.nets[id]
	if !ok {
		return dnet.Inspect{}, errors.New("no such network")
	}
	return n, nil
}

// dockerNet is a podnet network as Docker shows it: its containers
// (endpoint → address) and aux addresses.
func dockerNet(id, subnet string, containers map[string]string, aux ...string) dnet.Inspect {
	n := dnet.Inspect{ID: id, Name: "n-" + id[:4], Driver: "podnet", Containers: map[string]dnet.EndpointResource{},
		IPAM: dnet.IPAM{Driver: "podnet", Config: []dnet.IPAMConfig{{Subnet: subnet, AuxAddress: map[string]string{}}}}}
	for ep, addr := range containers {
		n.Containers["ctr-"+ep] = dnet.EndpointResource{EndpointID: ep, IPv4Address: addr}
	}
	for i, a := range aux {
		n.IPAM.Config[0].AuxAddress["aux"+string(rune('a'+i))] = a
	}
	return n
}

// fakeDriver is the driver's GC side: it records the live view it was
// given and removes its dead endpoints as the driver would (the driver's
// own GC is tested for real in package driver and below).
type fakeDriver struct {
	mu    sync.Mutex
	nets  []store.Network
	eps   []store.Endpoint
	lives []driver.Live
	// keep lists endpoints GC fails to remove (their teardown errs).
	keep map[string]bool
}

func (f *fakeDriver) Networks() []store.Network {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.nets)
}

func (f *fakeDriver) Endpoints() []store.Endpoint {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.eps)
}

func (f *fakeDriver) GC(_ context.Context, live driver.Live, _ time.Duration) (driver.GCResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lives = append(f.lives, live)
	var res driver.GCResult
	var err error
	f.eps = slices.DeleteFunc(f.eps, func(ep store.Endpoint) bool {
		if live.Endpoints[ep.ID] {
			return false
		}
		if f.keep[ep.ID] {
			err = errors.New("teardown of " + ep.ID + " failed")
			return false
		}
		res.Endpoints = append(res.Endpoints, ep.ID)
		return true
	})
	f.nets = slices.DeleteFunc(f.nets, func(n store.Network) bool {
		if live.Networks[n.ID] {
			return false
		}
		res.Networks = append(res.Networks, n.ID)
		return true
	})
	return res, err
}

func (f *fakeDriver) gcCalls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.lives)
}

// world is one host h1 (and a neighbour h2) with a real IPAM on etcd.
type world struct {
	t      *testing.T
	raw    *store.Store
	h1, h2 *pnipam.IPAM
	docker *fakeDocker
	drv    *fakeDriver
	rec    *Reconciler
}

const (
	netLive = "aaaa000000000000000000000000000000000000000000000000000000000001"
	netGone = "bbbb000000000000000000000000000000000000000000000000000000000002"
	poolL   = "10.50.0.0/24"
	poolG   = "10.51.0.0/24"
)

func newWorld(t *testing.T) *world {
	e := storetest.Start(t)
	w := &world{t: t, raw: e.Client(t, ""), docker: &fakeDocker{nets: map[string]dnet.Inspect{}}, drv: &fakeDriver{}}
	var err error
	if w.h1, err = pnipam.New(pnipam.Config{Host: "h1", Store: e.Client(t, ""), Logger: storetest.Logger(t)}); err != nil {
		t.Fatal(err)
	}
	if w.h2, err = pnipam.New(pnipam.Config{Host: "h2", Store: e.Client(t, ""), Logger: storetest.Logger(t)}); err != nil {
		t.Fatal(err)
	}
	w.rec = New(Config{Docker: w.docker, Driver: w.drv, IPAM: w.h1, Logger: storetest.Logger(t)})
	return w
}

func (w *world) pool(m *pnipam.IPAM, subnet string) {
	w.t.Helper()
	if _, err := m.RequestPool(context.Background(), &ipam.RequestPoolRequest{AddressSpace: netspec.LocalAddressSpace, Pool: subnet}); err != nil {
		w.t.Fatal(err)
	}
}

// addr requests ip ("" for any) of subnet on m, as Docker would for a
// container or an aux address (opts nil) or the gateway.
func (w *world) addr(m *pnipam.IPAM, subnet, ip string, opts ...map[string]string) string {
	w.t.Helper()
	req := &ipam.RequestAddressRequest{PoolID: subnet, Address: ip}
	if len(opts) > 0 {
		req.Options = opts[0]
	}
	r, err := m.RequestAddress(context.Background(), req)
	if err != nil {
		w.t.Fatal(err)
	}
	return r.Address
}

func (w *world) has(subnet, cidr string) bool {
	w.t.Helper()
	p := netip.MustParsePrefix(cidr)
	_, err := w.raw.Get(context.Background(), store.AddrKey(netip.MustParsePrefix(subnet), p.Addr()), nil)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		w.t.Fatal(err)
	}
	return err == nil
}

func (w *world) hasRef(subnet, host string) bool {
	w.t.Helper()
	_, err := w.raw.Get(context.Background(), store.PoolRefKey(netip.MustParsePrefix(subnet), host), nil)
	return err == nil
}

func storeNet(id, subnet string) store.Network {
	return store.Network{ID: id, Host: "h1", Mode: "bridge", IPv4: []store.Subnet{{Pool: netip.MustParsePrefix(subnet)}}}
}

func endpoint(id, netID, cidr string) store.Endpoint {
	return store.Endpoint{ID: id, Network: netID, Host: "h1", IPv4: netip.MustParsePrefix(cidr)}
}

// A round removes what Docker dropped — an endpoint it no longer lists,
// an address nothing uses, the pool reference of a network it no longer
// has — and nothing else: not an address Docker lists, an aux address, the
// gateway, the address of an endpoint the driver kept, another host's
// address, or the pool of a live network.
func TestRoundRemovesWhatDockerDroppedAndNothingElse(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	w.pool(w.h1, poolL)
	w.pool(w.h2, poolL)
	w.pool(w.h1, poolG)
	gw := w.addr(w.h1, poolL, "10.50.0.1", map[string]string{"RequestAddressType": "com.docker.network.gateway"})
	live := w.addr(w.h1, poolL, "")
	dead := w.addr(w.h1, poolL, "")
	aux := w.addr(w.h1, poolL, "10.50.0.200")
	kept := w.addr(w.h1, poolL, "")
	leaked := w.addr(w.h1, poolL, "")
	neighbour := w.addr(w.h2, poolL, "")
	w.docker.nets[netLive] = dockerNet(netLive, poolL, map[string]string{"ep-live": live}, "10.50.0.200")
	w.drv.nets = []store.Network{storeNet(netLive, poolL), storeNet(netGone, poolG)}
	w.drv.eps = []store.Endpoint{endpoint("ep-live", netLive, live), endpoint("ep-dead", netLive, dead),
		endpoint("ep-kept", netLive, kept)}
	w.drv.keep = map[string]bool{"ep-kept": true}

	rep, err := w.rec.OnceWithGrace(ctx, -time.Second)
	if err == nil {
		t.Fatal("the driver's failed teardown was not reported")
	}
	got := w.drv.lives[0]
	if !got.Networks[netLive] || got.Networks[netGone] || !got.Endpoints["ep-live"] || len(got.Endpoints) != 1 {
		t.Fatalf("live view handed to the driver: %+v", got)
	}
	if slices.Contains(w.docker.inspected, "bridge0000000000") {
		t.Fatal("a network that is not podnet's was inspected")
	}
	for _, c := range []struct {
		what, cidr string
		want       bool
	}{
		{"the gateway", gw, true}, {"a listed container's address", live, true}, {"an aux address", aux, true},
		{"the address of an endpoint the driver kept", kept, true}, {"another host's address", neighbour, true},
		{"the address of an endpoint Docker dropped", dead, false}, {"a leaked address", leaked, false},
	} {
		if w.has(poolL, c.cidr) != c.want {
			t.Errorf("%s (%s): exists=%v after the round, want %v", c.what, c.cidr, !c.want, c.want)
		}
	}
	if w.hasRef(poolG, "h1") {
		t.Error("the pool reference of a network Docker no longer has survived")
	}
	if !w.hasRef(poolL, "h1") || !w.hasRef(poolL, "h2") {
		t.Error("a pool reference of a live network was dropped")
	}
	wantAddrs := []netip.Addr{netip.MustParsePrefix(dead).Addr(), netip.MustParsePrefix(leaked).Addr()}
	slices.SortFunc(rep.Addresses, netip.Addr.Compare)
	if !slices.Equal(rep.Addresses, wantAddrs) || !slices.Contains(rep.Pools, netip.MustParsePrefix(poolG)) {
		t.Errorf("report %+v, want addresses %v and pool %s", rep, wantAddrs, poolG)
	}
}

// When Docker cannot be asked — the daemon is down, or one inspect fails —
// the round removes nothing: an unreachable daemon never looks like
// "nothing is live".
func TestRoundRemovesNothingWhenDockerCannotBeAsked(t *testing.T) {
	for name, broken := range map[string]func(*fakeDocker){
		"list fails":    func(f *fakeDocker) { f.listErr = errors.New("Cannot connect to the Docker daemon") },
		"inspect fails": func(f *fakeDocker) { f.inspectErr = map[string]error{netLive: context.DeadlineExceeded} },
	} {
		t.Run(name, func(t *testing.T) {
			w := newWorld(t)
			w.pool(w.h1, poolL)
			w.pool(w.h1, poolG)
			a := w.addr(w.h1, poolL, "")
			b := w.addr(w.h1, poolL, "")
			w.docker.nets[netLive] = dockerNet(netLive, poolL, map[string]string{"ep-a": a})
			w.drv.nets = []store.Network{storeNet(netLive, poolL), storeNet(netGone, poolG)}
			w.drv.eps = []store.Endpoint{endpoint("ep-a", netLive, a), endpoint("ep-b", netLive, b)}
			broken(w.docker)
			rep, err := w.rec.OnceWithGrace(context.Background(), -time.Second)
			if err == nil {
				t.Fatal("the round did not report that Docker could not be asked")
			}
			if w.drv.gcCalls() != 0 || len(w.drv.eps) != 2 {
				t.Fatal("the driver collected garbage without Docker's view")
			}
			if !w.has(poolL, a) || !w.has(poolL, b) || !w.hasRef(poolG, "h1") {
				t.Fatal("addresses or pool references removed without Docker's view")
			}
			if len(rep.Addresses)+len(rep.Pools)+len(rep.Endpoints)+len(rep.Networks) != 0 {
				t.Fatalf("report %+v, want nothing removed", rep)
			}
		})
	}
}

// Within the grace period nothing goes: a container start in progress has
// its address before Docker lists its endpoint.
func TestRoundKeepsWhatIsYoungerThanGrace(t *testing.T) {
	w := newWorld(t)
	w.pool(w.h1, poolL)
	w.pool(w.h1, poolG)
	starting := w.addr(w.h1, poolL, "")
	w.docker.nets[netLive] = dockerNet(netLive, poolL, nil)
	w.drv.nets = []store.Network{storeNet(netLive, poolL), storeNet(netGone, poolG)}
	if _, err := w.rec.OnceWithGrace(context.Background(), time.Hour); err != nil {
		t.Fatal(err)
	}
	if !w.has(poolL, starting) {
		t.Fatal("an address younger than the grace period was released")
	}
	if !w.hasRef(poolG, "h1") {
		t.Fatal("a pool reference younger than the grace period was dropped")
	}
}
