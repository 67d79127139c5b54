package clusterdns

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/podnet/podnet/feed"
	"github.com/podnet/podnet/hostid"
	"github.com/podnet/podnet/internal/testutil"
	"github.com/podnet/podnet/store"
	"github.com/podnet/podnet/store/storetest"
)

// fakeUpstream is a DNS server standing in for the host's resolver:
// example.com. has an A record; big.example. has 40, and over UDP only a
// truncated answer; every other name is NXDOMAIN.
func fakeUpstream(t *testing.T) string {
	t.Helper()
	port := testutil.FreePort(t)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	h := dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(r)
		_, tcp := w.RemoteAddr().(*net.TCPAddr)
		q := r.Question[0]
		switch strings.ToLower(q.Name) {
		case "example.com.":
			m.Answer = append(m.Answer, &dns.A{Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60},
				A: net.ParseIP("192.0.2.1")})
		case "big.example.":
			if !tcp {
				m.Truncated = true
				break
			}
			for i := range 40 {
				m.Answer = append(m.Answer, &dns.A{Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60},
					A: net.IPv4(198, 51, 100, byte(i+1))})
			}
		default:
			m.Rcode = dns.RcodeNameError
		}
		_ = w.WriteMsg(m)
	})
	for _, network := range []string{"udp", "tcp"} {
		started := make(chan struct{})
		s := &dns.Server{Addr: addr, Net: network, Handler: h, NotifyStartedFunc: func() { close(started) }}
		errc := make(chan error, 1)
		go func() { errc <- s.ListenAndServe() }()
		select {
		case <-started:
		case err := <-errc:
			t.Fatalf("fake upstream on %s %s: %v", network, addr, err)
		}
		t.Cleanup(func() { _ = s.Shutdown() })
	}
	return addr
}

// startDNS runs a cluster DNS for the test and returns its address.
func startDNS(t *testing.T, st *store.Store, upstreams []string, tweak ...func(*Config)) (*Server, string) {
	t.Helper()
	cfg := Config{Feeds: feeds(t, st), Upstreams: upstreams}
	for _, f := range tweak {
		f(&cfg)
	}
	return startDNSWith(t, cfg)
}

// startDNSWith runs a cluster DNS with cfg (Listen and Logger filled in).
func startDNSWith(t *testing.T, cfg Config) (*Server, string) {
	t.Helper()
	listen := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(testutil.FreePort(t)))
	cfg.Listen, cfg.Logger = listen, storetest.Logger(t)
	d, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- d.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-errc:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Errorf("DNS did not stop")
		}
	})
	// Serving once both sockets answer.
	for _, network := range []string{"udp", "tcp"} {
		testutil.Until(t, 10*time.Second, "the cluster DNS to serve over "+network, func() bool {
			m := new(dns.Msg)
			m.SetQuestion("ready.probe.", dns.TypeA)
			c := &dns.Client{Net: network, Timeout: time.Second}
			_, _, err := c.Exchange(m, listen.String())
			return err == nil
		})
	}
	return d, listen.String()
}

func query(t *testing.T, server, network, name string, qtype uint16, edns bool) *dns.Msg {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	if edns {
		m.SetEdns0(4096, false)
	}
	c := &dns.Client{Net: network, Timeout: 5 * time.Second}
	resp, _, err := c.Exchange(m, server)
	if err != nil {
		t.Fatalf("%s %s over %s: %v", dns.TypeToString[qtype], name, network, err)
	}
	return resp
}

// addrs returns the A/AAAA answers, sorted.
func addrs(m *dns.Msg) []string {
	var out []string
	for _, rr := range m.Answer {
		switch r := rr.(type) {
		case *dns.A:
			out = append(out, r.A.String())
		case *dns.AAAA:
			out = append(out, r.AAAA.String())
		}
	}
	slices.Sort(out)
	return out
}

