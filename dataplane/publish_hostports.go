package dataplane

import (
	"errors"
	"fmt"
	"net/netip"
	"os"

	"golang.org/x/sys/unix"
)

// The kernel's default ephemeral range, used when it cannot be read.
const (
	defaultEphemeralLo = 32768
	defaultEphemeralHi = 60999
)

// kernelEphemeralRange is `sysctl net.ipv4.ip_local_port_range` (per
// network namespace: it is read in the calling thread's).
func kernelEphemeralRange() ([2]uint16, error) {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return [2]uint16{}, fmt.Errorf("read ip_local_port_range: %w", err)
	}
	var lo, hi uint16
	if _, err := fmt.Sscan(string(b), &lo, &hi); err != nil || lo == 0 || hi < lo {
		return [2]uint16{}, fmt.Errorf("parse ip_local_port_range %q: %v", b, err)
	}
	return [2]uint16{lo, hi}, nil
}

// bindProbe is the default Options.PortInUse: it binds a socket of the
// protocol to hostIP:port and reports whether the kernel refuses with
// EADDRINUSE (what `ss -ltnu sport = :port` would show, minus the races). A wildcard probe (0.0.0.0) fails when any address holds the
// port, which is right: our DNAT would shadow that listener too. Other
// errors (EADDRNOTAVAIL for a host IP that is not local, no SCTP support)
// read as "not in use": the DNAT rule is still correct, it just never
// matches a non-local address.
func bindProbe(p Proto, hostIP netip.Addr, port uint16) bool {
	domain := unix.AF_INET
	if hostIP.Is6() {
		domain = unix.AF_INET6
	}
	typ, proto := unix.SOCK_STREAM, unix.IPPROTO_TCP
	switch p {
	case UDP:
		typ, proto = unix.SOCK_DGRAM, unix.IPPROTO_UDP
	case SCTP:
		proto = unix.IPPROTO_SCTP
	}
	fd, err := unix.Socket(domain, typ|unix.SOCK_CLOEXEC, proto)
	if err != nil {
		return false
	}
	defer unix.Close(fd)
	if typ == unix.SOCK_STREAM {
		// Ignore TIME_WAIT leftovers: only a live socket holds a port.
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1)
	}
	var sa unix.Sockaddr
	if domain == unix.AF_INET {
		sa = &unix.SockaddrInet4{Port: int(port), Addr: hostIP.As4()}
	} else {
		// Test the IPv6 side only; a dual-stack listener still collides.
		_ = unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, 1)
		sa = &unix.SockaddrInet6{Port: int(port), Addr: hostIP.As16()}
	}
	return errors.Is(unix.Bind(fd, sa), unix.EADDRINUSE)
}
