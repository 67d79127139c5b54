package overlay

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	dipam "github.com/docker/go-plugins-helpers/ipam"
	"github.com/podnet/podnet/hostid"
	"github.com/podnet/podnet/internal/link"
	"github.com/podnet/podnet/internal/testutil"
	"github.com/podnet/podnet/ipam"
	"github.com/podnet/podnet/store"
	"github.com/podnet/podnet/store/storetest"
	"github.com/vishvananda/netlink"
	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// The lab: N "hosts", each a network namespace joined to an underlay switch
// (a bridge in one more namespace) by a veth, each with a bridge holding
// the same anycast gateway, proxy ARP on, and "containers" (namespaces
// attached by veth) addressed by the real IPAM. One embedded etcd is shared
// by every host, each with its own client, as separate podnetds would be.

const (
	labVNI    = 4242
	labBridge = "pn-test0"
	labNetID  = "0123456789abcdef-test"
)

var labGatewayMAC = net.HardwareAddr{0x02, 0x70, 0, 0, 0, 1}

type labOptions struct {
	hosts int
	v6    bool
	// tunnels gives each host its tunnel address in every pool, as the
	// driver does (routes to other hosts then carry it as source).
	tunnels bool
}

type lab struct {
	t     *testing.T
	etcd  *storetest.Etcd
	raw   *store.Store
	sw    *testutil.NetNS
	pool  netip.Prefix
	pool6 netip.Prefix
	hosts []*labHost
}

type labHost struct {
	lab      *lab
	name     string
	ns       *testutil.NetNS
	k        *link.Kernel
	underlay Underlay
	st       *store.Store
	ipam     *ipam.IPAM
	net      Network
	ov       *Overlay
	stopRun  func()
	stopLive func()
	nveth    int
	// oldLayout makes the host announce a podnetd older than exception
	// records (every other host then follows address records too).
	oldLayout bool
}

type labContainer struct {
	ns   *testutil.NetNS
	addr netip.Addr
	host *labHost
}

func newLab(t *testing.T, opts labOptions) *lab {
	t.Helper()
	testutil.SkipUnlessLinkType(t, "vxlan")
	e := storetest.Start(t)
	l := &lab{t: t, etcd: e, raw: e.Client(t, ""), sw: testutil.NewNetNS(t),
		pool: netip.MustParsePrefix("10.31.0.0/16"), pool6: netip.MustParsePrefix("fd31::/64")}
	must(t, l.sw.NL.LinkAdd(&netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: "sw0"}}))
	sw, err := l.sw.NL.LinkByName("sw0")
	must(t, err)
	must(t, l.sw.NL.LinkSetUp(sw))
	for i := range opts.hosts {
		l.hosts = append(l.hosts, l.addHost(i+1, sw.Attrs().Index, opts))
	}
	for _, h := range l.hosts {
		h.start()
	}
	return l
}

