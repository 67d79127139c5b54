package dataplane

import (
	"context"
	"fmt"
	"net/netip"
	"slices"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// The guard: podnet's filter rules that keep strangers out of what podnet
// runs — its VXLAN port, its cluster DNS, its etcd — and pod addresses
// from being forged on the underlay. They live in podnet's table (so one
// batch, one canary and one Cleanup cover them) in three chains of their
// own: guard_pre is a base chain, guard_input and guard_forward are
// sections of the table's input and forward base chains (filter_hooks.go).
// Names of sets and chains are an upgrade contract: never rename.
const (
	setHosts4 = "hosts4" // underlay addresses of the hosts registered in etcd
	setEtcd4  = "etcd4"  // etcd members' client and peer ports: address . port
	setEtcd6  = "etcd6"

	chainGuardPre     = "guard_pre"     // filter, mangle: reverse-path check of pod sources, localnet
	chainGuardInput   = "guard_input"   // section of input: VXLAN, cluster DNS, local etcd
	chainGuardForward = "guard_forward" // section of forward: containers to remote etcd
)

// Chains of older podnetds that a sync removes: guard_prerouting (raw) and
// localnet (raw) became guard_pre, after conntrack, where established
// traffic can leave at its first rule.

// dockerBridges are the names of Docker's own bridges (the default one and
// user-defined bridge networks): their containers are this host's too.
var dockerBridges = []string{"docker0", "br-*"}

// guardState is what the guard protects; the zero value protects nothing
// but etcd (empty) and pod sources.
type guardState struct {
	// vxlanPort is the overlay's UDP port (0: no overlay on this host)
	// and devPrefix the name prefix of its devices.
	vxlanPort uint16
	devPrefix string
	// peers are the underlay addresses VXLAN is accepted from, sorted.
	peers []netip.Addr
	// dns is the cluster DNS (invalid: none).
	dns netip.AddrPort
	// etcd are the etcd endpoints containers must not reach, sorted.
	etcd []netip.AddrPort
}

func (g guardState) equal(o guardState) bool {
	return g.vxlanPort == o.vxlanPort && g.devPrefix == o.devPrefix && g.dns == o.dns &&
		slices.Equal(g.peers, o.peers) && slices.Equal(g.etcd, o.etcd)
}

// SetOverlay enables the VXLAN rule: UDP to port is accepted only from
// the peers (SetPeers; none until then, or those a previous podnetd left
// in the kernel, see LoadPeers). devPrefix names the overlay's devices,
// whose decapsulated traffic the reverse-path check leaves alone (VXLAN
// is checked by its outer source). Port 0 removes the rule.
func (e *Engine) SetOverlay(ctx context.Context, port uint16, devPrefix string) error {
	return e.updateGuard(ctx, "vxlan port", func(g *guardState) { g.vxlanPort, g.devPrefix = port, devPrefix })
}

// SetClusterDNS restricts the cluster DNS at addr to this host's own
// addresses and podnet's subnets on this host (its containers); everyone
// else's queries are dropped. An invalid addr removes the rules.
func (e *Engine) SetClusterDNS(ctx context.Context, addr netip.AddrPort) error {
	addr = netip.AddrPortFrom(addr.Addr().Unmap(), addr.Port())
	return e.updateGuard(ctx, "cluster dns", func(g *guardState) { g.dns = addr })
}

// SetEtcd replaces the etcd endpoints (client and peer ports of every
// member) that containers on podnet networks must not reach.
func (e *Engine) SetEtcd(ctx context.Context, eps []netip.AddrPort) error {
	var out []netip.AddrPort
	for _, ep := range eps {
		ep = netip.AddrPortFrom(ep.Addr().Unmap(), ep.Port())
		if ep.IsValid() && ep.Port() != 0 && !slices.Contains(out, ep) {
			out = append(out, ep)
		}
	}
	slices.SortFunc(out, netip.AddrPort.Compare)
	return e.updateGuard(ctx, "etcd endpoints", func(g *guardState) { g.etcd = out })
}

// updateGuard applies change to the guard and rebuilds the table, unless
// nothing changed or no Sync has loaded the table yet (a rebuild before
// Restore and Sync would replace a previous podnetd's table with one that
// lacks the published ports; Sync picks the guard up). On failure the
// guard is rolled back.
func (e *Engine) updateGuard(ctx context.Context, what string, change func(*guardState)) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	old := e.guard
	next := old
	next.peers, next.etcd = slices.Clone(old.peers), slices.Clone(old.etcd)
	change(&next)
	if next.equal(old) {
		return nil
	}
	e.guard = next
	if !e.tableLoaded {
		return nil
	}
	if _, err := e.syncTableLocked(false); err != nil {
		e.guard = old
		return fmt.Errorf("update %s: %w", what, err)
	}
	e.log.Debug("guard updated", "what", what)
	return nil
}

