package dataplane

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/podnet/podnet/internal/testutil"
)

// lab is a "host" namespace with podnet bridges, "container" namespaces
// behind them, and a "client" namespace on another subnet joined to the
// host by a veth, standing for the outside world:
//
//	client 10.200.9.2 ── vcl 10.200.9.1 [host] pn-… 10.200.N.1 ── containers 10.200.N.x
//	       fd00:9::2         fd00:9::1                fd00:N::1              fd00:N::x
type lab struct {
	t      *testing.T
	host   *testutil.NetNS
	client *testutil.NetNS
	tag    string // random suffix of bridge names
	eng    *Engine
	ctx    context.Context
}

const (
	hostIP4   = "10.200.9.1"
	hostIP4b  = "10.200.9.11" // a second host address, for HostIP bindings
	clientIP4 = "10.200.9.2"
	hostIP6   = "fd00:9::1"
	clientIP6 = "fd00:9::2"
)

func newLab(t *testing.T) *lab {
	t.Helper()
	testutil.SkipUnlessRoot(t)
	l := &lab{t: t, ctx: context.Background()}
	l.host, l.client = l.netns(), l.netns()
	l.tag = l.host.Name[len(l.host.Name)-4:]
	l.sysctl(l.host, "net/ipv4/ip_forward", "1")
	l.sysctl(l.host, "net/ipv6/conf/all/forwarding", "1")
	l.ipBatch(l.host,
		"link add vcl type veth peer name eth0 netns "+l.client.Name,
		"addr add "+hostIP4+"/24 dev vcl",
		"addr add "+hostIP4b+"/24 dev vcl",
		"addr add "+hostIP6+"/64 dev vcl nodad",
		"link set vcl up")
	l.ipBatch(l.client,
		"addr add "+clientIP4+"/24 dev eth0",
		"addr add "+clientIP6+"/64 dev eth0 nodad",
		"link set eth0 up",
		"route add default via "+hostIP4,
		"route add default via "+hostIP6)
	l.eng = New(Options{Logger: testLogger(t)})
	return l
}

// bridge creates pn-<n><tag> with 10.200.<n>.1/24 and fd00:<n>::1/64 and
// returns its Network (masquerading, not internal).
func (l *lab) bridge(n int) Network { return l.namedBridge(fmt.Sprintf("pn-%d%s", n, l.tag), n) }

// namedBridge is bridge with another name (Docker's docker0 or br-*,
// which the engine is not told about).
func (l *lab) namedBridge(name string, n int) Network {
	l.ipBatch(l.host,
		"link add "+name+" type bridge",
		fmt.Sprintf("addr add 10.200.%d.1/24 dev %s", n, name),
		fmt.Sprintf("addr add fd00:%d::1/64 dev %s nodad", n, name),
		"link set "+name+" up")
	// What the driver does for published ports on 127.0.0.1.
	l.sysctl(l.host, "net/ipv4/conf/"+name+"/route_localnet", "1")
	return Network{
		ID: fmt.Sprintf("net%d%s0123456789abcdef", n, l.tag), Bridge: name, Masquerade: true,
		Subnets: []netip.Prefix{
			netip.MustParsePrefix(fmt.Sprintf("10.200.%d.0/24", n)),
			netip.MustParsePrefix(fmt.Sprintf("fd00:%d::/64", n)),
		},
	}
}

// container is a namespace attached to net's bridge with 10.200.<n>.<i>.
type container struct {
	ns  *testutil.NetNS
	ip4 netip.Addr
	ip6 netip.Addr
}

func (l *lab) container(net Network, i int) container {
	ns := l.netns()
	n := net.Subnets[0].Addr().As4()[2]
	veth := fmt.Sprintf("v%d%d%s", n, i, l.tag)
	c := container{ns: ns,
		ip4: netip.MustParseAddr(fmt.Sprintf("10.200.%d.%d", n, i)),
		ip6: netip.MustParseAddr(fmt.Sprintf("fd00:%d::%d", n, i))}
	l.ipBatch(l.host,
		"link add "+veth+" type veth peer name eth0 netns "+ns.Name,
		"link set "+veth+" master "+net.Bridge,
		// What the driver does: with br_netfilter a container reaching
		// its own published port is DNATed back out of the port it came
		// in on, which a bridge only does in hairpin mode.
		"link set "+veth+" type bridge_slave hairpin on",
		"link set "+veth+" up")
	l.ipBatch(ns,
		fmt.Sprintf("addr add %s/24 dev eth0", c.ip4),
		fmt.Sprintf("addr add %s/64 dev eth0 nodad", c.ip6),
		"link set eth0 up",
		fmt.Sprintf("route add default via 10.200.%d.1", n),
		fmt.Sprintf("route add default via fd00:%d::1", n))
	return c
}

// netns creates a namespace without IPv6 duplicate address detection,
// which would hold new addresses (link-local ones too) tentative for a
// second or two.
func (l *lab) netns() *testutil.NetNS {
	ns := testutil.NewNetNS(l.t)
	for _, conf := range []string{"all", "default"} {
		l.sysctl(ns, "net/ipv6/conf/"+conf+"/accept_dad", "0")
	}
	return ns
}

func (l *lab) ipBatch(ns *testutil.NetNS, cmds ...string) {
	l.t.Helper()
	cmd := exec.Command("ip", "-n", ns.Name, "-batch", "-")
	cmd.Stdin = strings.NewReader(strings.Join(cmds, "\n") + "\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		l.t.Fatalf("ip -n %s -batch: %v: %s\n%s", ns.Name, err, out, strings.Join(cmds, "\n"))
	}
}

