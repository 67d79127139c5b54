package lbannounce

import (
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mdlayher/arp"
	"github.com/mdlayher/ndp"
	"github.com/podnet/podnet/internal/metrics"
	"github.com/podnet/podnet/internal/nd"
	"golang.org/x/net/ipv6"
)

// Responder answers ARP requests (IPv4) and neighbor solicitations (IPv6)
// for the addresses it is given, each on its interface, with that
// interface's MAC, from user space (raw sockets): the addresses are never
// put on an interface. Set announces each address it adds (gratuitous
// ARP, unsolicited neighbor advertisement), so that the LAN's caches move
// to this host at once on a takeover.
type Responder struct {
	log *slog.Logger
	// Repeat is how often, after the first, an added address is announced
	// again, one second apart (a lost frame must not leave a cache stale).
	Repeat int

	mu     sync.Mutex
	ifaces map[string]*ifaceResponder
	closed bool
}

// NewResponder returns a Responder answering for nothing yet.
func NewResponder(log *slog.Logger) *Responder {
	if log == nil {
		log = slog.Default()
	}
	return &Responder{log: log, Repeat: 2, ifaces: map[string]*ifaceResponder{}}
}

// Set makes the responder answer for exactly addrs (address → interface
// name). Addresses new to an interface are announced. Sockets are opened
// in the network namespace of the calling thread. An interface that
// cannot be used is reported (joined errors) and its addresses skipped;
// the others are set.
func (r *Responder) Set(addrs map[netip.Addr]string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return errors.New("responder closed")
	}
	byIface := map[string]map[netip.Addr]bool{}
	for a, ifname := range addrs {
		if byIface[ifname] == nil {
			byIface[ifname] = map[netip.Addr]bool{}
		}
		byIface[ifname][a] = true
	}
	var errs []error
	for name, ir := range r.ifaces {
		if byIface[name] == nil {
			ir.close()
			delete(r.ifaces, name)
		}
	}
	for name, set := range byIface {
		ir := r.ifaces[name]
		if ir == nil || ir.stale() {
			if ir != nil {
				ir.close()
			}
			var err error
			if ir, err = openIface(name, r.log); err != nil {
				errs = append(errs, err)
				delete(r.ifaces, name)
				continue
			}
			r.ifaces[name] = ir
		}
		if err := ir.set(set, r.Repeat); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Answering returns the addresses answered for now, by interface.
func (r *Responder) Answering() map[netip.Addr]string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[netip.Addr]string{}
	for name, ir := range r.ifaces {
		for a := range *ir.addrs.Load() {
			out[a] = name
		}
	}
	return out
}

// Close stops answering for everything and closes the sockets.
func (r *Responder) Close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for name, ir := range r.ifaces {
		ir.close()
		delete(r.ifaces, name)
	}
	r.closed = true
}

// ifaceResponder answers on one interface.
type ifaceResponder struct {
	ifi   *net.Interface
	log   *slog.Logger
	arp   *arp.Client // nil without an IPv4 address on the interface
	nd    *ndp.Conn   // nil without IPv6 (link-local) on the interface
	addrs atomic.Pointer[map[netip.Addr]bool]
	// joined are the solicited-node groups joined for the IPv6 addresses.
	joined map[netip.Addr]bool
	done   chan struct{}
	wg     sync.WaitGroup
}

func openIface(name string, log *slog.Logger) (*ifaceResponder, error) {
	ifi, err := net.InterfaceByName(name)
	if err != nil {
		return nil, fmt.Errorf("answer ARP/NDP on %s: %w", name, err)
	}
	if len(ifi.HardwareAddr) != 6 {
		return nil, fmt.Errorf("answer ARP/NDP on %s: not an Ethernet interface (hardware address %q)", name, ifi.HardwareAddr)
	}
	ir := &ifaceResponder{ifi: ifi, log: log.With("iface", name), joined: map[netip.Addr]bool{}, done: make(chan struct{})}
	ir.addrs.Store(&map[netip.Addr]bool{})
	return ir, nil
}

// stale reports whether the interface was recreated (new index) since
// the sockets were opened.
func (ir *ifaceResponder) stale() bool {
	ifi, err := net.InterfaceByName(ir.ifi.Name)
	return err != nil || ifi.Index != ir.ifi.Index || ifi.HardwareAddr.String() != ir.ifi.HardwareAddr.String()
}

