package wireguard

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"

	"github.com/podnet/podnet/internal/link"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"
)

// DeviceName is the name of podnet's WireGuard device on every host. It
// is an upgrade contract: never rename it.
const DeviceName = "pnwg"

// DefaultPort is the UDP port WireGuard listens on (the usual 51820).
const DefaultPort = 51820

// Overhead is what WireGuard over IPv4 adds to a packet: outer IPv4 (20),
// UDP (8), the data message header (16) and the authentication tag (16).
const Overhead = 60

// ErrNoKernelSupport means the kernel cannot create WireGuard devices.
var ErrNoKernelSupport = errors.New("this host's kernel has no WireGuard (CONFIG_WIREGUARD, module wireguard; Linux 5.6 or later): " +
	"load the module, or run every podnetd with --encryption none")

// Client is what a Device needs of wgctrl.Client (the kernel's WireGuard
// over generic netlink). A client talks to the network namespace it was
// created in.
type Client interface {
	Device(name string) (*wgtypes.Device, error)
	ConfigureDevice(name string, cfg wgtypes.Config) error
}

// Config describes this host's WireGuard device.
type Config struct {
	Kernel *link.Kernel
	Client Client
	// Key is this host's private key (LoadOrCreateKey).
	Key  Key
	Port int
	// MTU of the device: the underlay's minus Overhead.
	MTU    int
	Logger *slog.Logger
}

// Device is podnet's WireGuard device pnwg: its link, key and port, and
// its peers. It is safe for concurrent use as far as the kernel is.
type Device struct {
	cfg Config
	pub Key
	log *slog.Logger
}

// New validates cfg; it touches nothing.
func New(cfg Config) (*Device, error) {
	switch {
	case cfg.Kernel == nil || cfg.Kernel.NL == nil:
		return nil, errors.New("wireguard: no netlink handle given")
	case cfg.Client == nil:
		return nil, errors.New("wireguard: no wgctrl client given")
	case cfg.Key == Key{}:
		return nil, errors.New("wireguard: no private key given")
	}
	if cfg.Port == 0 {
		cfg.Port = DefaultPort
	}
	if cfg.Port < 1 || cfg.Port > 65535 {
		return nil, fmt.Errorf("wireguard: port %d out of range", cfg.Port)
	}
	if cfg.MTU == 0 {
		cfg.MTU = 1500 - Overhead
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Device{cfg: cfg, pub: cfg.Key.PublicKey(), log: cfg.Logger}, nil
}

// Name is the device's name (DeviceName).
func (d *Device) Name() string { return DeviceName }

// PublicKey is this host's public key.
func (d *Device) PublicKey() Key { return d.pub }

// Port is the UDP port the device listens on.
func (d *Device) Port() int { return d.cfg.Port }

// MTU is the device's MTU.
func (d *Device) MTU() int { return d.cfg.MTU }

// Ensure creates the device or checks it (ip link add pnwg type wireguard;
// wg set pnwg private-key K listen-port P; ip link set pnwg mtu M up). An
// existing device with the right key and port is left as it is, peers and
// sessions included: a restarted podnetd must not disturb the traffic it
// carries. created reports a device made now. A kernel without WireGuard
// fails with ErrNoKernelSupport.
func (d *Device) Ensure() (created bool, err error) {
	k := d.cfg.Kernel
	l, err := k.NL.LinkByName(DeviceName)
	switch {
	case link.IsNotFound(err):
		l = &netlink.Wireguard{LinkAttrs: netlink.LinkAttrs{Name: DeviceName, MTU: d.cfg.MTU}}
		if err := k.NL.LinkAdd(l); err != nil {
			if errors.Is(err, unix.EOPNOTSUPP) {
				return false, fmt.Errorf("create %s: %w (%v)", DeviceName, ErrNoKernelSupport, err)
			}
			return false, fmt.Errorf("ip link add %s type wireguard: %w", DeviceName, err)
		}
		created = true
		if l, err = k.NL.LinkByName(DeviceName); err != nil {
			return created, fmt.Errorf("look up %s: %w", DeviceName, err)
		}
	case err != nil:
		return false, fmt.Errorf("look up %s: %w", DeviceName, err)
	case l.Type() != "wireguard":
		return false, fmt.Errorf("interface %s exists but is a %s, not podnet's WireGuard device: remove it (ip link del %s)",
			DeviceName, l.Type(), DeviceName)
	}
	dev, err := d.cfg.Client.Device(DeviceName)
	if err != nil {
		return created, fmt.Errorf("wg show %s: %w", DeviceName, err)
	}
	if dev.PrivateKey != d.cfg.Key || dev.ListenPort != d.cfg.Port {
		key, port := d.cfg.Key, d.cfg.Port
		if err := d.cfg.Client.ConfigureDevice(DeviceName, wgtypes.Config{PrivateKey: &key, ListenPort: &port}); err != nil {
			return created, fmt.Errorf("wg set %s private-key … listen-port %d: %w", DeviceName, port, err)
		}
		if !created {
			d.log.Warn("WireGuard device had another key or port; set to this host's", "iface", DeviceName,
				"port", port, "fingerprint", Fingerprint(d.pub))
		}
	}
	if l.Attrs().MTU != d.cfg.MTU {
		if err := k.NL.LinkSetMTU(l, d.cfg.MTU); err != nil {
			return created, fmt.Errorf("ip link set %s mtu %d: %w", DeviceName, d.cfg.MTU, err)
		}
	}
	if l.Attrs().Flags&net.FlagUp == 0 {
		if err := k.NL.LinkSetUp(l); err != nil {
			return created, fmt.Errorf("ip link set %s up: %w", DeviceName, err)
		}
	}
	if created {
		d.log.Info("WireGuard device created", "iface", DeviceName, "port", d.cfg.Port, "mtu", d.cfg.MTU,
			"fingerprint", Fingerprint(d.pub))
	}
	return created, nil
}

// Exists reports whether the device is there and is a WireGuard device.
func (d *Device) Exists() bool {
	l, err := d.cfg.Kernel.NL.LinkByName(DeviceName)
	return err == nil && l.Type() == "wireguard"
}

// Delete removes podnet's WireGuard device from k's namespace (podnetd
// cleanup, or a host whose encryption was turned off); absence is fine.
func Delete(k *link.Kernel) error {
	l, err := k.NL.LinkByName(DeviceName)
	if link.IsNotFound(err) || err == nil && l.Type() != "wireguard" {
		return nil
	}
	return k.DeleteLink(DeviceName)
}

// Peer is one remote host as the device knows it.
type Peer struct {
	Key      Key
	Endpoint netip.AddrPort
	// AllowedIPs are the addresses the peer may send from and that are
	// sent to it (WireGuard's cryptokey routing): its blocks and the
	// addresses routed to it apart from them. Sorted.
	AllowedIPs []netip.Prefix
}

// Equal reports whether p and q configure the same peer.
func (p Peer) Equal(q Peer) bool {
	return p.Key == q.Key && p.Endpoint == q.Endpoint && slices.Equal(p.AllowedIPs, q.AllowedIPs)
}

// SortPrefixes sorts prefixes the way Peer.AllowedIPs keeps them.
func SortPrefixes(ps []netip.Prefix) {
	slices.SortFunc(ps, func(a, b netip.Prefix) int {
		if c := a.Addr().Compare(b.Addr()); c != 0 {
			return c
		}
		return a.Bits() - b.Bits()
	})
}