// waitAnswer polls until a query over UDP answers exactly want (sorted
// addresses) with rcode.
func waitAnswer(t *testing.T, server, name string, qtype uint16, rcode int, want ...string) *dns.Msg {
	t.Helper()
	var last *dns.Msg
	testutil.Eventually(t, 10*time.Second, fmt.Sprintf("%s %s answers %s %v", dns.TypeToString[qtype], name, dns.RcodeToString[rcode], want), func() error {
		last = query(t, server, "udp", name, qtype, false)
		got := addrs(last)
		if last.Rcode == rcode && slices.Equal(got, want) {
			return nil
		}
		return fmt.Errorf("rcode %s answers %v", dns.RcodeToString[last.Rcode], got)
	})
	return last
}

// twoHosts writes the records of two live hosts.
func twoHosts(t *testing.T, st *store.Store) {
	storetest.Put(t, st, store.AliveKey("h1"), store.HostAlive{Name: "h1"})
	storetest.Put(t, st, store.AliveKey("h2"), store.HostAlive{Name: "h2"})
	for host, metas := range map[string][]store.EndpointMeta{
		"h1": {
			{Endpoint: "e1", Name: "web", IPv4: netip.MustParseAddr("10.0.0.1"), Ready: true},
			{Endpoint: "e4", Name: "slow", IPv4: netip.MustParseAddr("10.0.0.4"), Ready: false},
		},
		"h2": {
			{Endpoint: "e2", Name: "api", Aliases: []string{"API-Alias"}, IPv4: netip.MustParseAddr("10.0.1.1"), IPv6: netip.MustParseAddr("fd00::2"), Ready: true},
			{Endpoint: "e3", Name: "web", IPv4: netip.MustParseAddr("10.0.1.2"), Ready: true},
			{Endpoint: "e5", Name: "v6only", IPv6: netip.MustParseAddr("fd00::5"), Ready: true},
		},
	} {
		for _, m := range metas {
			storetest.Put(t, st, store.EndpointMetaKey(host, m.Endpoint), m)
		}
	}
}

