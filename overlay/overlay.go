package overlay

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/podnet/podnet/feed"
	"github.com/podnet/podnet/internal/link"
	"github.com/podnet/podnet/internal/nd"
	"github.com/podnet/podnet/overlay/wireguard"
	"github.com/podnet/podnet/store"
	"github.com/vishvananda/netlink"
)

// RouteProtocol marks every route podnet's overlay installs (the rtm_protocol
// field; `ip route show proto 152`). It is how the overlay finds its own
// routes again after a restart and garbage-collects exactly those. It is an
// upgrade contract: never change it. 152 is not in iproute2's reserved list;
// `echo "152 podnet" > /etc/iproute2/rt_protos.d/podnet.conf` makes
// `ip route` print "proto podnet".
const RouteProtocol = 152

// DevicePrefix starts the name of every VXLAN device of the overlay
// (pnx<VNI>). Interface names are an upgrade contract: never change it.
const DevicePrefix = "pnx"

// DefaultPort is the IANA VXLAN UDP port.
const DefaultPort = 4789

// vxlanOverhead is what VXLAN over IPv4 adds to a frame: outer IPv4 (20),
// UDP (8), VXLAN (8) and the inner Ethernet header (14).
const vxlanOverhead = 50

// Config wires an Overlay.
type Config struct {
	// Host is this host's name, as in hosts/<host> and alive/<host>.
	Host  string
	Store *store.Store
	// Feeds are the etcd prefixes it reads, shared with the other readers
	// of this podnetd (package feed); nil: a hub of its own over Store,
	// running while Run does.
	Feeds  *feed.Hub
	Kernel *link.Kernel
	Logger *slog.Logger
	// Underlay is where this host's VXLAN packets leave (DetectUnderlay).
	Underlay Underlay
	// Port is the VXLAN UDP port (default 4789); every host must agree.
	Port int
	// Resync is the period of the full resync that also repairs drift and
	// collects orphaned routes (default 60 s).
	Resync time.Duration
	// Sysctl writes a sysctl (key with "/" separators) in the namespace the
	// overlay programs. Nil means Kernel.Sysctl; tests that program another
	// namespace than their own pass a writer that enters it.
	Sysctl func(key, value string) error
	// InNetNS runs f with the calling thread in the namespace the overlay
	// programs, for the sockets of the bridges' NDP responders. Nil runs f
	// as it is (podnetd programs its own namespace).
	InNetNS func(f func() error) error
	// Peers, if set, is called with the underlay addresses of every host
	// registered in etcd (hosts/, alive or not) whenever they change: the
	// addresses VXLAN may come from (the data plane's guard). With
	// WireGuard it is called with none: VXLAN is then accepted from nobody.
	Peers func([]netip.Addr)
	// WireGuard, if set, encrypts all traffic to other hosts: their blocks
	// and addresses are routed into this device (ensured by the caller
	// before New; recreated by Run if it disappears), each live host with
	// a key is a peer, and no VXLAN leaves or is accepted. See doc.go,
	// "Encryption".
	WireGuard *wireguard.Device
}

// Underlay is the host interface and address VXLAN packets use.
type Underlay struct {
	// Addr is the address other hosts send this host's VXLAN packets to.
	Addr netip.Addr
	// Prefix is Addr's subnet on Dev: hosts inside it are one hop away
	// (direct routing may use them).
	Prefix netip.Prefix
	// Dev is the interface holding Addr; MTU is its MTU.
	Dev string
	MTU int
	// Gateway is the router of the default route on Dev, in Prefix
	// (invalid if none).
	Gateway netip.Addr
}

// Network is one vxlan-mode network on this host.
type Network struct {
	// ID is the Docker network ID.
	ID string
	// VNI is the network's VXLAN identifier (1..16777215), the same on
	// every host.
	VNI int
	// Bridge is this host's bridge of the network (pn-<id[:12]>), which
	// holds the anycast gateway. Addresses of this host inside remote
	// blocks are routed to it.
	Bridge string
	// Pools are the network's IPAM pools (subnets), IPv4 and IPv6.
	Pools []netip.Prefix
	// MTU of the VXLAN device; 0 means DefaultMTU.
	MTU int
	// DirectRouting routes IPv4 blocks of hosts inside this host's underlay
	// subnet straight over the underlay (host-gw), without encapsulation.
	DirectRouting bool
	// Tunnels are this host's tunnel addresses in Pools (package ipam: at
	// most one per pool; none if IPAM could not reserve them). Each is put
	// on the device the pool's routes to other hosts leave by (pnx<VNI>,
	// or pnwg with encryption) and is those routes' source, so that this
	// host's own traffic to a remote pod leaves from an address of the
	// pod network that every host routes back here (see doc.go, "This
	// host's own traffic").
	Tunnels []netip.Addr
}

