package lbannounce

import (
	"net"
	"net/netip"
	"sync"
	"time"
)

// HostInterfaces answers Interfaces from the host's own interfaces: an
// L2 address is answered for on the interface whose network holds it,
// else on the underlay interface, and only while that interface is up
// with a carrier (a host whose LAN link is down answers nothing, and a
// host whose link comes back first checks that its claims are still its
// own). It reads the kernel at most every cacheFor.
type HostInterfaces struct {
	// Underlay is the underlay interface's name (the fallback).
	Underlay string

	mu     sync.Mutex
	read   time.Time
	ifaces []hostIface
}

// cacheFor bounds how stale a link's state may be when read.
const cacheFor = 300 * time.Millisecond

type hostIface struct {
	name string
	up   bool
	nets []netip.Prefix
}

// For implements Interfaces.
func (h *HostInterfaces) For(a netip.Addr) string {
	h.mu.Lock()
	defer h.mu.Unlock()
	if time.Since(h.read) > cacheFor {
		// On error (a netlink dump failing), no interface: nothing is
		// answered until the next read works.
		h.ifaces, _ = readIfaces()
		h.read = time.Now()
	}
	fallback := ""
	for _, i := range h.ifaces {
		for _, n := range i.nets {
			if n.Contains(a) {
				if i.up {
					return i.name
				}
				return ""
			}
		}
		if i.name == h.Underlay && i.up {
			fallback = i.name
		}
	}
	return fallback
}

func readIfaces() ([]hostIface, error) {
	ifs, err := net.Interfaces()
	if err != nil {
		return nil, err
	}
	var out []hostIface
	for _, ifi := range ifs {
		if ifi.Flags&net.FlagLoopback != 0 || len(ifi.HardwareAddr) != 6 {
			continue
		}
		hi := hostIface{name: ifi.Name, up: ifi.Flags&net.FlagUp != 0 && ifi.Flags&net.FlagRunning != 0}
		addrs, _ := ifi.Addrs()
		for _, ad := range addrs {
			if p, err := netip.ParsePrefix(ad.String()); err == nil && !p.Addr().IsLinkLocalUnicast() {
				hi.nets = append(hi.nets, p.Masked())
			}
		}
		out = append(out, hi)
	}
	return out, nil
}