func TestDNSAnswers(t *testing.T) {
	st := storetest.New(t)
	twoHosts(t, st)
	d, srv := startDNS(t, st, []string{fakeUpstream(t)})

	waitAnswer(t, srv, "web.", dns.TypeA, dns.RcodeSuccess, "10.0.0.1", "10.0.1.2")
	if got := d.Lookup("WEB"); !slices.Equal(got, []netip.Addr{netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.1.2")}) {
		t.Errorf("Lookup(WEB) = %v", got)
	}
	if got := d.Lookup("api."); len(got) != 2 {
		t.Errorf("Lookup(api.) = %v, want both families", got)
	}

	t.Run("answer details", func(t *testing.T) {
		m := query(t, srv, "udp", "Web.", dns.TypeA, false)
		if !m.Authoritative || len(m.Answer) != 2 || m.Answer[0].Header().Ttl != 5 || m.Answer[0].Header().Name != "Web." {
			t.Errorf("answer = %v", m)
		}
	})
	t.Run("duplicate names are shuffled", func(t *testing.T) {
		firsts := map[string]bool{}
		for i := 0; i < 64 && len(firsts) < 2; i++ {
			m := query(t, srv, "udp", "web.", dns.TypeA, false)
			firsts[m.Answer[0].(*dns.A).A.String()] = true
		}
		if len(firsts) != 2 {
			t.Errorf("the first answer was always %v", firsts)
		}
	})
	t.Run("A and AAAA", func(t *testing.T) {
		waitAnswer(t, srv, "api.", dns.TypeA, dns.RcodeSuccess, "10.0.1.1")
		waitAnswer(t, srv, "api.", dns.TypeAAAA, dns.RcodeSuccess, "fd00::2")
		waitAnswer(t, srv, "v6only.", dns.TypeAAAA, dns.RcodeSuccess, "fd00::5")
		// Known name, no record of that type: NOERROR and no answer.
		waitAnswer(t, srv, "v6only.", dns.TypeA, dns.RcodeSuccess)
		waitAnswer(t, srv, "web.", dns.TypeAAAA, dns.RcodeSuccess)
		if m := query(t, srv, "udp", "web.", dns.TypeMX, false); m.Rcode != dns.RcodeSuccess || len(m.Answer) != 0 {
			t.Errorf("MX web. = %v", m)
		}
	})
	t.Run("aliases and case", func(t *testing.T) {
		waitAnswer(t, srv, "api-alias.", dns.TypeA, dns.RcodeSuccess, "10.0.1.1")
		waitAnswer(t, srv, "API-ALIAS.", dns.TypeAAAA, dns.RcodeSuccess, "fd00::2")
		waitAnswer(t, srv, "aPi.", dns.TypeA, dns.RcodeSuccess, "10.0.1.1")
	})
	t.Run("not ready is not answered", func(t *testing.T) {
		// Forwarded, and the upstream does not know it.
		waitAnswer(t, srv, "slow.", dns.TypeA, dns.RcodeNameError)
		storetest.Put(t, st, store.EndpointMetaKey("h1", "e4"), store.EndpointMeta{Endpoint: "e4", Name: "slow", IPv4: netip.MustParseAddr("10.0.0.4"), Ready: true})
		waitAnswer(t, srv, "slow.", dns.TypeA, dns.RcodeSuccess, "10.0.0.4")
		storetest.Delete(t, st, store.EndpointMetaKey("h1", "e4"))
		waitAnswer(t, srv, "slow.", dns.TypeA, dns.RcodeNameError)
	})
	t.Run("PTR", func(t *testing.T) {
		for addr, want := range map[string]string{"10.0.0.1": "web.", "fd00::2": "api.", "10.0.1.2": "web."} {
			rev, _ := dns.ReverseAddr(addr)
			m := query(t, srv, "udp", rev, dns.TypePTR, false)
			if m.Rcode != dns.RcodeSuccess || len(m.Answer) != 1 || m.Answer[0].(*dns.PTR).Ptr != want {
				t.Errorf("PTR %s = %v, want %s", addr, m, want)
			}
		}
		rev, _ := dns.ReverseAddr("10.0.0.99")
		if m := query(t, srv, "udp", rev, dns.TypePTR, false); m.Rcode != dns.RcodeNameError {
			t.Errorf("PTR of an unknown address = %s, want the upstream's NXDOMAIN", dns.RcodeToString[m.Rcode])
		}
	})
	t.Run("TCP", func(t *testing.T) {
		m := query(t, srv, "tcp", "web.", dns.TypeA, false)
		if got := addrs(m); !slices.Equal(got, []string{"10.0.0.1", "10.0.1.2"}) {
			t.Errorf("A web. over TCP = %v", got)
		}
	})
	t.Run("forwarding", func(t *testing.T) {
		waitAnswer(t, srv, "example.com.", dns.TypeA, dns.RcodeSuccess, "192.0.2.1")
		waitAnswer(t, srv, "unknown.example.", dns.TypeA, dns.RcodeNameError)
		// Truncated over UDP upstream → retried over TCP.
		if m := query(t, srv, "udp", "big.example.", dns.TypeA, true); len(m.Answer) != 40 || m.Truncated {
			t.Errorf("big answer over UDP with EDNS: %d answers, truncated %v", len(m.Answer), m.Truncated)
		}
		if m := query(t, srv, "tcp", "big.example.", dns.TypeA, false); len(m.Answer) != 40 {
			t.Errorf("big answer over TCP: %d answers", len(m.Answer))
		}
		// A plain 512-byte UDP client gets a truncated answer and retries.
		if m := query(t, srv, "udp", "big.example.", dns.TypeA, false); !m.Truncated || len(m.Answer) >= 40 {
			t.Errorf("big answer over plain UDP: %d answers, truncated %v", len(m.Answer), m.Truncated)
		}
	})
	t.Run("dead host stops resolving", func(t *testing.T) {
		storetest.Delete(t, st, store.AliveKey("h2"))
		waitAnswer(t, srv, "web.", dns.TypeA, dns.RcodeSuccess, "10.0.0.1")
		waitAnswer(t, srv, "api.", dns.TypeA, dns.RcodeNameError)
		rev, _ := dns.ReverseAddr("10.0.1.1")
		if m := query(t, srv, "udp", rev, dns.TypePTR, false); m.Rcode != dns.RcodeNameError {
			t.Errorf("PTR of a dead host's container = %s", dns.RcodeToString[m.Rcode])
		}
		storetest.Put(t, st, store.AliveKey("h2"), store.HostAlive{Name: "h2"})
		waitAnswer(t, srv, "api.", dns.TypeA, dns.RcodeSuccess, "10.0.1.1")
	})
}

// TestDNSDottedNamesGoUpstream: a container named like an outside name
// (github.com) or with such an alias (www.example.org) does not shadow it:
// the query goes upstream; its single-label alias still answers, and PTR
// names only that. Service names keep their priority over containers.
func TestDNSDottedNamesGoUpstream(t *testing.T) {
	st := storetest.New(t)
	storetest.Put(t, st, store.AliveKey("h1"), store.HostAlive{Name: "h1"})
	storetest.Put(t, st, store.EndpointMetaKey("h1", "e1"), store.EndpointMeta{Endpoint: "e1", Name: "example.com",
		Aliases: []string{"www.example.org", "shop"}, IPv4: netip.MustParseAddr("10.0.0.66"), Ready: true})
	d, srv := startDNS(t, st, []string{fakeUpstream(t)})
	waitAnswer(t, srv, "shop.", dns.TypeA, dns.RcodeSuccess, "10.0.0.66")
	// The fake upstream's own answer for example.com, and NXDOMAIN for
	// the alias it does not know.
	waitAnswer(t, srv, "example.com.", dns.TypeA, dns.RcodeSuccess, "192.0.2.1")
	waitAnswer(t, srv, "www.example.org.", dns.TypeA, dns.RcodeNameError)
	if got := d.Lookup("example.com"); len(got) != 0 {
		t.Errorf("Lookup(example.com) = %v, want nothing", got)
	}
	rev, _ := dns.ReverseAddr("10.0.0.66")
	if m := query(t, srv, "udp", rev, dns.TypePTR, false); len(m.Answer) != 1 || m.Answer[0].(*dns.PTR).Ptr != "shop." {
		t.Errorf("PTR of the container = %v, want shop.", m)
	}
}

func TestDNSDeadHostLease(t *testing.T) {
	e := storetest.Start(t)
	st := e.Client(t, "")
	storetest.Put(t, st, store.EndpointMetaKey("h3", "e1"), store.EndpointMeta{Endpoint: "e1", Name: "leased", IPv4: netip.MustParseAddr("10.0.3.1"), Ready: true})
	// h3's podnetd keeps its liveness key on a lease, then dies without
	// revoking it: the key goes when the lease expires.
	h3 := e.Client(t, "")
	id, err := hostid.Claim(context.Background(), hostid.Config{Store: h3, Host: "h3", TTL: 2 * time.Second, Logger: storetest.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = id.Hold(ctx)
	}()
	t.Cleanup(func() { cancel(); <-done })
	_, srv := startDNS(t, st, []string{})
	waitAnswer(t, srv, "leased.", dns.TypeA, dns.RcodeSuccess, "10.0.3.1")
	_ = h3.Close()
	waitAnswer(t, srv, "leased.", dns.TypeA, dns.RcodeNameError)
}

func TestDNSUpstreamDown(t *testing.T) {
	st := storetest.New(t)
	twoHosts(t, st)
	dead := fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t))
	_, srv := startDNS(t, st, []string{dead})
	waitAnswer(t, srv, "web.", dns.TypeA, dns.RcodeSuccess, "10.0.0.1", "10.0.1.2")
	waitAnswer(t, srv, "example.com.", dns.TypeA, dns.RcodeServerFailure)
}