// Overlay programs this host's kernel so that other hosts' blocks of the
// vxlan networks it has are routable. It is safe for concurrent use.
type Overlay struct {
	host     string
	st       *store.Store
	feeds    *feed.Hub
	k        *link.Kernel
	log      *slog.Logger
	underlay Underlay
	port     int
	resync   time.Duration
	sysctl   func(key, value string) error
	inNetNS  func(f func() error) error
	peersFn  func([]netip.Addr)
	wg       *wireguard.Device
	// lastPeers is what peersFn was last given, if peersSent (guarded
	// by mu).
	lastPeers []netip.Addr
	peersSent bool

	// kmu serialises kernel programming: passes and device changes. It
	// guards applied, the state the last passes left in the kernel (nil:
	// unknown, the next pass reads the kernel), the model of the last full
	// computation (incremental passes continue from it) and the interface
	// indices it resolved, and the remote counts of applied.
	kmu     sync.Mutex
	applied *desired
	model   *model
	ifindex map[string]int
	remote  remoteCounts

	// responders answer neighbor solicitations on the bridges of IPv6
	// pools (ndp.go); run by Run.
	responders responders

	mu       sync.Mutex
	networks map[string]Network // by Docker network ID, MTU resolved
	view     *view              // what etcd says, as followed
	// recompute asks for a full computation of the desired state (the
	// registered networks changed); incremental passes wait for it.
	recompute bool
	running   bool
	wake      chan struct{}
	stats     Stats
	watch     map[string]*WatchStats // by followed kind of key
}

// Stats counts the overlay's work since it was created.
type Stats struct {
	// Syncs is the number of completed full passes (the whole desired
	// state computed: at start, on the resync timer, when networks
	// change); LastSync when the last one ended and LastSyncDuration how
	// long it took.
	Syncs            int           `json:"syncs"`
	LastSync         time.Time     `json:"lastSync"`
	LastSyncDuration time.Duration `json:"lastSyncDuration"`
	// Steps is the number of incremental passes (one per batch of etcd
	// events), StepKeys the entries they recomputed in all, and
	// LastStepDuration how long the last one took.
	Steps            int           `json:"steps"`
	StepKeys         int           `json:"stepKeys"`
	LastStepDuration time.Duration `json:"lastStepDuration"`
	// Changes counts kernel changes made by passes (not by EnsureNetwork
	// or RemoveNetwork): routes, neighbors, FDB entries, WireGuard peers,
	// tunnel addresses, and proxy entries of older podnetds removed.
	Changes Changes `json:"changes"`
	// Errors counts failed kernel operations.
	Errors int `json:"errors"`
	// Watch counts what the overlay's etcd watches delivered, by kind of
	// key: hosts, alive, refs, blocks, exc, addrs.
	Watch map[string]WatchStats `json:"watch"`
	// Legacy is true while a podnetd older than exception records is
	// alive: address records are then followed too.
	Legacy bool `json:"legacy"`
	// NDP counts what the NDP responder of each IPv6 bridge did with the
	// neighbor solicitations it received, by bridge.
	NDP map[string]nd.Stats `json:"ndp,omitempty"`
}

// WatchStats counts what one kind of followed key brought: full listings
// (at start, and again after a watch had to be restarted) and changes.
// Bytes are keys plus values, as etcd sends them (without framing).
type WatchStats struct {
	Snapshots     int   `json:"snapshots"`
	SnapshotKeys  int   `json:"snapshotKeys"`
	SnapshotBytes int64 `json:"snapshotBytes"`
	Events        int   `json:"events"`
	EventBytes    int64 `json:"eventBytes"`
}