// LoadPeers seeds the VXLAN peers from the hosts4 set a previous podnetd
// left in the kernel, so that the first Sync of a restarted podnetd keeps
// accepting the tunnels it accepted before, even while etcd is down. It
// is a no-op when there is no such table.
func (e *Engine) LoadPeers() error {
	r, ok := e.nft.(setReader)
	if !ok {
		return nil
	}
	keys, err := r.setKeys(e.opts.Table, setHosts4)
	if err != nil {
		return err
	}
	var peers []netip.Addr
	for _, k := range keys {
		if a, ok := netip.AddrFromSlice(k); ok && a.Is4() {
			peers = append(peers, a)
		}
	}
	slices.SortFunc(peers, netip.Addr.Compare)
	e.mu.Lock()
	e.guard.peers = slices.Compact(peers)
	e.mu.Unlock()
	return nil
}

// guardSets are the guard's sets with their elements.
func guardSets(g guardState) []setDef {
	hosts := setDef{name: setHosts4, keyType: nftables.TypeIPAddr, typeText: "type ipv4_addr"}
	for _, a := range g.peers {
		hosts.elems = append(hosts.elems, peerElement(a))
	}
	etcd4 := setDef{name: setEtcd4, keyType: nftables.MustConcatSetType(nftables.TypeIPAddr, nftables.TypeInetService),
		typeText: "type ipv4_addr . inet_service"}
	etcd6 := setDef{name: setEtcd6, keyType: nftables.MustConcatSetType(nftables.TypeIP6Addr, nftables.TypeInetService),
		typeText: "type ipv6_addr . inet_service"}
	for _, ep := range g.etcd {
		set := &etcd4
		if ep.Addr().Is6() {
			set = &etcd6
		}
		set.elems = append(set.elems, element{set: set.name,
			key:  append(slot(ep.Addr().AsSlice()), slot(portBytes(ep.Port()))...),
			text: fmt.Sprintf("%s . %d", ep.Addr(), ep.Port())})
	}
	return []setDef{hosts, etcd4, etcd6}
}

// guardChains are the guard's chains. guard_pre is the only filter chain
// podnet has at prerouting, a base chain of its own; guard_input and
// guard_forward are regular chains that the input and forward base chains
// jump to after their `ct state established,related accept`
// (filter_hooks.go). Every guard rule is about what may start a
// connection (a forged source, a stranger reaching etcd, VXLAN or the
// DNS), whose first packet is checked, so the packets of connections past
// that leave the guard at once, which is most of the traffic every host
// carries. guard_pre therefore sits after conntrack (mangle, before
// dstnat), not at raw: a forged packet it drops never confirms a
// conntrack entry. Drops are final wherever they are; where the guard
// passes a packet it returns, so that the policy section after it still
// decides.
func guardChains() []chainDef {
	return []chainDef{
		{name: chainGuardPre, hook: nftables.ChainHookPrerouting, priority: nftables.ChainPriorityMangle,
			kind: nftables.ChainTypeFilter, header: "type filter hook prerouting priority mangle; policy accept;"},
		{name: chainGuardInput},
		{name: chainGuardForward},
	}
}

