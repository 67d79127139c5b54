package dataplane

import (
	"context"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/podnet/podnet/internal/testutil"
)

func testNetwork(id, bridge, subnet string) Network {
	return Network{ID: id, Bridge: bridge, Subnets: []netip.Prefix{netip.MustParsePrefix(subnet)}, Masquerade: true}
}

func TestAddNetworkEnsuresAcceptsOnceAndRollsBack(t *testing.T) {
	e := newFakeEngine(t)
	if err := e.AddNetwork(ctx, testNetwork("n1", "pn-n1", "10.1.0.0/24")); err != nil {
		t.Fatal(err)
	}
	if err := e.AddNetwork(ctx, testNetwork("n2", "pn-n2", "10.2.0.0/24")); err != nil {
		t.Fatal(err)
	}
	if e.ipt.ensures != 1 {
		t.Fatalf("iptables ensured %d times, want once", e.ipt.ensures)
	}
	if !strings.Contains(e.nft.lastRuleset.String(), `iifname "pn-n2" oifname "pn-*" oifname != "pn-n2" drop`) {
		t.Fatalf("n2 not isolated in\n%s", e.nft.lastRuleset)
	}
	e.nft.failReplace = true
	if err := e.AddNetwork(ctx, testNetwork("n3", "pn-n3", "10.3.0.0/24")); err == nil {
		t.Fatal("kernel refused: no error")
	}
	e.nft.failReplace = false
	if err := e.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(e.nft.lastRuleset.String(), "pn-n3") {
		t.Fatal("refused network stayed in memory")
	}
}

func TestAddNetworkValidates(t *testing.T) {
	e := newFakeEngine(t)
	for _, n := range []Network{
		testNetwork("", "pn-x", "10.1.0.0/24"),
		testNetwork("n1", "br-x", "10.1.0.0/24"),
		testNetwork("n1", "pn-0123456789abcdef", "10.1.0.0/24"),
		{ID: "n1", Bridge: "pn-x", Subnets: []netip.Prefix{{}}},
	} {
		if err := e.AddNetwork(ctx, n); err == nil {
			t.Errorf("AddNetwork(%+v): no error", n)
		}
	}
}

func TestRemoveNetworkDropsItsEndpoints(t *testing.T) {
	e := newFakeEngine(t)
	if err := e.AddNetwork(ctx, testNetwork("net1", "pn-n1", "10.1.0.0/24")); err != nil {
		t.Fatal(err)
	}
	mustPublish(t, e, ep1, c1IP4, noAddr, tcp(8080, 0, 80))
	if err := e.RemoveNetwork(ctx, "net1"); err != nil {
		t.Fatal(err)
	}
	if e.Mappings(ep1) != nil || len(e.nft.elementTexts()) != 0 {
		t.Fatalf("endpoint of removed network still published: %v", e.nft.elementTexts())
	}
	if err := e.RemoveNetwork(ctx, "net1"); err != nil {
		t.Fatalf("removing an absent network: %v", err)
	}
	// The port is free again.
	mustPublish(t, e, ep2, c2IP4, noAddr, tcp(8080, 0, 80))
}

func TestRestoreThenSync(t *testing.T) {
	e := newFakeEngine(t)
	e.Restore([]Network{testNetwork("net1", "pn-n1", "10.1.0.0/24")}, []EndpointPorts{{
		EndpointID: ep1, NetworkID: "net1",
		Mappings: []Mapping{{Proto: TCP, HostPort: 8080, ContainerIP: c1IP4, ContainerPort: 80}},
	}})
	if e.nft.tables != 0 || e.ipt.ensures != 0 {
		t.Fatal("Restore touched the kernel")
	}
	if err := e.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if !e.nft.elementTexts()["pm4_any: tcp . 8080 : 10.1.0.2 . 80"] || e.ipt.ensures != 1 {
		t.Fatalf("Sync did not program restored state: %v, ensures %d", e.nft.elementTexts(), e.ipt.ensures)
	}
	// Restored ports count as published.
	if _, err := e.Publish(ctx, ep2, "net1", c2IP4, noAddr, []Binding{tcp(8080, 0, 80)}); err == nil {
		t.Fatal("restored port 8080 handed out again")
	}
}

func TestRunResyncsWhenCanaryMissing(t *testing.T) {
	e := newFakeEngine(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { e.Run(ctx, 5*time.Millisecond); close(done) }()
	defer func() { cancel(); <-done }()

	testutil.Until(t, 5*time.Second, "the table rebuilt", func() bool { ok, _ := e.nft.tableIntact("podnet"); return ok })
	_ = e.nft.deleteTable("podnet")
	testutil.Until(t, 5*time.Second, "the table rebuilt", func() bool { ok, _ := e.nft.tableIntact("podnet"); return ok })
	e.ipt.mu.Lock()
	e.ipt.ok = false // the jump disappeared (dockerd restart)
	e.ipt.mu.Unlock()
	testutil.Until(t, 5*time.Second, "the iptables accepts restored", func() bool { ok, _ := e.ipt.intact(); return ok })
}

func TestCleanup(t *testing.T) {
	e := newFakeEngine(t)
	mustPublish(t, e, ep1, c1IP4, noAddr, tcp(8080, 0, 80))
	if err := e.Cleanup(ctx); err != nil {
		t.Fatal(err)
	}
	if ok, _ := e.nft.tableIntact("podnet"); ok || e.ipt.cleanups != 1 {
		t.Fatal("Cleanup left the table or the accepts")
	}
}
