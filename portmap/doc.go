// Package portmap owns every NAT and filter rule podnet programs: published
// ports (docker run -p), masquerade, isolation between networks, hairpin,
// and (later) service VIPs and NodePorts.
//
// An Engine holds the desired state in memory (networks, and the
// mappings of each endpoint) and makes the kernel match it. The driver
// calls AddNetwork/RemoveNetwork, Publish/Unpublish as Docker asks; at
// start podnetd calls Restore (state from etcd), Sync, then Run.
//
// # Design notes
//
// Table layout. Everything lives in one nftables table, `table inet
// podnet` (both families in one table, so one batch changes both):
//
//	set subnets4, subnets6          every podnet subnet on this host (interval sets)
//	map pm4_ip   ipv4_addr . inet_proto . inet_service : ipv4_addr . inet_service
//	map pm4_any  inet_proto . inet_service : ipv4_addr . inet_service
//	map pm6_ip, pm6_any             the same for IPv6
//	chain published                 dnat … map @pm4_ip, then @pm4_any (specific host IP wins), same for ip6
//	chain prerouting  (nat, dstnat) fib daddr type local jump published
//	chain output      (nat, -100)   ip6 daddr ::1 return; fib daddr type local jump published
//	chain postrouting (nat, srcnat) masquerade: 127.0.0.0/8 to a podnet bridge,
//	                                hairpin (ct status dnat, source in the bridge's
//	                                subnet, out the same bridge), and per network
//	                                its subnets to destinations not in @subnets4/6
//	chain forward  (filter, 0)      internal networks cut off; DNATed traffic
//	                                accepted; other traffic between two podnet
//	                                bridges dropped
//	set hosts4                      underlay addresses of the hosts in etcd
//	set etcd4, etcd6                etcd members' client and peer ports
//	chain guard_prerouting (filter, raw), guard_input (filter, 0),
//	      guard_forward (filter, 0) the guard, below
//	chain localnet (filter, raw)    what arrives on a podnet bridge for 127.0.0.0/8
//	                                dropped (route_localnet would deliver it to
//	                                the host's loopback services; see localnet.go)
//
// Rules are built as data (ruleset.go): each rule is a list of fragments
// that carry both their nft text and their expressions, so the text is
// what `nft list table inet podnet` prints and a kernel test checks that
// the bytecode equals what nft itself compiles from that text (register
// layout of concatenations included). Outside clients keep their source
// address: only loopback, hairpin and outbound traffic is masqueraded.
//
// Why maps. A published port is one map element, not one rule: the
// lookup is a hash, O(1) however many ports are published (measured
// on this kind of machine: linear iptables chains lose ~10 ns per rule per new connection),
// and Publish/Unpublish are one small netlink batch that adds or deletes
// elements. Batches are transactions: the kernel applies all of them or
// none, and Sync's "add table; delete table; add table; everything" batch
// swaps the whole table without a moment in which packets see no rules.
// NAT of existing connections lives in conntrack, which no batch touches,
// so established connections survive a Sync.
//
// Why the iptables accepts. dockerd sets the filter FORWARD policy to
// DROP (in iptables, on this machine the nft backend's `table ip filter`).
// A packet must pass every base chain at a hook, so an accept in our
// table cannot overrule Docker's drop. podnet therefore keeps a chain
// PODNET-FORWARD (`-i pn-+ -j ACCEPT`, `-o pn-+ -j ACCEPT`) jumped to from
// DOCKER-USER (from FORWARD when Docker is absent), in the backend that
// holds DOCKER-USER (iptables-nft or iptables-legacy), for IPv4 and IPv6.
// go-iptables runs a process per call (~10 ms), so this happens only in
// Sync, the canary and Cleanup; the isolation drops stay in nftables, where
// a drop is final whatever iptables accepts.
//
// Canary resync. `nft flush ruleset`, a firewalld reload or a dockerd
// restart can remove our table or our jump. Run checks, like kube-proxy's
// canary, that the table's prerouting chain has rules and that the
// iptables chain and jump are where auto mode would put them now (so the
// jump moves into DOCKER-USER once dockerd creates it), and calls Sync
// when not. Between checks, Publish and Unpublish heal themselves: if the
// incremental batch fails because the kernel drifted, they rebuild the
// whole table. If the rebuild fails too, memory is rolled back to match
// the kernel.
//
// Conntrack cleanup. A UDP client keeps its 5-tuple for as long as it
// talks, and its conntrack entry keeps the NAT decision of its first
// packet. Unpublish therefore deletes the entries its mappings created
// (TCP, UDP, SCTP: original destination port = host port, reply source =
// container), and Publish of a UDP/SCTP port deletes entries to that host
// port that do not lead to the new container (created while the port was
// unpublished). Otherwise a re-used host port would stick to the old
// container, or to nothing, until the entry times out. portmap uses
// netlink for this (the one netlink use outside nftables in the package)
// because it owns the NAT that created those entries, and because running
// the conntrack tool would put a process exec back on the Publish path.
//
// Hairpin and br_netfilter. dockerd loads br_netfilter, so frames bridged
// between ports of a podnet bridge traverse the IP hooks. A hairpin
// connection (container → host IP:port → container on the same bridge) is
// then bridged after DNAT rather than routed, and its postrouting hook has
// no input interface; the hairpin rule matches on source subnet and output
// bridge instead of iifname. A container reaching its own published port
// is sent back out of the bridge port it came from, which the bridge only
// does with hairpin mode on that port (the driver sets it).
//
// Host ports. Ranges get their first free port; "-p 80" gets the next free
// port of the ephemeral range, round-robin like Docker, so a released
// port is re-used as late as possible. A port is free when no other
// endpoint publishes it on an overlapping host address (a wildcard overlaps
// everything of its family) and Options.PortInUse (default: try to bind
// it) reports no other process holding it. A zero HostIP publishes IPv4
// and, if the endpoint has one, IPv6 on the same port; 0.0.0.0 and :: mean
// one family only, as in `docker run -p 0.0.0.0:80:80`. Published ports are
// reachable from containers of other networks too (ct status dnat is
// accepted before the isolation drops), as Kubernetes hostPorts are;
// internal networks reach nothing. [::1]:port is left to local listeners:
// IPv6 has no route_localnet, so a DNATed ::1 packet could not leave.
//
// The guard (guard.go). podnet's own services and its underlay trust no
// one they need not:
//
//   - VXLAN: `udp dport 4789 ip saddr != @hosts4 drop` in guard_input.
//     hosts4 holds the underlay address of every host registered in etcd
//     (hosts/, alive or not: a host coming back must not wait for a rule);
//     the overlay follows hosts/ and calls SetPeers on every change, as
//     Calico keeps its VXLAN allow-list. A datagram from anywhere else —
//     which could carry any inner source into a container — is dropped
//     before the VXLAN socket sees it.
//   - Direct routing carries pod sources over the underlay without
//     encapsulation, so it is checked by reverse path: a packet arriving
//     on anything but a podnet bridge, a VXLAN device or lo whose source
//     lies in a podnet subnet is dropped unless the route back to that
//     source leaves through the interface it came in on (`fib saddr . iif
//     oif missing drop`, strict rpf, at raw priority before conntrack).
//     Only the blocks the overlay routes directly to a known host pass;
//     this host's own ranges, unclaimed addresses and blocks reached over
//     VXLAN do not. Both checks are by source address: a machine on the
//     same L2 segment that forges a known host's address (or an address
//     inside a directly routed block) still gets through, as with any
//     allow-list of this kind; only encryption (WireGuard, IPsec, both
//     absent from this kernel) would close that.
//   - The cluster DNS answers the host itself (`fib saddr type local`),
//     podnet's subnets on this host (@subnets4/6, its containers) and
//     this host's containers on Docker's own bridges (docker0, br-*: the
//     README puts the cluster DNS in daemon.json, which all of them ask);
//     every other query is dropped. Why here and not (also) in the
//     server: a drop never answers, so a forged source cannot turn the
//     resolver into a reflector (a REFUSED is still a packet to the
//     victim); the set of podnet subnets already lives here, kept by the
//     same engine from the same driver calls, so there is one source of
//     truth; and the table outlives podnetd, so the rule holds while
//     podnetd restarts and while etcd is down — exactly when the server
//     could not know the subnets (it learns them from etcd). The cost is
//     that `nft flush ruleset` opens the DNS until the canary restores the
//     table (≤ 10 s).
//   - etcd: containers on podnet bridges cannot open connections to the
//     client or peer ports of the etcd members podnet uses (`iifname
//     "pn-*" ip daddr . tcp dport @etcd4 drop`, in guard_input for a
//     member on this host and guard_forward for the others). podnetd
//     fills etcd4/6 from its endpoints and etcd's member list.
//
// The guard never rebuilds the table before this engine's first Sync (a
// restarted podnetd must not replace the previous table, published ports
// and all, before it restored them), and a restarted podnetd seeds the
// VXLAN peers from the hosts4 set the previous one left (LoadPeers), so
// tunnels keep flowing while etcd is down. On the very first start the
// set is empty until the overlay has listed the hosts: VXLAN fails closed.
//
// Namespaces. Every kernel call acts in the network namespace of the
// calling thread (a fresh netlink socket per batch, child processes for
// iptables), which is the host's in podnetd and the lab's in tests run
// under ns.Do.
package portmap