func TestDNSFallsThroughToNextUpstream(t *testing.T) {
	st := storetest.New(t)
	dead := fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t))
	_, srv := startDNS(t, st, []string{dead, fakeUpstream(t)})
	waitAnswer(t, srv, "example.com.", dns.TypeA, dns.RcodeSuccess, "192.0.2.1")
}

func TestDNSNoUpstreams(t *testing.T) {
	st := storetest.New(t)
	twoHosts(t, st)
	_, srv := startDNS(t, st, []string{})
	waitAnswer(t, srv, "web.", dns.TypeA, dns.RcodeSuccess, "10.0.0.1", "10.0.1.2")
	waitAnswer(t, srv, "example.com.", dns.TypeA, dns.RcodeNameError)
	waitAnswer(t, srv, "example.com.", dns.TypeMX, dns.RcodeNameError)
}

func TestDNSRunBindError(t *testing.T) {
	st := storetest.New(t)
	_, srv := startDNS(t, st, []string{})
	d, err := New(Config{Feeds: feeds(t, st), Listen: netip.MustParseAddrPort(srv), Upstreams: []string{}, Logger: storetest.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() { errc <- d.Run(context.Background()) }()
	select {
	case err := <-errc:
		if err == nil || !strings.Contains(err.Error(), srv) {
			t.Errorf("Run on a taken address = %v, want a bind error naming it", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run on a taken address did not return")
	}
}

func TestNewConfig(t *testing.T) {
	st := storetest.New(t)
	listen := netip.MustParseAddrPort("10.96.0.10:53")
	if _, err := New(Config{Feeds: feeds(t, st)}); err == nil {
		t.Error("no listen address accepted")
	}
	if _, err := New(Config{Feeds: feeds(t, st), Listen: listen, Upstreams: []string{"10.96.0.10:53"}}); err == nil {
		t.Error("upstream = listen address accepted (a forwarding loop)")
	}
	if _, err := New(Config{Feeds: feeds(t, st), Listen: listen, Upstreams: []string{"1.1.1.1:dns"}}); err == nil {
		t.Error("bad upstream port accepted")
	}
	d, err := New(Config{Feeds: feeds(t, st), Listen: listen, Upstreams: []string{"1.1.1.1", "[2606:4700::1111]:5353"}})
	if err != nil {
		t.Fatal(err)
	}
	if got := d.Upstreams(); !slices.Equal(got, []string{"1.1.1.1:53", "[2606:4700::1111]:5353"}) {
		t.Errorf("upstreams = %q", got)
	}

	rc := filepath.Join(t.TempDir(), "resolv.conf")
	conf := "search example.org\nnameserver 10.96.0.10\nnameserver 127.0.0.11\nnameserver 192.0.2.53\nnameserver fd00::53\noptions ndots:1\n"
	if err := os.WriteFile(rc, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	d, err = New(Config{Feeds: feeds(t, st), Listen: listen, ResolvConf: rc})
	if err != nil {
		t.Fatal(err)
	}
	if got := d.Upstreams(); !slices.Equal(got, []string{"192.0.2.53:53", "[fd00::53]:53"}) {
		t.Errorf("upstreams from resolv.conf = %q, want without our own address and 127.0.0.11", got)
	}
	d, err = New(Config{Feeds: feeds(t, st), Listen: listen, ResolvConf: filepath.Join(t.TempDir(), "missing")})
	if err != nil {
		t.Fatalf("missing resolv.conf: %v", err)
	}
	if len(d.Upstreams()) != 0 {
		t.Errorf("missing resolv.conf: upstreams %q", d.Upstreams())
	}
}

// feeds is a hub of st's prefixes for one server, until the test ends.
func feeds(t *testing.T, st *store.Store) *feed.Hub {
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	return feed.Start(ctx, st, storetest.Logger(t))
}
