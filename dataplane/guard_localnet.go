package dataplane

import (
	"net/netip"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
)

// chainLocalnet guards the host's loopback addresses from containers.
// Never rename (see the other chain names).
//
// The driver sets route_localnet on podnet bridges so that the host's
// connections to 127.0.0.1:port can be DNATed into a network. The same
// setting makes the kernel accept packets that arrive *on* a bridge
// addressed to 127.0.0.0/8 and deliver them to whatever listens on the
// host's loopback: podnetd's metrics, an embedded etcd, a local database
// (kube-proxy's CVE-2020-8558). A container needs only to route 127.0.0.1
// via its gateway (NET_ADMIN), or to write the frames itself (NET_RAW,
// which Docker grants by default). The chain drops such packets before
// conntrack sees them. Replies to the host's own connections to published
// ports are not affected: they arrive addressed to the bridge's address
// (the host's side was masqueraded) and are translated back to 127.0.0.1
// only later, at dstnat.
const chainLocalnet = "localnet"

var loopback4 = netip.MustParsePrefix("127.0.0.0/8")

// guardLocalnet adds the chain and its rule to rs.
func guardLocalnet(rs *ruleset, bridgePrefix string) {
	rs.chains = append(rs.chains, chainDef{name: chainLocalnet, hook: nftables.ChainHookPrerouting,
		priority: nftables.ChainPriorityRaw, kind: nftables.ChainTypeFilter,
		header: "type filter hook prerouting priority raw; policy accept;"})
	rs.rules = append(rs.rules, newRule(chainLocalnet, "containers to host loopback",
		iif(bridgePrefix+"*"), addrIn(daddr, loopback4), verdict(expr.VerdictDrop)))
}
