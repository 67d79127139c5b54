package dataplane

import (
	"bufio"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// policyFixture is a policy state touching every kind of rule: on bridge
// 1, c2 accepts TCP 80 from c1 (set np-a4), UDP 53 from anywhere, SCTP
// from the client's block; c1 may only reach the client's block minus the
// client itself, and c2 on 80-90 (a range) or 8000/8080 (an anonymous
// set); c3's labels are not known yet (pending).
func policyFixture(c1, c2, c3 container) Policy {
	client := netip.MustParseAddr(clientIP4)
	return Policy{
		Endpoints: []PolicyEndpoint{
			{Addrs: []netip.Addr{c1.ip4, c1.ip6}, Egress: "e-web"},
			{Addrs: []netip.Addr{c2.ip4, c2.ip6}, Ingress: "i-db"},
			{Addrs: []netip.Addr{c3.ip4}, Ingress: PolicyPending, Egress: PolicyPending},
		},
		Groups: []PolicyGroup{
			{ID: "i-db", Policies: []string{"db", "dns"}, Rules: []PolicyRule{
				{Peers: []string{"web"}, Ports: []PolicyPorts{{Proto: TCP, First: 80, Last: 80}}},
				{Ports: []PolicyPorts{{Proto: UDP, First: 53, Last: 53}}},
				{Peers: []string{"lan"}, Ports: []PolicyPorts{{Proto: SCTP, First: 0, Last: 65535}}},
			}},
			{ID: "e-web", Egress: true, Policies: []string{"web-out"}, Rules: []PolicyRule{
				{Peers: []string{"lan"}},
				{Peers: []string{"db"}, Ports: []PolicyPorts{{Proto: TCP, First: 80, Last: 90}}},
				{Peers: []string{"db"}, Ports: []PolicyPorts{{Proto: TCP, First: 8080, Last: 8080}, {Proto: TCP, First: 8000, Last: 8000}}},
			}},
		},
		AddrSets: map[string][]netip.Addr{"web": {c1.ip4, c1.ip6}, "db": {c2.ip4, c2.ip6}},
		RangeSets: map[string][]AddrRange{"lan": {
			{First: netip.MustParseAddr("10.200.9.0"), Last: client.Prev()},
			{First: client.Next(), Last: netip.MustParseAddr("10.200.9.255")}}},
		Policies: []string{"db", "dns", "web-out", "unused"},
		Log:      true,
	}
}

func (l *lab) setPolicy(p Policy) {
	l.t.Helper()
	l.do(func() error { return l.eng.SetPolicy(l.ctx, p) })
}

// TestKernelPolicyTableMatchesNft loads a policy section with every kind
// of rule and checks it as TestKernelTableMatchesNft does: nft prints
// the ruleset's text, and compiles that text to the same bytecode.
func TestKernelPolicyTableMatchesNft(t *testing.T) {
	t.Parallel()
	l := newLab(t)
	br := l.bridge(1)
	c1, c2, c3 := l.container(br, 2), l.container(br, 3), l.container(br, 4)
	l.addNetwork(br)
	l.setPolicy(policyFixture(c1, c2, c3))
	var rs *ruleset
	l.do(func() error {
		l.eng.mu.Lock()
		defer l.eng.mu.Unlock()
		rs = buildRuleset(rulesetInput{table: "podnet", bridgePrefix: "pn-", nets: l.eng.nets, eps: l.eng.eps, policy: &l.eng.pol.sec})
		return nil
	})
	l.checkTable(rs)
	for _, c := range []string{"np-c-pending-in", counterName("unused", true), counterName("db", false)} {
		if out, err := l.nft("list", "counter", "inet", "podnet", c); err != nil {
			t.Errorf("counter %s: %v %s", c, err, out)
		}
	}
}

// TestKernelPolicyTraffic pushes real connections through the rules:
// bridged traffic between containers of one bridge (br_netfilter),
// routed traffic from outside, the host's own connections, replies,
// established connections across a change, pending endpoints, counters.
func TestKernelPolicyTraffic(t *testing.T) {
	t.Parallel()
	l := newLab(t)
	br := l.bridge(1)
	// A multi-host network (its uplink the client's side): routed from
	// outside (a single-host network's containers answer the outside only
	// on published ports).
	br.Uplink = "vcl"
	c1, c2, c3 := l.container(br, 2), l.container(br, 3), l.container(br, 4)
	l.addNetwork(br)
	for _, c := range []container{c1, c2, c3} {
		for _, port := range []int{53, 80, 81, 8000, 8080} {
			serve(t, c.ns, port, c.ip4.String())
		}
	}
	serve(t, l.client, 80, "client")
	at := func(c container, port int) string { return net.JoinHostPort(c.ip4.String(), fmt.Sprint(port)) }
	at6 := func(c container, port int) string { return net.JoinHostPort(c.ip6.String(), fmt.Sprint(port)) }

	// An established connection before any policy: it must survive.
	conn := dialEcho(t, c1, at(c2, 81))

	l.setPolicy(policyFixture(c1, c2, c3))
	mustHello(t, c1.ns, "tcp", at(c2, 80), c2.ip4.String()+" "+c1.ip4.String())  // ingress rule 1, egress rule 2
	mustHello(t, c1.ns, "tcp", at6(c2, 80), c2.ip4.String()+" "+c1.ip6.String()) // the same over IPv6
	mustNotConnect(t, c1.ns, at(c2, 8080))                                       // egress set {8000, 8080}, but ingress denies
	mustNotConnect(t, c1.ns, at(c2, 81))                                         // egress allows 80-90, ingress only 80
	mustNotConnect(t, l.client, at(c2, 80))                                      // ingress: client is not web
	mustHello(t, l.client, "udp", at(c2, 53), c2.ip4.String()+" "+clientIP4)     // ingress rule 2: UDP 53 from anywhere
	mustNotConnect(t, c1.ns, net.JoinHostPort(clientIP4, "80"))                  // egress: the block excepts the client
	mustHello(t, c2.ns, "tcp", at(c1, 80), c1.ip4.String()+" "+c2.ip4.String())  // c1 is not isolated for ingress
	mustHello(t, l.host, "tcp", at(c2, 81), c2.ip4.String()+" 10.200.1.1")       // the host reaches its containers
	mustNotConnect(t, c1.ns, at(c3, 80))                                         // pending: nothing in
	mustNotConnect(t, c3.ns, at(c2, 53))                                         // pending: nothing out
	mustNotConnect(t, l.client, at(c3, 80))                                      // (c1's own egress denied the first)
	mustHello(t, l.host, "tcp", at(c3, 80), c3.ip4.String()+" 10.200.1.1")       // but its host still does
	if got := conn.echo("still there"); got != "still there" {
		t.Fatalf("established connection c1 -> c2:81 broken by the policy: %q", got)
	}
	var denied []PolicyDenied
	l.do(func() (err error) { denied, err = l.eng.PolicyDenials(); return err })
	counts := map[string]uint64{}
	for _, d := range denied {
		counts[fmt.Sprintf("%s/%v", d.Policy, d.Egress)] = d.Packets
	}
	if counts["db/false"] == 0 || counts["dns/false"] == 0 || counts["web-out/true"] == 0 || counts["/false"] == 0 || counts["/true"] == 0 {
		t.Fatalf("denied packets per policy/egress: %v, want each of db, dns (ingress), web-out (egress) and pending counted", counts)
	}
	if _, ok := counts["unused/true"]; !ok {
		t.Fatalf("counter of a policy selecting nothing here is missing: %v", counts)
	}

	// Labels known: c3 is selected by nothing; c2's ingress now allows
	// 81 as well. One incremental batch each.
	p := policyFixture(c1, c2, c3)
	p.Endpoints[2] = PolicyEndpoint{Addrs: []netip.Addr{c3.ip4}}
	p.Groups[0].Rules[0].Ports = append(p.Groups[0].Rules[0].Ports, PolicyPorts{Proto: TCP, First: 81, Last: 81})
	l.setPolicy(p)
	mustHello(t, l.client, "tcp", at(c3, 80), c3.ip4.String()+" "+clientIP4)
	mustHello(t, c3.ns, "tcp", at(c1, 80), c1.ip4.String()+" "+c3.ip4.String())
	mustHello(t, c1.ns, "tcp", at(c2, 81), c2.ip4.String()+" "+c1.ip4.String())

	// No policy: everything flows again.
	l.setPolicy(Policy{})
	mustHello(t, l.client, "tcp", at(c2, 80), c2.ip4.String()+" "+clientIP4)
	mustHello(t, c1.ns, "tcp", net.JoinHostPort(clientIP4, "80"), "client "+hostIP4) // masqueraded out
	if out, _ := l.nft("list", "chains", "inet", "podnet"); strings.Contains(out, "np-i4-") || strings.Contains(out, "np-e4-") {
		t.Fatalf("group chains left behind:\n%s", out)
	}
}

type echoConn struct {
	t *testing.T
	c net.Conn
	r *bufio.Reader
}

// dialEcho opens a TCP connection from c to addr and reads the greeting.
func dialEcho(t *testing.T, c container, addr string) *echoConn {
	t.Helper()
	var conn net.Conn
	if err := c.ns.Do(func() (err error) { conn, err = net.DialTimeout("tcp", addr, 2*time.Second); return err }); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	e := &echoConn{t: t, c: conn, r: bufio.NewReader(conn)}
	_ = conn.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := e.r.ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	return e
}

func (e *echoConn) echo(s string) string {
	_ = e.c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := fmt.Fprintln(e.c, s); err != nil {
		return err.Error()
	}
	got, err := e.r.ReadString('\n')
	if err != nil {
		return err.Error()
	}
	return strings.TrimSpace(got)
}

// TestKernelPolicyRestart: a restarted podnetd (a new engine) keeps the
// previous one's policy rules through its first Sync, can isolate a new
// endpoint before its first SetPolicy (even over an element the previous
// one left for that address), and then takes the section over in one
// batch without breaking established connections.
func TestKernelPolicyRestart(t *testing.T) {
	t.Parallel()
	l := newLab(t)
	br := l.bridge(1)
	c1, c2, c3 := l.container(br, 2), l.container(br, 3), l.container(br, 4)
	l.addNetwork(br)
	for _, c := range []container{c2, c3} {
		serve(t, c.ns, 80, c.ip4.String())
		serve(t, c.ns, 81, c.ip4.String())
	}
	p := Policy{
		Endpoints: []PolicyEndpoint{{Addrs: []netip.Addr{c2.ip4}, Ingress: "i-db"}, {Addrs: []netip.Addr{c3.ip4}, Ingress: "i-db"}},
		Groups: []PolicyGroup{{ID: "i-db", Policies: []string{"db"}, Rules: []PolicyRule{
			{Ports: []PolicyPorts{{Proto: TCP, First: 80, Last: 80}}}}}},
		Policies: []string{"db"},
	}
	l.setPolicy(p)
	conn := dialEcho(t, c1, net.JoinHostPort(c2.ip4.String(), "80"))
	mustNotConnect(t, c1.ns, net.JoinHostPort(c2.ip4.String(), "81"))

	// The restart: a new engine, restored networks, a full Sync.
	l.eng = New(Options{Logger: testLogger(t)})
	l.addNetwork(br)
	l.do(func() error { return l.eng.Sync(l.ctx) })
	mustNotConnect(t, c1.ns, net.JoinHostPort(c2.ip4.String(), "81"))
	mustHello(t, c1.ns, "tcp", net.JoinHostPort(c2.ip4.String(), "80"), c2.ip4.String()+" "+c1.ip4.String())
	// c3's address is reused by a new endpoint before the agent synced.
	l.do(func() error { return l.eng.IsolatePending(l.ctx, []netip.Addr{c3.ip4}) })
	mustNotConnect(t, c1.ns, net.JoinHostPort(c3.ip4.String(), "80"))
	if err := l.host.Do(func() error { return l.eng.IsolatePending(l.ctx, []netip.Addr{c3.ip4}) }); err != nil {
		t.Fatalf("isolating an address twice: %v", err)
	}
	// The first SetPolicy: c3 known, selected by nothing.
	p.Endpoints = p.Endpoints[:1]
	l.setPolicy(p)
	mustHello(t, c1.ns, "tcp", net.JoinHostPort(c3.ip4.String(), "81"), c3.ip4.String()+" "+c1.ip4.String())
	mustNotConnect(t, c1.ns, net.JoinHostPort(c2.ip4.String(), "81"))
	if got := conn.echo("after the restart"); got != "after the restart" {
		t.Fatalf("established connection broken by the restart: %q", got)
	}
	if err := l.host.Do(func() error { return l.eng.IsolatePending(l.ctx, []netip.Addr{c3.ip4}) }); err != ErrPolicySet {
		t.Fatalf("IsolatePending after SetPolicy: %v, want ErrPolicySet", err)
	}
}