// Changes counts kernel changes by kind.
type Changes struct {
	RoutesAdded    int `json:"routesAdded"`
	RoutesReplaced int `json:"routesReplaced"`
	RoutesDeleted  int `json:"routesDeleted"`
	NeighAdded     int `json:"neighAdded"`
	NeighDeleted   int `json:"neighDeleted"`
	FDBAdded       int `json:"fdbAdded"`
	FDBDeleted     int `json:"fdbDeleted"`
	// ProxyDeleted counts proxy neighbor entries of older podnetds
	// removed (IPv6 bridges now have an NDP responder instead).
	ProxyDeleted int `json:"proxyDeleted"`
	PeersSet     int `json:"wireguardPeersSet,omitempty"`
	PeersRemoved int `json:"wireguardPeersRemoved,omitempty"`
	AddrsAdded   int `json:"addrsAdded,omitempty"`
	AddrsDeleted int `json:"addrsDeleted,omitempty"`
}

// Total is the number of changes of any kind.
func (c Changes) Total() int {
	return c.RoutesAdded + c.RoutesReplaced + c.RoutesDeleted + c.NeighAdded + c.NeighDeleted +
		c.FDBAdded + c.FDBDeleted + c.ProxyDeleted + c.PeersSet + c.PeersRemoved + c.AddrsAdded + c.AddrsDeleted
}

func (c *Changes) add(d Changes) {
	c.RoutesAdded += d.RoutesAdded
	c.RoutesReplaced += d.RoutesReplaced
	c.RoutesDeleted += d.RoutesDeleted
	c.NeighAdded += d.NeighAdded
	c.NeighDeleted += d.NeighDeleted
	c.FDBAdded += d.FDBAdded
	c.FDBDeleted += d.FDBDeleted
	c.ProxyDeleted += d.ProxyDeleted
	c.PeersSet += d.PeersSet
	c.PeersRemoved += d.PeersRemoved
	c.AddrsAdded += d.AddrsAdded
	c.AddrsDeleted += d.AddrsDeleted
}