func (l *lab) sysctl(ns *testutil.NetNS, key, val string) {
	l.t.Helper()
	if err := ns.Do(func() error { return os.WriteFile("/proc/sys/"+key, []byte(val), 0o644) }); err != nil {
		l.t.Fatalf("sysctl %s=%s in %s: %v", key, val, ns.Name, err)
	}
}

// do runs fn in the host namespace (where the engine acts), failing the
// test on error.
func (l *lab) do(fn func() error) {
	l.t.Helper()
	if err := l.host.Do(fn); err != nil {
		l.t.Fatal(err)
	}
}

func (l *lab) addNetwork(n Network) {
	l.t.Helper()
	l.do(func() error { return l.eng.AddNetwork(l.ctx, n) })
}

func (l *lab) publish(epID string, n Network, c container, bs ...Binding) []Mapping {
	l.t.Helper()
	var ms []Mapping
	l.do(func() (err error) {
		ms, err = l.eng.Publish(l.ctx, epID, n.ID, c.ip4, c.ip6, bs)
		return err
	})
	return ms
}

func (l *lab) nft(args ...string) (string, error) {
	return l.host.Exec(append([]string{"nft"}, args...)...)
}

// serve starts a TCP and a UDP server on port in ns. Each answers with
// "<tag> <client address>" (TCP: then echoes lines) so tests see who
// answered and whom it saw.
func serve(t *testing.T, ns *testutil.NetNS, port int, tag string) {
	t.Helper()
	var ln net.Listener
	var pc net.PacketConn
	err := ns.Do(func() (err error) {
		if ln, err = net.Listen("tcp", fmt.Sprintf(":%d", port)); err != nil {
			return err
		}
		pc, err = net.ListenPacket("udp", fmt.Sprintf(":%d", port))
		return err
	})
	if err != nil {
		t.Fatalf("listen in %s: %v", ns.Name, err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); pc.Close(); wg.Wait() })
	wg.Add(2)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				fmt.Fprintf(c, "%s %s\n", tag, hostOf(c.RemoteAddr()))
				sc := bufio.NewScanner(c)
				for sc.Scan() {
					fmt.Fprintf(c, "%s\n", sc.Text())
				}
			}()
		}
	}()
	go func() {
		defer wg.Done()
		buf := make([]byte, 1500)
		for {
			_, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			_, _ = pc.WriteTo([]byte(fmt.Sprintf("%s %s\n", tag, hostOf(from))), from)
		}
	}()
}

func hostOf(a net.Addr) string {
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		return a.String()
	}
	return ap.Addr().Unmap().String()
}

// hello connects from ns to addr ("ip:port") over proto and returns the
// answer "<tag> <address the server saw>".
func hello(ns *testutil.NetNS, proto, addr string, timeout time.Duration) (string, error) {
	var answer string
	err := ns.Do(func() error {
		c, err := net.DialTimeout(proto, addr, timeout)
		if err != nil {
			return err
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(timeout))
		if proto == "udp" {
			if _, err := c.Write([]byte("hi")); err != nil {
				return err
			}
		}
		answer, err = bufio.NewReader(c).ReadString('\n')
		return err
	})
	return strings.TrimSpace(answer), err
}

// mustHello asserts that addr answers with want ("<tag> <seen address>"),
// polling briefly: a new rule is live at once, but the first packet may
// wait for neighbour resolution.
func mustHello(t *testing.T, ns *testutil.NetNS, proto, addr, want string) {
	t.Helper()
	took := testutil.Eventually(t, 5*time.Second, fmt.Sprintf("%s %s from %s answers %q", proto, addr, ns.Name, want), func() error {
		got, err := hello(ns, proto, addr, time.Second)
		if err == nil && got == want {
			return nil
		}
		return fmt.Errorf("got %q, %v", got, err)
	})
	if took > 500*time.Millisecond {
		t.Logf("%s %s from %s took %v", proto, addr, ns.Name, took)
	}
}

// mustNotConnect asserts that a TCP connection to addr fails (refused, or
// no answer within half a second: the lab answers in well under 10 ms).
func mustNotConnect(t *testing.T, ns *testutil.NetNS, addr string) {
	t.Helper()
	if got, err := hello(ns, "tcp", addr, 500*time.Millisecond); err == nil {
		t.Fatalf("tcp %s from %s answered %q, want no connection", addr, ns.Name, got)
	}
}

// testLogger sends the engine's log to the test log.
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// udpClient is a connected UDP socket in a namespace: it keeps its
// 5-tuple (and so its conntrack entry) for as long as the test talks.
type udpClient struct {
	t *testing.T
	c net.Conn
}

func dialUDP(t *testing.T, ns *testutil.NetNS, addr string) *udpClient {
	t.Helper()
	var c net.Conn
	if err := ns.Do(func() (err error) { c, err = net.Dial("udp", addr); return err }); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &udpClient{t: t, c: c}
}

// ask sends one datagram and returns the answer.
func (u *udpClient) ask(timeout time.Duration) (string, error) {
	_ = u.c.SetDeadline(time.Now().Add(timeout))
	if _, err := u.c.Write([]byte("hi")); err != nil {
		return "", err
	}
	buf := make([]byte, 100)
	n, err := u.c.Read(buf)
	return strings.TrimSpace(string(buf[:n])), err
}

// askUntil asks until the answer is want, for at most a few seconds.
func (u *udpClient) askUntil(want string) {
	u.t.Helper()
	var got string
	var err error
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); {
		if got, err = u.ask(300 * time.Millisecond); got == want {
			return
		}
	}
	u.t.Fatalf("udp from the client's socket: got %q, %v; want %q", got, err, want)
}