func (l *lab) addHost(i, swIndex int, opts labOptions) *labHost {
	t := l.t
	h := &labHost{lab: l, name: fmt.Sprintf("host%d", i), ns: testutil.NewNetNS(t)}
	h.k = &link.Kernel{NL: h.ns.NL, ProcSys: "/proc/sys"}
	// Underlay: eth0 10.77.0.i/24, a default route so DetectUnderlay's
	// automatic choice is exercised.
	must(t, l.sw.NL.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: fmt.Sprintf("p%d", i), MasterIndex: swIndex},
		PeerName: "eth0", PeerNamespace: netlink.NsFd(int(h.ns.Handle))}))
	p, err := l.sw.NL.LinkByName(fmt.Sprintf("p%d", i))
	must(t, err)
	must(t, l.sw.NL.LinkSetUp(p))
	eth0, err := h.ns.NL.LinkByName("eth0")
	must(t, err)
	must(t, h.ns.NL.AddrAdd(eth0, mustAddr(fmt.Sprintf("10.77.0.%d/24", i))))
	must(t, h.ns.NL.LinkSetUp(eth0))
	must(t, h.ns.NL.RouteAdd(&netlink.Route{LinkIndex: eth0.Attrs().Index, Gw: net.ParseIP("10.77.0.254")}))
	h.underlay, err = DetectUnderlay(h.k, "")
	must(t, err)

	// IPAM: the pool, this host's reference and the anycast gateway.
	h.st = l.etcd.Client(t, "")
	h.ipam, err = ipam.New(ipam.Config{Host: h.name, Store: h.st, Logger: storetest.Logger(t)})
	must(t, err)
	pools := []netip.Prefix{l.pool}
	if opts.v6 {
		pools = append(pools, l.pool6)
	}
	var gws []netip.Prefix
	for _, p := range pools {
		ctx := context.Background()
		_, err := h.ipam.RequestPool(ctx, &dipam.RequestPoolRequest{Pool: p.String(), V6: p.Addr().Is6()})
		must(t, err)
		gw, err := h.ipam.RequestAddress(ctx, &dipam.RequestAddressRequest{PoolID: p.String(),
			Options: map[string]string{"RequestAddressType": "com.docker.network.gateway"}})
		must(t, err)
		gws = append(gws, netip.MustParsePrefix(gw.Address))
	}
	// The host's network record, as the driver's CreateNetwork writes it:
	// from now on an explicit address is a container's (--ip), not an aux.
	must(t, h.st.Put(context.Background(), store.NetworkKey(h.name, "net"), store.Network{ID: "net", Host: h.name,
		IPv4: []store.Subnet{{Pool: l.pool}}, IPv6: []store.Subnet{{Pool: l.pool6}}}))

	// The bridge with the anycast gateway, and what the driver sets on it.
	// A fresh bridge's IPv6 link-local address is tentative for ~1 s (DAD),
	// and without a usable link-local address the kernel sends no neighbor
	// solicitations from it: skip DAD so IPv6 works at once.
	if opts.v6 {
		must(t, h.sysctl("net/ipv6/conf/default/accept_dad", "0"))
	}
	br, err := h.k.EnsureBridge(labBridge, 1450, labGatewayMAC, gws[:1])
	must(t, err)
	sysctls := [][2]string{
		{"net/ipv4/ip_forward", "1"},
		{"net/ipv4/conf/" + labBridge + "/proxy_arp", "1"},
		{"net/ipv4/neigh/" + labBridge + "/proxy_delay", "0"},
	}
	if opts.v6 {
		sysctls = append(sysctls, [][2]string{
			{"net/ipv6/conf/all/forwarding", "1"},
			{"net/ipv6/conf/" + labBridge + "/disable_ipv6", "0"},
			{"net/ipv6/neigh/" + labBridge + "/proxy_delay", "0"},
		}...)
	}
	for _, s := range sysctls {
		must(t, h.sysctl(s[0], s[1]))
	}
	if opts.v6 {
		a := mustAddr(gws[1].String())
		a.Flags = 0x02 // IFA_F_NODAD
		must(t, h.ns.NL.AddrReplace(br, a))
	}
	h.net = Network{ID: labNetID, VNI: labVNI, Bridge: labBridge, Pools: pools}
	if opts.tunnels {
		for _, p := range pools {
			a, err := h.ipam.TunnelAddress(context.Background(), p)
			must(t, err)
			h.net.Tunnels = append(h.net.Tunnels, a)
		}
	}
	return h
}

// sysctl writes a sysctl inside the host's namespace.
func (h *labHost) sysctl(key, value string) error {
	return h.ns.Do(func() error {
		return os.WriteFile("/proc/sys/"+key, []byte(value), 0o644)
	})
}

// start registers the host, keeps its alive key and runs a fresh Overlay.
func (h *labHost) start() {
	t := h.lab.t
	ov, err := New(Config{Host: h.name, Store: h.st, Kernel: h.k, Logger: storetest.Logger(t).With("self", h.name),
		Underlay: h.underlay, Resync: 3 * time.Second, Sysctl: h.sysctl, InNetNS: h.ns.Do})
	must(t, err)
	must(t, ov.RegisterHost(context.Background()))
	if _, err := ov.EnsureNetwork(h.net); err != nil {
		t.Fatal(err)
	}
	if h.stopLive == nil {
		h.setAlive(true)
	}
	h.ov = ov
	h.stopRun = goRun(t, ov.Run)
}

// stop ends the host's Overlay and waits for Run to return.
func (h *labHost) stop() {
	if h.stopRun != nil {
		h.stopRun()
		h.stopRun = nil
	}
}

// setAlive starts or stops the host's liveness key (stopping revokes the
// lease: the host is gone at once, where a crash or a podnetd stopping
// would let it expire).
func (h *labHost) setAlive(alive bool) {
	if !alive {
		if h.stopLive != nil {
			h.stopLive()
			h.stopLive = nil
		}
		return
	}
	if h.stopLive == nil {
		st := h.st
		id, err := hostid.Claim(context.Background(), hostid.Config{Store: st, Host: h.name, TTL: 5 * time.Second,
			Alive: h.aliveRecord(), Logger: storetest.Logger(h.lab.t)})
		if err != nil {
			h.lab.t.Fatalf("%s: claim host name: %v", h.name, err)
		}
		stop := goRun(h.lab.t, func(ctx context.Context) { _ = id.Hold(ctx) })
		h.stopLive = func() { stop(); id.Release(context.Background()) }
	}
}