// set answers for exactly set on this interface and announces the
// addresses it did not answer for yet.
func (ir *ifaceResponder) set(set map[netip.Addr]bool, repeat int) error {
	old := *ir.addrs.Load()
	var added []netip.Addr
	for a := range set {
		if !old[a] {
			added = append(added, a)
		}
	}
	var errs []error
	if slices.ContainsFunc(added, netip.Addr.Is4) && ir.arp == nil {
		c, err := arp.Dial(ir.ifi)
		if err != nil {
			errs = append(errs, fmt.Errorf("ARP socket on %s: %w", ir.ifi.Name, err))
		} else {
			ir.arp = c
			ir.wg.Go(ir.serveARP)
		}
	}
	if slices.ContainsFunc(added, netip.Addr.Is6) && ir.nd == nil {
		c, _, err := ndp.Listen(ir.ifi, ndp.LinkLocal)
		if err != nil {
			errs = append(errs, fmt.Errorf("NDP socket on %s (is IPv6 on?): %w", ir.ifi.Name, err))
		} else {
			var f ipv6.ICMPFilter
			f.SetAll(true)
			f.Accept(ipv6.ICMPTypeNeighborSolicitation)
			_ = c.SetICMPFilter(&f)
			ir.nd = c
			ir.wg.Go(ir.serveNDP)
		}
	}
	if ir.nd != nil {
		for a := range set {
			if a.Is6() && !ir.joined[a] {
				if g, err := ndp.SolicitedNodeMulticast(a); err == nil {
					if err := ir.nd.JoinGroup(g); err != nil {
						errs = append(errs, fmt.Errorf("join %s's solicited-node group on %s: %w", a, ir.ifi.Name, err))
						continue
					}
					ir.joined[a] = true
				}
			}
		}
		for a := range ir.joined {
			if !set[a] {
				if g, err := ndp.SolicitedNodeMulticast(a); err == nil {
					_ = ir.nd.LeaveGroup(g)
				}
				delete(ir.joined, a)
			}
		}
	}
	next := maps.Clone(set)
	ir.addrs.Store(&next)
	for _, a := range added {
		ir.log.Info("answering ARP/NDP", "addr", a)
		ir.announce(a)
	}
	for a := range old {
		if !set[a] {
			ir.log.Info("no longer answering ARP/NDP", "addr", a)
		}
	}
	if len(added) > 0 && repeat > 0 {
		ir.wg.Go(func() { ir.reannounce(added, repeat) })
	}
	return errors.Join(errs...)
}

// reannounce announces the addresses still answered for again, a second
// apart.
func (ir *ifaceResponder) reannounce(addrs []netip.Addr, times int) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for range times {
		select {
		case <-ir.done:
			return
		case <-t.C:
		}
		cur := *ir.addrs.Load()
		for _, a := range addrs {
			if cur[a] {
				ir.announce(a)
			}
		}
	}
}

// announce sends a gratuitous ARP reply (IPv4: sender and target the
// address, to broadcast), which every Linux neighbor cache with an entry
// for the address takes, or an unsolicited neighbor advertisement with
// the override flag to all nodes (IPv6).
func (ir *ifaceResponder) announce(a netip.Addr) {
	var err error
	switch {
	case a.Is4() && ir.arp != nil:
		var p *arp.Packet
		if p, err = arp.NewPacket(arp.OperationReply, ir.ifi.HardwareAddr, a, broadcastMAC, a); err == nil {
			err = ir.arp.WriteTo(p, broadcastMAC)
		}
	case a.Is6() && ir.nd != nil:
		err = ir.nd.WriteTo(nd.Advert(a, ir.ifi.HardwareAddr, false, true), nil, netip.IPv6LinkLocalAllNodes())
	default:
		return
	}
	if err != nil {
		ir.log.Warn("announcing an address failed", "addr", a, "err", err)
		return
	}
	metrics.LBAnnouncements.Inc()
}

var broadcastMAC = net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}

// serveARP answers requests for the addresses of the set until the
// socket closes.
func (ir *ifaceResponder) serveARP() {
	for {
		p, _, err := ir.arp.Read()
		if err != nil {
			select {
			case <-ir.done:
				return
			default:
			}
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue // a malformed frame
		}
		if p.Operation != arp.OperationRequest || !(*ir.addrs.Load())[p.TargetIP] ||
			p.SenderHardwareAddr.String() == ir.ifi.HardwareAddr.String() {
			continue
		}
		if err := ir.arp.Reply(p, ir.ifi.HardwareAddr, p.TargetIP); err != nil {
			ir.log.Debug("ARP reply failed", "addr", p.TargetIP, "to", p.SenderIP, "err", err)
			continue
		}
		metrics.LBReplies.WithLabelValues("arp").Inc()
	}
}

// serveNDP answers neighbor solicitations for the addresses of the set
// until the socket closes.
func (ir *ifaceResponder) serveNDP() {
	for {
		m, _, src, err := ir.nd.ReadFrom()
		if err != nil {
			select {
			case <-ir.done:
				return
			default:
			}
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		ns, ok := m.(*ndp.NeighborSolicitation)
		if !ok || !(*ir.addrs.Load())[ns.TargetAddress] {
			continue
		}
		na := nd.Advert(ns.TargetAddress, ir.ifi.HardwareAddr, true, true)
		dst := src
		if src.IsUnspecified() { // duplicate address detection: tell everyone
			na.Solicited = false
			dst = netip.IPv6LinkLocalAllNodes()
		}
		if err := ir.nd.WriteTo(na, nil, dst); err != nil {
			ir.log.Debug("neighbor advertisement failed", "addr", ns.TargetAddress, "to", src, "err", err)
			continue
		}
		metrics.LBReplies.WithLabelValues("ndp").Inc()
	}
}

func (ir *ifaceResponder) close() {
	close(ir.done)
	if ir.arp != nil {
		_ = ir.arp.Close()
	}
	if ir.nd != nil {
		_ = ir.nd.Close()
	}
	ir.wg.Wait()
	for a := range *ir.addrs.Load() {
		ir.log.Info("no longer answering ARP/NDP", "addr", a)
	}
}
