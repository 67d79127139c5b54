package driver

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/docker/go-plugins-helpers/network"
	"github.com/podnet/podnet/dataplane"
	"github.com/podnet/podnet/store"
	"github.com/podnet/podnet/store/storetest"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// endpointN is the ID and address of the i-th test endpoint.
func endpointN(i int) (string, string) {
	return fmt.Sprintf("%012x%052d", 0xe00000000000+i, 0), fmt.Sprintf("10.77.%d.%d/16", 1+i/250, 1+i%250)
}

func (r *rig) createEndpoint(ctx context.Context, id, addr string) error {
	return r.call(func() error {
		_, err := r.d.CreateEndpoint(ctx, &network.CreateEndpointRequest{NetworkID: netID, EndpointID: id,
			Interface: &network.EndpointInterface{Address: addr}})
		return err
	})
}

// GC tears endpoints down outside the driver's lock: while its Unpublish
// of a dead endpoint is held, a container start on the same host
// completes.
func TestGCTearsDownOutsideTheLock(t *testing.T) {
	r := newRig(t, nil, "h1")
	ctx := context.Background()
	r.mustCall(func() error { return r.d.CreateNetwork(ctx, bridgeReq(netID, map[string]any{}, false)) })
	dead, deadAddr := endpointN(0)
	if err := r.createEndpoint(ctx, dead, deadAddr); err != nil {
		t.Fatal(err)
	}
	entered, release := make(chan string, 1), make(chan struct{})
	r.ports.onUnpublish = func(ep string) {
		if ep == dead {
			entered <- ep
			<-release
		}
	}
	gcDone := make(chan error, 1)
	go func() {
		gcDone <- r.call(func() error {
			_, err := r.d.GC(ctx, Live{Networks: map[string]bool{netID: true}}, -time.Second)
			return err
		})
	}()
	select {
	case <-entered:
	case <-time.After(30 * time.Second):
		t.Fatal("GC never tore the dead endpoint down")
	}
	started := make(chan error, 1)
	fresh, freshAddr := endpointN(1)
	go func() { started <- r.createEndpoint(ctx, fresh, freshAddr) }()
	select {
	case err := <-started:
		if err != nil {
			t.Fatalf("start during GC: %v", err)
		}
	case <-time.After(30 * time.Second):
		close(release)
		t.Fatal("a container start waited for GC's teardown (the driver's lock is held across it)")
	}
	close(release)
	if err := <-gcDone; err != nil {
		t.Fatal(err)
	}
	if _, err := r.ns.NL.LinkByName(hostVeth(dead)); err == nil {
		t.Fatal("dead endpoint's veth survived GC")
	}
	if _, err := r.ns.NL.LinkByName(hostVeth(fresh)); err != nil {
		t.Fatalf("the endpoint started during GC lost its veth: %v", err)
	}
	if _, ok := r.d.endpoint(fresh); !ok {
		t.Fatal("the endpoint started during GC is unknown to the driver")
	}
}

