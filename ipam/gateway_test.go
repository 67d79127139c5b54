package ipam

import (
	"context"
	"slices"
	"sync"
	"testing"

	"github.com/docker/go-plugins-helpers/ipam"
	"github.com/podnet/podnet/store"
)

func TestGatewayIsSharedAndIdempotentAcrossHosts(t *testing.T) {
	c := newCluster(t)
	const pool = "10.1.0.0/16"
	var hosts []*IPAM
	for _, h := range []string{"h1", "h2", "h3"} {
		m := c.host(h)
		requestPool(t, m, pool, "")
		hosts = append(hosts, m)
	}
	var wg sync.WaitGroup
	for _, m := range hosts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 2 { // a repeat from the same host changes nothing
				if gw, err := gateway(m, pool, ""); err != nil || gw != "10.1.0.1/16" {
					t.Errorf("%s: gateway %q %v", m.host, gw, err)
				}
			}
		}()
	}
	wg.Wait()
	rec, ok := c.addr(pool, "10.1.0.1")
	slices.Sort(rec.Hosts)
	if !ok || rec.Kind != store.AddrGateway || !slices.Equal(rec.Hosts, []string{"h1", "h2", "h3"}) {
		t.Fatalf("gateway record %+v", rec)
	}
	if p, _ := c.pool(pool); p.Gateway.String() != "10.1.0.1" {
		t.Fatalf("pool gateway %q", p.Gateway)
	}
	// An explicit --gateway equal to the existing one is fine too.
	if gw, err := gateway(hosts[0], pool, "10.1.0.1"); err != nil || gw != "10.1.0.1/16" {
		t.Fatalf("explicit same gateway: %q %v", gw, err)
	}
	// Dynamic allocation never hands out the gateway.
	if a := alloc(t, hosts[0], pool); a.String() == "10.1.0.1" {
		t.Fatal("gateway handed to a container")
	}
	for i, m := range hosts {
		if err := m.ReleaseAddress(context.Background(), &ipam.ReleaseAddressRequest{PoolID: pool, Address: "10.1.0.1"}); err != nil {
			t.Fatal(err)
		}
		rec, ok := c.addr(pool, "10.1.0.1")
		if last := i == len(hosts)-1; ok == last || (!last && slices.Contains(rec.Hosts, m.host)) {
			t.Fatalf("after %s released the gateway: %+v exists=%v", m.host, rec, ok)
		}
	}
	if p, _ := c.pool(pool); p.Gateway.IsValid() {
		t.Fatalf("pool gateway %q after every host released it", p.Gateway)
	}
	// With the gateway gone a new one may be chosen.
	if gw, err := gateway(hosts[1], pool, "10.1.255.254"); err != nil || gw != "10.1.255.254/16" {
		t.Fatalf("new gateway: %q %v", gw, err)
	}
}

func TestConflictingGatewayRefused(t *testing.T) {
	c := newCluster(t)
	h1, h2 := c.host("h1"), c.host("h2")
	const pool = "10.1.0.0/16"
	requestPool(t, h1, pool, "")
	requestPool(t, h2, pool, "")
	if _, err := gateway(h1, pool, "10.1.0.254"); err != nil {
		t.Fatal(err)
	}
	_, err := gateway(h2, pool, "")
	wantErr(t, err, "already has gateway 10.1.0.254", "--gateway 10.1.0.254")
	_, err = gateway(h2, pool, "10.1.0.2")
	wantErr(t, err, "already has gateway 10.1.0.254", "--gateway 10.1.0.254")
	if gw, err := gateway(h2, pool, "10.1.0.254"); err != nil || gw != "10.1.0.254/16" {
		t.Fatalf("%q %v", gw, err)
	}
	_, err = gateway(h2, pool, "10.2.0.1")
	wantErr(t, err, "outside pool 10.1.0.0/16")
	_, err = gateway(h2, pool, "10.1.255.255")
	wantErr(t, err, "broadcast address")
	// A container asking for the gateway address is told who holds it.
	_, err = request(h2, pool, "10.1.0.254", nil)
	wantErr(t, err, "already in use (gateway of the network, hosts h1,h2)")
}

func TestConcurrentDifferentGatewaysHaveOneWinner(t *testing.T) {
	c := newCluster(t)
	const pool = "10.1.0.0/16"
	h1, h2 := c.host("h1"), c.host("h2")
	requestPool(t, h1, pool, "")
	requestPool(t, h2, pool, "")
	errs := make(chan error, 2)
	go func() { _, err := gateway(h1, pool, "10.1.0.1"); errs <- err }()
	go func() { _, err := gateway(h2, pool, "10.1.0.2"); errs <- err }()
	e1, e2 := <-errs, <-errs
	if (e1 == nil) == (e2 == nil) {
		t.Fatalf("both or neither gateway won: %v / %v", e1, e2)
	}
}

func TestGatewayHeldByContainerRefused(t *testing.T) {
	c := newCluster(t)
	h1 := c.host("h1")
	const pool = "10.1.0.0/16"
	requestPool(t, h1, pool, "")
	if _, err := request(h1, pool, "10.1.0.1", nil); err != nil {
		t.Fatal(err)
	}
	_, err := gateway(h1, pool, "")
	wantErr(t, err, "gateway 10.1.0.1 of pool 10.1.0.0/16 is already in use (container, host h1", "pick another --gateway")
	if p, _ := c.pool(pool); p.Gateway.IsValid() {
		t.Fatalf("refused gateway recorded in pool: %q", p.Gateway)
	}
}

func TestGatewayOfDeletedPool(t *testing.T) {
	c := newCluster(t)
	h1 := c.host("h1")
	_, err := gateway(h1, "10.50.0.0/16", "")
	wantErr(t, err, "unknown pool")
}