// aliveRecord is the host's liveness record: a current podnetd's, or with
// oldLayout one from before exception records.
func (h *labHost) aliveRecord() store.HostAlive {
	a := store.HostAlive{Name: h.name, Started: time.Now(), IPAMLayout: store.IPAMLayoutExceptions}
	if h.oldLayout {
		a.IPAMLayout = 0
	}
	return a
}

// goRun runs f until the returned stop is called (or the test ends) and
// waits for it to return.
func goRun(t *testing.T, f func(context.Context)) func() {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); f(ctx) }()
	var once sync.Once
	stop := func() { once.Do(func() { cancel(); <-done }) }
	t.Cleanup(stop)
	return stop
}

// container attaches a new namespace to the host's bridge with an address
// from the real IPAM (want "" = next free in the host's blocks, else that
// address, as docker run --ip).
func (h *labHost) container(want string) *labContainer {
	return h.containerIn(h.lab.pool, want)
}

func (h *labHost) containerIn(pool netip.Prefix, want string) *labContainer {
	t := h.lab.t
	resp, err := h.ipam.RequestAddress(context.Background(), &dipam.RequestAddressRequest{PoolID: pool.String(), Address: want})
	must(t, err)
	addr := netip.MustParsePrefix(resp.Address)
	c := &labContainer{ns: testutil.NewNetNS(t), addr: addr.Addr(), host: h}
	br, err := h.ns.NL.LinkByName(labBridge)
	must(t, err)
	h.nveth++
	name := fmt.Sprintf("pnh%d", h.nveth)
	must(t, h.ns.NL.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: name, MasterIndex: br.Attrs().Index, MTU: 1450},
		PeerName: "eth0", PeerMTU: 1450, PeerNamespace: netlink.NsFd(int(c.ns.Handle))}))
	hv, err := h.ns.NL.LinkByName(name)
	must(t, err)
	must(t, h.ns.NL.LinkSetUp(hv))
	eth0, err := c.ns.NL.LinkByName("eth0")
	must(t, err)
	a := mustAddr(addr.String())
	if addr.Addr().Is6() {
		a.Flags = 0x02 // IFA_F_NODAD
	}
	must(t, c.ns.NL.AddrAdd(eth0, a))
	must(t, c.ns.NL.LinkSetUp(eth0))
	gw := h.lab.gateway(pool)
	must(t, c.ns.NL.RouteAdd(&netlink.Route{LinkIndex: eth0.Attrs().Index, Gw: gw.AsSlice()}))
	// A new veth drops what it is given until the kernel's link watcher
	// has seen its carrier (up to 1 s later): wait for that, as a real
	// container's process is not running that early either.
	testutil.Eventually(t, 3*time.Second, name+" carrier", func() error {
		for _, l := range []struct {
			nl   *netlink.Handle
			name string
		}{{h.ns.NL, name}, {c.ns.NL, "eth0"}} {
			if x, err := l.nl.LinkByName(l.name); err != nil || x.Attrs().OperState != netlink.OperUp {
				return fmt.Errorf("%s not operationally up (%v)", l.name, err)
			}
		}
		return nil
	})
	return c
}

// gateway is the pool's anycast gateway as IPAM recorded it.
func (l *lab) gateway(pool netip.Prefix) netip.Addr {
	var rec store.Pool
	_, err := l.raw.Get(context.Background(), store.PoolKey(pool), &rec)
	must(l.t, err)
	if !rec.Gateway.IsValid() {
		l.t.Fatalf("pool %s has no gateway", pool)
	}
	return rec.Gateway
}

// blocksOf returns the blocks of the pool claimed by each host, from etcd.
func (l *lab) blocksOf(pool netip.Prefix) map[string][]netip.Prefix {
	kvs, _, err := l.raw.List(context.Background(), store.BlocksPrefix(pool))
	must(l.t, err)
	out := map[string][]netip.Prefix{}
	for _, kv := range kvs {
		var b store.Block
		must(l.t, kv.Decode(&b))
		p, err := store.ParsePoolName(strings.TrimPrefix(kv.Key, store.BlocksPrefix(pool)))
		must(l.t, err)
		out[b.Host] = append(out[b.Host], p)
	}
	return out
}

