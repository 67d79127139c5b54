package netpol

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/podnet/podnet/dataplane"
	"github.com/podnet/podnet/internal/testutil"
	"github.com/podnet/podnet/policy"
	"github.com/podnet/podnet/store"
)

// TestKernelPolicyLog: with --policy-log, a connection the rules deny is
// logged with the container and the policies that isolate it.
func TestKernelPolicyLog(t *testing.T) {
	host, ctr, cli := testutil.NewNetNS(t), testutil.NewNetNS(t), testutil.NewNetNS(t)
	host.MustExec(t, "sh", "-c", "sysctl -qw net.ipv4.ip_forward=1 && ip link add pn-lc type veth peer name eth0 netns "+ctr.Name+
		" && ip link add pn-lk type veth peer name eth0 netns "+cli.Name+
		" && ip addr add 10.9.0.1/24 dev pn-lc && ip addr add 10.9.1.1/24 dev pn-lk && ip link set pn-lc up && ip link set pn-lk up")
	ctr.MustExec(t, "sh", "-c", "ip addr add 10.9.0.2/24 dev eth0 && ip link set eth0 up && ip route add default via 10.9.0.1")
	cli.MustExec(t, "sh", "-c", "ip addr add 10.9.1.2/24 dev eth0 && ip link set eth0 up && ip route add default via 10.9.1.1")

	var logs testutil.LogBuffer
	a := New(Config{Host: "h1", Log: true, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	deny := store.NetworkPolicy{Name: "deny-db", PodSelector: store.LabelSelector{MatchLabels: map[string]string{"app": "db"}},
		PolicyTypes: []string{store.PolicyIngress}}
	a.model = policy.Compile(policy.Input{Policies: []store.NetworkPolicy{deny}, Targets: []policy.Target{{ID: "e1", Name: "db-1",
		Known: true, Labels: map[string]string{"app": "db"}, Addrs: []netip.Addr{netip.MustParseAddr("10.9.0.2")}}}})
	eng := dataplane.New(dataplane.Options{Logger: slog.New(slog.DiscardHandler)})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := host.Do(func() error {
		if err := eng.SetPolicy(ctx, ToDataplane(a.model, true)); err != nil {
			return err
		}
		// The socket is opened in the host namespace; reading it needs no
		// thread there.
		n, err := dialNFLOG(logGroup)
		if err != nil {
			return err
		}
		go func() { <-ctx.Done(); _ = n.close() }()
		go func() {
			for {
				ps, err := n.receive()
				if err != nil {
					return // closed at the end of the test
				}
				for _, p := range ps {
					a.logDenied(p)
				}
			}
		}()
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	_ = cli.Do(func() error {
		c, err := net.DialTimeout("tcp", "10.9.0.2:5432", 300*time.Millisecond)
		if err == nil {
			c.Close()
			t.Error("the denied connection connected")
		}
		return nil
	})
	testutil.Eventually(t, 5*time.Second, "the denied connection logged", func() error {
		for _, l := range logs.Lines() {
			if strings.Contains(l, "network policy denied a connection") && strings.Contains(l, "container=db-1") &&
				strings.Contains(l, "policies=deny-db") && strings.Contains(l, "to=10.9.0.2:5432") && strings.Contains(l, "from=10.9.1.2:") {
				return nil
			}
		}
		return fmt.Errorf("log: %q", logs.String())
	})
}
