package netpol

import (
	"net/netip"
	"strings"

	"github.com/podnet/podnet/dataplane"
	"github.com/podnet/podnet/internal/metrics"
)

const logGroup = dataplane.PolicyLogGroup

// logDenied writes one denied packet: which end was isolated, by which
// policies, and the connection's addresses and ports.
func (a *Agent) logDenied(p loggedPacket) {
	egress := strings.HasPrefix(p.prefix, dataplane.PolicyLogPrefixOut)
	dir, local := "ingress", p.dst
	if egress {
		dir, local = "egress", p.src
	}
	metrics.PolicyLogged.WithLabelValues(dir).Inc()
	container, policies := "", ""
	if m := a.Model(); m != nil {
		if t, ok := m.Target(local); ok {
			container = t.Name
			g := t.Ingress
			if egress {
				g = t.Egress
			}
			if g != nil {
				policies = strings.Join(g.Policies, ",")
			}
		}
	}
	a.log.Info("network policy denied a connection", "direction", dir, "container", container, "policies", policies,
		"proto", p.proto, "from", endpoint(p.src, p.srcPort), "to", endpoint(p.dst, p.dstPort))
}

func endpoint(a netip.Addr, port uint16) string {
	if port == 0 {
		return a.String()
	}
	return netip.AddrPortFrom(a, port).String()
}