// routes lists the host's podnet routes as "dst via gw dev name [onlink]".
func (h *labHost) routes() []string {
	rs, err := nlKernel{h: h.ns.NL}.listRoutes()
	must(h.lab.t, err)
	var out []string
	for _, r := range rs {
		s := r.Dst.String()
		if r.Gw != nil {
			s += " via " + r.Gw.String()
		}
		l, err := h.ns.NL.LinkByIndex(r.LinkIndex)
		if err == nil {
			s += " dev " + l.Attrs().Name
		}
		if r.Flags&int(netlink.FLAG_ONLINK) != 0 {
			s += " onlink"
		}
		if r.Src != nil {
			s += " src " + r.Src.String()
		}
		out = append(out, s)
	}
	sort.Strings(out)
	return out
}

// vxlanState lists the permanent neighbors and FDB entries of the host's
// VXLAN device as "neigh IP MAC" and "fdb MAC DST".
func (h *labHost) vxlanState() []string {
	l, err := h.ns.NL.LinkByName(DeviceName(labVNI))
	if err != nil {
		return nil
	}
	nk := nlKernel{h: h.ns.NL}
	ns, err := nk.listNeigh(l.Attrs().Index)
	must(h.lab.t, err)
	fdb, err := nk.listFDB(l.Attrs().Index)
	must(h.lab.t, err)
	var out []string
	for _, n := range ns {
		out = append(out, "neigh "+n.IP.String()+" "+n.HardwareAddr.String())
	}
	for _, e := range fdb {
		out = append(out, "fdb "+e.mac+" "+e.dst.String())
	}
	sort.Strings(out)
	return out
}

// ping sends one ICMP echo from the container's namespace and waits up to
// 500 ms for the reply.
func (c *labContainer) ping(dst netip.Addr) error {
	network, laddr, proto := "ip4:icmp", "0.0.0.0", 1
	var typ icmp.Type = ipv4.ICMPTypeEcho
	if dst.Is6() {
		network, laddr, proto, typ = "ip6:ipv6-icmp", "::", 58, ipv6.ICMPTypeEchoRequest
	}
	var pc *icmp.PacketConn
	if err := c.ns.Do(func() (err error) { pc, err = icmp.ListenPacket(network, laddr); return err }); err != nil {
		return err
	}
	defer pc.Close()
	id := int(time.Now().UnixNano() & 0xffff)
	msg, _ := (&icmp.Message{Type: typ, Body: &icmp.Echo{ID: id, Seq: 1, Data: []byte("podnet")}}).Marshal(nil)
	if _, err := pc.WriteTo(msg, &net.IPAddr{IP: dst.AsSlice()}); err != nil {
		return fmt.Errorf("ping %s from %s: %w", dst, c.addr, err)
	}
	_ = pc.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
	buf := make([]byte, 1500)
	for {
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			return fmt.Errorf("ping %s from %s: %w", dst, c.addr, err)
		}
		m, err := icmp.ParseMessage(proto, buf[:n])
		if err != nil {
			continue
		}
		if e, ok := m.Body.(*icmp.Echo); ok && e.ID == id && (m.Type == ipv4.ICMPTypeEchoReply || m.Type == ipv6.ICMPTypeEchoReply) &&
			from.String() == dst.String() {
			return nil
		}
	}
}

// listen opens a TCP listener inside the container.
func (c *labContainer) listen(t *testing.T) net.Listener {
	var ln net.Listener
	must(t, c.ns.Do(func() (err error) {
		ln, err = net.Listen("tcp", netip.AddrPortFrom(c.addr, 0).String())
		return err
	}))
	t.Cleanup(func() { ln.Close() })
	return ln
}

// dial connects from inside the container.
func (c *labContainer) dial(to net.Addr) (net.Conn, error) {
	var conn net.Conn
	err := c.ns.Do(func() (err error) {
		conn, err = net.DialTimeout("tcp", to.String(), time.Second)
		return err
	})
	return conn, err
}

func mustAddr(s string) *netlink.Addr {
	a, err := netlink.ParseAddr(s)
	if err != nil {
		panic(err)
	}
	return a
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func diffLines(got, want []string) error {
	sort.Strings(want)
	if strings.Join(got, "\n") == strings.Join(want, "\n") {
		return nil
	}
	return errors.New("\n got: " + strings.Join(got, "\n      ") + "\nwant: " + strings.Join(want, "\n      "))
}
