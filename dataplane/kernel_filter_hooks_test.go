package dataplane

import (
	"fmt"
	"net"
	"net/netip"
	"os/exec"
	"strings"
	"testing"
)

// oldFilterLayout turns the table into the layout of an older podnetd:
// the guard's and the policy's input and forward chains as base chains
// of their own, each accepting established traffic first, the isolation
// rules in the forward base chain itself, and no input base chain.
const oldFilterLayout = `flush chain inet podnet input
delete chain inet podnet input
flush chain inet podnet forward
flush chain inet podnet isolation
delete chain inet podnet isolation
add rule inet podnet forward ct status dnat accept
flush chain inet podnet guard_input
delete chain inet podnet guard_input
add chain inet podnet guard_input { type filter hook input priority filter; policy accept; }
add rule inet podnet guard_input ct state established,related accept
add rule inet podnet guard_input iifname "pn-*" ip daddr . tcp dport @etcd4 drop
flush chain inet podnet guard_forward
delete chain inet podnet guard_forward
add chain inet podnet guard_forward { type filter hook forward priority filter; policy accept; }
add rule inet podnet guard_forward ct state established,related accept
add rule inet podnet guard_forward iifname "pn-*" ip daddr . tcp dport @etcd4 drop
flush chain inet podnet np-forward
delete chain inet podnet np-forward
add chain inet podnet np-forward { type filter hook forward priority filter + 10; policy accept; }
add rule inet podnet np-forward ct state established,related accept
add rule inet podnet np-forward ip saddr vmap @np-out4
add rule inet podnet np-forward ip daddr vmap @np-in4
flush chain inet podnet np-input
delete chain inet podnet np-input
add chain inet podnet np-input { type filter hook input priority filter + 10; policy accept; }
add rule inet podnet np-input ct state established,related accept
add rule inet podnet np-input ip saddr vmap @np-out4
`

// TestKernelFilterHooksReplaceOldBaseChains: a restarted podnetd finds an
// older one's table, with the guard and the policy in base chains of
// their own. Its first Sync (before its first SetPolicy) replaces them
// with one base chain per hook in one batch: the guard and the previous
// policy hold throughout, and an established connection survives.
func TestKernelFilterHooksReplaceOldBaseChains(t *testing.T) {
	t.Parallel()
	l := newLab(t)
	br := l.bridge(1)
	c1, c2, c3 := l.container(br, 2), l.container(br, 3), l.container(br, 4)
	l.addNetwork(br)
	for _, c := range []container{c2, c3} {
		serve(t, c.ns, 80, c.ip4.String())
		serve(t, c.ns, 81, c.ip4.String())
	}
	at := func(c container, port int) string { return net.JoinHostPort(c.ip4.String(), fmt.Sprint(port)) }
	// c3:81 stands for an etcd member: the guard keeps containers off it.
	etcd := []netip.AddrPort{netip.AddrPortFrom(c3.ip4, 81)}
	l.do(func() error { return l.eng.SetEtcd(l.ctx, etcd) })
	p := Policy{
		Endpoints: []PolicyEndpoint{{Addrs: []netip.Addr{c2.ip4}, Ingress: "i-db"}},
		Groups: []PolicyGroup{{ID: "i-db", Policies: []string{"db"}, Rules: []PolicyRule{
			{Ports: []PolicyPorts{{Proto: TCP, First: 80, Last: 80}}}}}},
		Policies: []string{"db"},
	}
	l.setPolicy(p)
	l.do(func() error {
		cmd := exec.Command("nft", "-f", "-")
		cmd.Stdin = strings.NewReader(oldFilterLayout)
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("%v: %s", err, out)
		}
		return nil
	})
	conn := dialEcho(t, c1, at(c2, 80))
	mustNotConnect(t, c1.ns, at(c2, 81)) // the old policy chain
	mustNotConnect(t, c1.ns, at(c3, 81)) // the old guard chain

	// The restart: a new engine, restored networks, a full Sync.
	l.eng = New(Options{Logger: testLogger(t)})
	l.addNetwork(br)
	l.do(func() error { return l.eng.SetEtcd(l.ctx, etcd) })
	l.do(func() error { return l.eng.Sync(l.ctx) })

	listed := l.nftList()
	for _, hook := range []string{"hook input", "hook forward"} {
		if n := strings.Count(listed, hook); n != 1 {
			t.Errorf("%d base chains at %s, want 1:\n%s", n, hook, listed)
		}
	}
	for _, c := range []string{chainGuardInput, chainGuardForward, chainPolInput, chainPolForward, chainIsolation} {
		body, ok := chainText(listed, c)
		if !ok || strings.Contains(body, "hook") || strings.Contains(body, "accept") && c != chainPolInput && c != chainPolForward {
			t.Errorf("chain %s after the sync (want a regular chain that passes by returning):\n%s", c, listed)
		}
	}
	// The previous policy (its maps and group chain, which the sync left
	// alone) and the guard still hold; the established connection lives.
	mustNotConnect(t, c1.ns, at(c2, 81))
	mustNotConnect(t, c1.ns, at(c3, 81))
	mustHello(t, c1.ns, "tcp", at(c3, 80), c3.ip4.String()+" "+c1.ip4.String())
	if got := conn.echo("after the upgrade"); got != "after the upgrade" {
		t.Fatalf("established connection broken by the upgrade: %q", got)
	}
	// The first SetPolicy takes the section over.
	l.setPolicy(p)
	mustNotConnect(t, c1.ns, at(c2, 81))
	mustHello(t, c1.ns, "tcp", at(c2, 80), c2.ip4.String()+" "+c1.ip4.String())
}

// chainText is the body of chain name in an `nft list` output.
func chainText(listed, name string) (string, bool) {
	_, rest, ok := strings.Cut(listed, "\tchain "+name+" {\n")
	if !ok {
		return "", false
	}
	body, _, _ := strings.Cut(rest, "\n\t}")
	return body, true
}