// guardRules are the guard's rules (see doc.go, "The guard").
func guardRules(g guardState, bridgePrefix string) []ruleDef {
	drop, pass := verdict(expr.VerdictDrop), verdict(expr.VerdictReturn)
	rules := []ruleDef{newRule(chainGuardPre, "", ctStateEstRel(), verdict(expr.VerdictAccept))}

	// Pod sources from anywhere but podnet's own interfaces (the underlay:
	// direct routing) must be routed back where they came from. Only a
	// host's directly routed blocks are, and the overlay routes only blocks
	// of hosts registered in etcd.
	notOurs := []frag{iifNot(bridgePrefix + "*")}
	if g.devPrefix != "" {
		notOurs = append(notOurs, iifNot(g.devPrefix+"*"))
	}
	notOurs = append(notOurs, iifNot("lo"))
	for _, f := range []struct {
		fam family
		set string
	}{{ipv4, setSubnets4}, {ipv6, setSubnets6}} {
		rules = append(rules, newRule(chainGuardPre, "pod source not routed back to its interface",
			append(slices.Clone(notOurs), addrInSet(f.fam, saddr, f.set), rpfMissing(), drop)...))
	}

	if g.vxlanPort != 0 {
		rules = append(rules, newRule(chainGuardInput, "vxlan only from podnet hosts",
			dport(unix.IPPROTO_UDP, g.vxlanPort), addrNotInSet(ipv4, saddr, setHosts4), drop))
	}
	if g.dns.IsValid() {
		f := familyOf(g.dns.Addr())
		subnets := setSubnets4
		if f == ipv6 {
			subnets = setSubnets6
		}
		to := addrIn(daddr, netip.PrefixFrom(g.dns.Addr(), g.dns.Addr().BitLen()))
		for _, proto := range []uint8{unix.IPPROTO_UDP, unix.IPPROTO_TCP} {
			port := dport(proto, g.dns.Port())
			rules = append(rules,
				newRule(chainGuardInput, "", to, port, fibSaddrLocal(), pass),
				newRule(chainGuardInput, "", to, port, addrInSet(f, saddr, subnets), pass))
			// Containers of this host on Docker's own networks too: the
			// README puts the cluster DNS in daemon.json, which every
			// container of the host then asks.
			for _, br := range dockerBridges {
				rules = append(rules, newRule(chainGuardInput, "", iif(br), to, port, pass))
			}
			rules = append(rules, newRule(chainGuardInput, "cluster dns: this host and its containers only", to, port, drop))
		}
	}
	// Containers of podnet's bridges and shims, and of Docker's own
	// bridges, wherever the host sees their traffic (macvlan/ipvlan
	// containers without host access talk to the LAN directly: the host
	// never sees them).
	for _, chain := range []string{chainGuardInput, chainGuardForward} {
		for _, in := range append([]string{bridgePrefix + "*"}, dockerBridges...) {
			rules = append(rules,
				newRule(chain, "containers never reach etcd", iif(in), addrDportInSet(ipv4, unix.IPPROTO_TCP, setEtcd4), drop),
				newRule(chain, "containers never reach etcd", iif(in), addrDportInSet(ipv6, unix.IPPROTO_TCP, setEtcd6), drop))
		}
	}
	return rules
}

// controlRules keep podnet's own control traffic out of every DNAT podnet
// programs (service VIPs, external IPs, NodePorts, published ports): etcd's
// client and peer ports of the members podnet uses, VXLAN between the
// hosts, and the cluster DNS. They lead chain, the nat prerouting or
// output chain, before its jumps; that chain is rewritten by every Sync,
// whereas a restarted podnetd keeps the previous service rules until it
// has read etcd: a bad service record (written by hand, or by an older
// podnetd) that took etcd's address and port could otherwise cut this
// host off etcd for good.
func controlRules(chain string, g guardState) []ruleDef {
	ret := verdict(expr.VerdictReturn)
	const why = "podnet's control traffic is never NATed"
	rules := []ruleDef{
		newRule(chain, why, addrDportInSet(ipv4, unix.IPPROTO_TCP, setEtcd4), ret),
		newRule(chain, why, addrDportInSet(ipv6, unix.IPPROTO_TCP, setEtcd6), ret),
	}
	if g.vxlanPort != 0 {
		rules = append(rules,
			newRule(chain, why, dport(unix.IPPROTO_UDP, g.vxlanPort), addrInSet(ipv4, daddr, setHosts4), ret),
			newRule(chain, why, dport(unix.IPPROTO_UDP, g.vxlanPort), fibDaddrLocal(), ret))
	}
	if g.dns.IsValid() {
		to := addrIn(daddr, netip.PrefixFrom(g.dns.Addr(), g.dns.Addr().BitLen()))
		for _, proto := range []uint8{unix.IPPROTO_UDP, unix.IPPROTO_TCP} {
			rules = append(rules, newRule(chain, why, to, dport(proto, g.dns.Port()), ret))
		}
	}
	return rules
}