// TestGCOf500EndpointsBesideStarts measures (it asserts no timing) how long
// a container start's driver work takes alone and while GC removes 500
// endpoints with published ports through the real NAT engine, whose
// Unpublish dumps a conntrack table of a few thousand entries each time.
func TestGCOf500EndpointsBesideStarts(t *testing.T) {
	if testing.Short() {
		t.Skip("builds 500 endpoints")
	}
	const n, flows = 500, 3000
	r := newRig(t, nil, "h1")
	ctx := context.Background()
	eng := dataplane.New(dataplane.Options{Logger: storetest.Logger(t)})
	r.d.cfg.Ports = eng
	r.mustCall(func() error { return r.d.CreateNetwork(ctx, bridgeReq(netID, map[string]any{}, false)) })
	publish := func(id string, port int) error {
		pm := []any{map[string]any{"Proto": float64(6), "Port": float64(80), "HostPort": float64(port), "HostPortEnd": float64(port)}}
		return r.call(func() error {
			return r.d.ProgramExternalConnectivity(ctx, &network.ProgramExternalConnectivityRequest{NetworkID: netID, EndpointID: id,
				Options: map[string]any{labelPortmap: pm}})
		})
	}
	start := func(i int) (time.Duration, error) {
		id, addr := endpointN(i)
		ip := netip.MustParsePrefix(addr).Addr()
		// IPAM's RequestAddress, which precedes CreateEndpoint.
		if _, err := r.st.Create(ctx, store.AddrKey(netip.MustParsePrefix("10.77.0.0/16"), ip),
			store.Address{IP: ip, Kind: store.AddrContainer, Host: "h1"}); err != nil {
			return 0, err
		}
		t0 := time.Now()
		if err := r.createEndpoint(ctx, id, addr); err != nil {
			return 0, err
		}
		err := publish(id, 20000+i)
		return time.Since(t0), err
	}
	for i := range n {
		if _, err := start(i); err != nil {
			t.Fatal(err)
		}
	}
	r.mustCall(func() error { return fillConntrack(flows) })

	var alone []time.Duration
	for i := n; i < n+20; i++ {
		d, err := start(i)
		if err != nil {
			t.Fatal(err)
		}
		alone = append(alone, d)
	}
	live := Live{Networks: map[string]bool{netID: true}, Endpoints: map[string]bool{}}
	for i := n; i < n+100; i++ {
		id, _ := endpointN(i)
		live.Endpoints[id] = true
	}
	gcStart := time.Now()
	gcDone := make(chan GCResult, 1)
	go func() {
		var res GCResult
		r.mustCall(func() (err error) { res, err = r.d.GC(ctx, live, -time.Second); return err })
		gcDone <- res
	}()
	var during []time.Duration
	var res GCResult
	for i := n + 20; ; i++ {
		select {
		case res = <-gcDone:
		default:
			if i < n+100 {
				d, err := start(i)
				if err != nil {
					t.Fatalf("start during GC: %v", err)
				}
				during = append(during, d)
				continue
			}
			res = <-gcDone
		}
		break
	}
	gcTook := time.Since(gcStart)
	if len(res.Endpoints) != n {
		t.Fatalf("GC removed %d endpoints, want %d", len(res.Endpoints), n)
	}
	for _, i := range []int{0, n - 1} {
		if id, _ := endpointN(i); r.linkExists(hostVeth(id)) {
			t.Fatalf("endpoint %d's veth survived GC", i)
		}
	}
	for i := n; i < n+20+len(during); i++ {
		if id, _ := endpointN(i); !r.linkExists(hostVeth(id)) {
			t.Fatalf("live endpoint %d lost its veth", i)
		}
	}
	if len(during) == 0 {
		t.Fatal("no start ran during GC")
	}
	t.Logf("start (CreateEndpoint + publish one port): alone median %v max %v (%d starts); during a GC of %d endpoints with %d conntrack entries: median %v max %v (%d starts); GC took %v",
		median(alone), slices.Max(alone), len(alone), n, flows, median(during), slices.Max(during), len(during), gcTook.Round(time.Millisecond))
}

func (r *rig) linkExists(name string) bool {
	_, err := r.ns.NL.LinkByName(name)
	return err == nil
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2].Round(10 * time.Microsecond)
}

// fillConntrack inserts TCP flows into the calling thread's namespace's
// conntrack table (what a busy host's Unpublish has to dump).
func fillConntrack(n int) error {
	for i := range n {
		f := &netlink.ConntrackFlow{FamilyType: unix.AF_INET, Forward: netlink.IPTuple{
			SrcIP: net.IPv4(10, 99, byte(i>>8), byte(i)), DstIP: net.IPv4(10, 98, 0, 1),
			Protocol: unix.IPPROTO_TCP, SrcPort: uint16(10000 + i%50000), DstPort: 443},
			Reverse: netlink.IPTuple{SrcIP: net.IPv4(10, 98, 0, 1), DstIP: net.IPv4(10, 99, byte(i>>8), byte(i)),
				Protocol: unix.IPPROTO_TCP, SrcPort: 443, DstPort: uint16(10000 + i%50000)},
			TimeOut: 600, ProtoInfo: &netlink.ProtoInfoTCP{State: 3}}
		if err := netlink.ConntrackCreate(netlink.ConntrackTable, unix.AF_INET, f); err != nil {
			return fmt.Errorf("conntrack entry %d: %w", i, err)
		}
	}
	flowsNow, err := netlink.ConntrackTableList(netlink.ConntrackTable, unix.AF_INET)
	if err != nil {
		return err
	}
	if len(flowsNow) < n {
		return fmt.Errorf("conntrack holds %d entries, want %d", len(flowsNow), n)
	}
	return nil
}
