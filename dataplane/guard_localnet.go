package dataplane

import (
	"net/netip"

	"github.com/google/nftables/expr"
)

// The localnet rule (in guard_pre) guards the host's loopback addresses
// from containers.
//
// The driver sets route_localnet on podnet bridges so that the host's
// connections to 127.0.0.1:port can be DNATed into a network. The same
// setting makes the kernel accept packets that arrive *on* a bridge
// addressed to 127.0.0.0/8 and deliver them to whatever listens on the
// host's loopback: podnetd's metrics, an embedded etcd, a local database
// (kube-proxy's CVE-2020-8558). A container needs only to route 127.0.0.1
// via its gateway (NET_ADMIN), or to write the frames itself (NET_RAW,
// which Docker grants by default). The rule drops such packets before
// dstnat and before any connection of theirs is confirmed. Replies to the
// host's own connections to published ports are not affected: they
// arrive addressed to the bridge's address (the host's side was
// masqueraded) and are translated back to 127.0.0.1 only later, at
// dstnat; and they are established, which leaves guard_pre first.

var loopback4 = netip.MustParsePrefix("127.0.0.0/8")

// guardLocalnet adds the rule to guard_pre.
func guardLocalnet(rs *ruleset, bridgePrefix string) {
	rs.rules = append(rs.rules, newRule(chainGuardPre, "containers to host loopback",
		iif(bridgePrefix+"*"), addrIn(daddr, loopback4), verdict(expr.VerdictDrop)))
}