// New validates cfg and returns an Overlay. It touches neither etcd nor
// the kernel.
func New(cfg Config) (*Overlay, error) {
	switch {
	case cfg.Host == "":
		return nil, errors.New("overlay: no host name given")
	case cfg.Store == nil:
		return nil, errors.New("overlay: no store given")
	case cfg.Kernel == nil || cfg.Kernel.NL == nil:
		return nil, errors.New("overlay: no netlink handle given")
	case !cfg.Underlay.Addr.Is4():
		return nil, fmt.Errorf("overlay: underlay address %q is not IPv4 (use DetectUnderlay)", cfg.Underlay.Addr)
	case cfg.Underlay.Dev == "":
		return nil, errors.New("overlay: underlay has no interface (use DetectUnderlay)")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Port == 0 {
		cfg.Port = DefaultPort
	}
	if cfg.Port < 1 || cfg.Port > 65535 {
		return nil, fmt.Errorf("overlay: VXLAN port %d out of range", cfg.Port)
	}
	if cfg.Resync <= 0 {
		cfg.Resync = 60 * time.Second
	}
	if !cfg.Underlay.Prefix.IsValid() {
		cfg.Underlay.Prefix = netip.PrefixFrom(cfg.Underlay.Addr, 32)
	}
	o := &Overlay{
		host: cfg.Host, st: cfg.Store, feeds: cfg.Feeds, k: cfg.Kernel, log: cfg.Logger,
		underlay: cfg.Underlay, port: cfg.Port, resync: cfg.Resync, sysctl: cfg.Sysctl, inNetNS: cfg.InNetNS, peersFn: cfg.Peers, wg: cfg.WireGuard,
		networks: map[string]Network{},
		view:     newView(),
		watch:    map[string]*WatchStats{},
		wake:     make(chan struct{}, 1),
	}
	if o.sysctl == nil {
		o.sysctl = cfg.Kernel.Sysctl
	}
	if o.inNetNS == nil {
		o.inNetNS = func(f func() error) error { return f() }
	}
	return o, nil
}

// DefaultMTU is the MTU of a new network: the underlay MTU minus 50
// (VXLAN over IPv4), or minus 60 with encryption (WireGuard over IPv4).
func (o *Overlay) DefaultMTU() int {
	if o.wg != nil {
		return o.underlayMTU() - wireguard.Overhead
	}
	return o.MaxMTU()
}

// MaxMTU is the largest MTU a network may have: the underlay MTU minus
// 50, what fits VXLAN. With encryption a network above DefaultMTU (made
// before encryption was turned on) still works: packets larger than the
// WireGuard device's MTU are answered with "fragmentation needed" and
// path MTU discovery shrinks them.
func (o *Overlay) MaxMTU() int { return o.underlayMTU() - vxlanOverhead }

func (o *Overlay) underlayMTU() int {
	if o.underlay.MTU <= 0 {
		return 1500
	}
	return o.underlay.MTU
}

// Encrypted reports whether traffic to other hosts goes through WireGuard.
func (o *Overlay) Encrypted() bool { return o.wg != nil }

// Stats returns the overlay's counters.
func (o *Overlay) Stats() Stats {
	o.mu.Lock()
	s := o.stats
	s.Watch = make(map[string]WatchStats, len(o.watch))
	for k, w := range o.watch {
		s.Watch[k] = *w
	}
	s.Legacy = o.view.legacy()
	o.mu.Unlock()
	s.NDP = o.ResponderStats() // takes the responders' lock, never held with mu
	return s
}

// DeviceName is the name of the VXLAN device of a VNI on every host.
func DeviceName(vni int) string { return fmt.Sprintf("%s%d", DevicePrefix, vni) }

// VTEPMAC is the MAC of host's VXLAN device for vni: 02:71 followed by four
// bytes of sha256(host, vni). Every host computes every other host's MAC,
// so the MAC is never stored or looked up.
func VTEPMAC(host string, vni int) net.HardwareAddr {
	h := sha256.New()
	h.Write([]byte("podnet-vtep\x00"))
	h.Write([]byte(host))
	var v [5]byte
	binary.BigEndian.PutUint32(v[1:], uint32(vni))
	h.Write(v[:])
	s := h.Sum(nil)
	return net.HardwareAddr{0x02, 0x71, s[0], s[1], s[2], s[3]}
}

// RegisterHost writes hosts/<host> with this host's underlay address. The
// record is persistent (no lease); Since is kept when the record exists.
// Nothing is written when the record is already up to date. VTEP MACs are
// not stored: every host derives them with VTEPMAC.
func (o *Overlay) RegisterHost(ctx context.Context) error {
	key := store.HostKey(o.host)
	var cur store.Host
	rev, err := o.st.Get(ctx, key, &cur)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("read host record of %s: %w", o.host, err)
	}
	want := o.HostRecord()
	want.Since = cur.Since
	if rev != 0 && cur.Same(want) && !cur.Since.IsZero() {
		return nil
	}
	if want.Since.IsZero() {
		want.Since = time.Now().UTC()
	}
	if rev == 0 {
		_, err = o.st.Create(ctx, key, want)
	} else {
		err = o.st.Update(ctx, key, rev, want)
	}
	if err != nil {
		return fmt.Errorf("write host record of %s: %w", o.host, err)
	}
	if want.WireGuard != nil {
		o.log.Info("host registered", "host", o.host, "underlay", want.Underlay, "wireguardPort", want.WireGuard.Port,
			"fingerprint", wireguard.Fingerprint(o.wg.PublicKey()))
	} else {
		o.log.Info("host registered", "host", o.host, "underlay", want.Underlay)
	}
	return nil
}

// HostRecord is this host's record as RegisterHost writes it (Since
// aside): its underlay address and, with encryption, its public key and
// WireGuard port.
func (o *Overlay) HostRecord() store.Host {
	h := store.Host{Name: o.host, Underlay: o.underlay.Addr, Network: o.underlay.Prefix.Masked(), Gateway: o.underlay.Gateway}
	if o.wg != nil {
		h.WireGuard = &store.HostWireGuard{PublicKey: o.wg.PublicKey().String(), Port: o.wg.Port()}
	}
	return h
}

// kick asks Run for a sync; it never blocks.
func (o *Overlay) kick() {
	select {
	case o.wake <- struct{}{}:
	default:
	}
}

// Cleanup deletes every VXLAN device of the overlay (pnx*) and every route
// it installed (proto 152) in k's namespace, for `podnetd cleanup`. It
// returns the names of the devices removed.
func Cleanup(k *link.Kernel) ([]string, error) {
	removed, err := k.DeleteLinksWhere(func(l netlink.Link) bool {
		return strings.HasPrefix(l.Attrs().Name, DevicePrefix) && l.Type() == "vxlan"
	})
	var errs []error
	if err != nil {
		errs = append(errs, err)
	}
	nk := nlKernel{h: k.NL}
	routes, err := nk.listRoutes()
	if err != nil {
		return removed, errors.Join(append(errs, err)...)
	}
	for i := range routes {
		if err := nk.delRoute(&routes[i]); err != nil {
			errs = append(errs, err)
		}
	}
	return removed, errors.Join(errs...)
}
