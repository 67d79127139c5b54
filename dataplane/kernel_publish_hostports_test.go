package dataplane

import (
	"net"
	"net/netip"
	"testing"
)

// TestKernelBindProbe: the default PortInUse sees listeners of other
// processes, per protocol and address, in the caller's namespace.
func TestKernelBindProbe(t *testing.T) {
	t.Parallel()
	l := newLab(t)
	any4, any6 := netip.IPv4Unspecified(), netip.IPv6Unspecified()
	b := netip.MustParseAddr(hostIP4b)
	l.do(func() error {
		tl, err := net.Listen("tcp4", hostIP4+":7777")
		if err != nil {
			return err
		}
		defer tl.Close()
		ul, err := net.ListenPacket("udp", "[::]:7778") // dual-stack
		if err != nil {
			return err
		}
		defer ul.Close()
		for _, c := range []struct {
			p    Proto
			ip   netip.Addr
			port uint16
			want bool
		}{
			{TCP, any4, 7777, true}, // a wildcard DNAT would shadow 10.200.9.1:7777
			{TCP, netip.MustParseAddr(hostIP4), 7777, true},
			{TCP, b, 7777, false},    // another address is free
			{UDP, any4, 7777, false}, // another protocol is free
			{UDP, any6, 7778, true},
			{UDP, any4, 7778, true}, // the dual-stack socket holds IPv4 too
			{TCP, any6, 7778, false},
			{TCP, netip.MustParseAddr("192.0.2.99"), 7777, false}, // not local
		} {
			if got := bindProbe(c.p, c.ip, c.port); got != c.want {
				t.Errorf("bindProbe(%s, %s, %d) = %v, want %v", c.p, c.ip, c.port, got, c.want)
			}
		}
		return nil
	})
}

func TestKernelEphemeralRangeIsPerNamespace(t *testing.T) {
	t.Parallel()
	l := newLab(t)
	l.sysctl(l.host, "net/ipv4/ip_local_port_range", "41000 41009")
	var ms []Mapping
	l.do(func() (err error) {
		ms, err = l.eng.Publish(l.ctx, "ep1", "net1", netip.MustParseAddr("10.200.1.2"), netip.Addr{}, []Binding{{Proto: TCP, ContainerPort: 80}})
		return err
	})
	if len(ms) != 1 || ms[0].HostPort < 41000 || ms[0].HostPort > 41009 {
		t.Fatalf("ephemeral mapping %+v, want a port in the namespace's 41000-41009", ms)
	}
}
