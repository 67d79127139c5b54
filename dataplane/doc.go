// Package dataplane owns every NAT and filter rule podnet programs: published
// ports (docker run -p), masquerade, isolation between networks, hairpin,
// and services (cluster VIPs, external IPs and NodePorts, load-balanced in
// the kernel).
//
// An Engine holds the desired state in memory (networks, the mappings of
// each endpoint, services) and makes the kernel match it. The driver
// calls AddNetwork/RemoveNetwork, Publish/Unpublish as Docker asks; at
// start podnetd calls Restore (state from etcd), Sync, then Run. The
// service proxy hands over change sets (change.go): Apply(Change) with a
// Replace once it has a complete view of etcd (and on its resync timer),
// then one Apply per round of changes, whatever their number; the Result
// says, per service, why one is not programmed. The policy agent (package
// netpol) calls SetPolicy with this host's whole network policy state, and
// IsolatePending for endpoints created before its first SetPolicy. The
// files are named for their concerns:
//
//	engine.go, types.go       the Engine, its options and input types
//	filter_hooks.go           the input and forward base chains and their sections
//	chain_sums.go             sums of chains: what a restart's first Replace leaves alone
//	change.go                 Change, Result and Apply: one transaction per change set
//	ruleset*.go               the desired table as data; isolation.go the forward rules between networks
//	publish*.go               docker run -p: mappings, host-port choice, ephemeral range, bind probes
//	services*.go              services: model, table, rules, expressions, conntrack cleanup
//	guard*.go                 the guard (who may reach etcd, VXLAN, the DNS) and localnet
//	policy*.go                network policy: types, section, expressions, SetPolicy, counters
//	conntrack*.go             conntrack cleanup over netlink
//	nft*.go                   the kernel side: whole-table syncs, deltas, elements, expressions
//	iptables_accepts.go       the accepts in Docker's iptables chains
//	metrics.go                the data plane's metrics
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
//	chain postrouting (nat, srcnat) masquerade: DNATed connections into a LAN
//	                                network's shim, 127.0.0.0/8 to a podnet bridge,
//	                                hairpin (ct status dnat, source in the bridge's
//	                                subnet, out the same bridge), and per network
//	                                its subnets to destinations not in @subnets4/6
//	chain input    (filter, 0)      the only filter base chain at input:
//	                                ct state established,related accept;
//	                                jump guard_input; jump np-input
//	chain forward  (filter, 0)      the only filter base chain at forward:
//	                                jump isolation; ct state
//	                                established,related accept; jump
//	                                guard_forward; jump np-forward
//	                                (filter_hooks.go: one base chain per hook)
//	chain isolation                 internal networks cut off; DNATed traffic
//	                                passed (return); other traffic between two podnet
//	                                bridges, or a podnet bridge and Docker's
//	                                (docker0, br-*), dropped; new connections
//	                                from anywhere else into a single-host
//	                                network dropped (only published ports,
//	                                DNATed, reach its containers: Docker 28's
//	                                rule against direct routing)
//	set hosts4                      underlay addresses of the hosts in etcd
//	set etcd4, etcd6                etcd members' client and peer ports
//	chain guard_pre (filter, mangle) the guard at prerouting, below: starts
//	                                with `ct state established,related accept`,
//	                                and also drops what arrives on a podnet
//	                                bridge for 127.0.0.0/8 (route_localnet would
//	                                deliver it to the host's loopback services;
//	                                see guard_localnet.go)
//	chain guard_input, guard_forward the guard's sections of input and forward
//	                                (drops; what they let pass returns)
//
// and the service section (see "Services" below):
//
//	map svc-ip4, svc-ip6            VIP or external IP . proto . port : verdict (goto the service's target)
//	map svc-np                      proto . NodePort : verdict
//	chain services                  jumped to first from prerouting and output:
//	                                vmap @svc-ip4, vmap @svc-ip6, then (not for
//	                                loopback) fib daddr type local: vmap @svc-np
//	map/chain svc-<ks>-b<i>         bucket i of keyspace ks (ip4, ip6, np4, np6,
//	                                and -local variants): key : i-th endpoint . target
//	                                port; the chain sets the service ct mark and
//	                                DNATs through the map
//	chain svc-<ks>-r<lo>-<hi>       equal-probability choice of buckets lo..hi-1
//	                                (`numgen random mod n vmap { … }`)
//	chain svc-reject                TCP reset, else ICMP port unreachable
//	chain svc-local-<ks>/<svc>/<proto>/<port>     externalTrafficPolicy Local
//	chain svc-aff-<ks>/<svc>/<proto>/<port>[/<ep>] and
//	set svc-aff/<svc>/<proto>/<port>/<ep>         ClientIP affinity
//	set svc-hairpin4, svc-hairpin6  local endpoint . itself
//	chain snat-services             postrouting, for service connections (ct mark
//	                                0x00200000): source NAT decided per path
//	set samebridge                  each bridge . itself (routed same-bridge traffic)
//	set pods4, pods6; map tunnel4, tunnel6        subnets of multi-host networks,
//	                                and this host's tunnel address in each
//
// One filter base chain per hook. Every base chain is a hook function the
// kernel calls for every packet (an indirect call, costly with this kind
// of machine's mitigations), and most packets are established traffic.
// The guard, the isolation rules and network policy were base chains of
// their own, each accepting established traffic at its first rule: a
// returning SYN-ACK crossed three (guard_pre, guard_input, np-input), a
// forwarded packet three. Now input and forward have one base chain each,
// which accepts established and related traffic once and jumps to the
// sections (regular chains) for the rest: the guard and policy sections
// end in return where they used to accept, so the next section still
// decides, and drops stay final (filter_hooks.go says how the verdicts
// compose and why isolation comes before the established check). A Sync
// that finds an older podnetd's base chains of the same names flushes,
// deletes and adds them again as regular chains in its one batch (a
// chain's kind cannot change in place), so the guard and the policy are
// never missing and conntrack keeps every established flow.
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
// none. Sync sends one batch that flushes and refills every chain and
// compares every set it owns with the kernel's, element by element,
// sending only the difference (never deleting the table; a set whose
// type changed is recreated), so packets see the old or the new rules,
// never none, a sync that finds the kernel right changes no element, and
// objects it does not rewrite survive: the service section until a
// Replace has said what it should be, and the clients recorded in
// affinity sets. NAT of existing
// connections lives in conntrack, which no batch touches, so established
// connections survive a Sync. A batch travels in one sendmsg and the
// kernel queues an ack per operation before we read any: the netlink
// socket's buffers are sized for the batch (SO_SNDBUFFORCE/RCVBUFFORCE,
// as nft does), or thousands of services would fail with EMSGSIZE, or
// with ENOBUFS after the kernel applied the batch.
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
// container, or to nothing, until the entry times out. The data plane uses
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
//   - VXLAN: `udp dport 4789 ip saddr != @hosts4 drop` in guard_input (a
//     section of the input base chain, after its established check).
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
//     oif missing drop`, strict rpf, in guard_pre: after conntrack, so
//     that established traffic leaves the guard at its first rule).
//     Only the blocks the overlay routes directly to a known host pass;
//     this host's own ranges, unclaimed addresses and blocks reached over
//     VXLAN do not. The subnets of macvlan/ipvlan networks (Network.LAN)
//     are not in @subnets4/6 and not checked: they are the LAN's own
//     addresses, which its machines (and other hosts' containers) send
//     from on the parent, whether or not this host has a route back
//     there. Both checks are by source address: a machine on the
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
//   - etcd: containers on podnet bridges and host-access shims, and on
//     Docker's own bridges (docker0, br-*), cannot open connections to the
//     client or peer ports of the etcd members podnet uses (`iifname
//     "pn-*" ip daddr . tcp dport @etcd4 drop`, the same for docker0 and
//     br-*, in guard_input for a member on this host and guard_forward
//     for the others). podnetd fills etcd4/6 from its endpoints and etcd's
//     member list. macvlan/ipvlan containers without host access talk to
//     the LAN directly, past this host's netfilter: etcd's own client
//     certificate check is what stops them.
//
// The guard never rebuilds the table before this engine's first Sync (a
// restarted podnetd must not replace the previous table, published ports
// and all, before it restored them), and a restarted podnetd seeds the
// VXLAN peers from the hosts4 set the previous one left (LoadPeers), so
// tunnels keep flowing while etcd is down. On the very first start the
// set is empty until the overlay has listed the hosts: VXLAN fails closed.
//
// Services. Dispatch is one hash lookup however many services exist: the
// verdict map svc-ip4 (svc-ip6, svc-np) sends VIP . proto . port to the
// service's target. A target is shared by every service with the same
// number of endpoints: range chain svc-ip4-r0-<n> chooses bucket i with
// equal probability in one rule, `numgen random mod n vmap { 0 : goto
// svc-ip4-b0, … }` (one random number, one lookup in a constant map), so a
// new connection crosses three chains and three lookups (dispatch, pick,
// DNAT) for services of up to 256 endpoints. The pick map's keys are one byte:
// google/nftables labels an anonymous map's keys big-endian while numgen
// writes host order, so a 4-byte key 1 would be listed (and reloaded by
// `nft -f`) as 16777216; a 1-byte key is the number's low byte on a
// little-endian host and has no byte order to get wrong. Ranges of more
// than 256 buckets (or any on a big-endian host) split after a power of
// two, `numgen random mod n < s`, into parts picked that way (on
// big-endian, into ranges of up to four buckets picked in turn,
// `numgen random mod (n-i) 0`, kube-proxy's statistic scheme), the parts
// shared by every size that contains them. Bucket chain svc-ip4-b<i>
// DNATs through map svc-ip4-b<i>, keyed like the dispatch, whose value is
// the service's i-th endpoint. A service is therefore only map elements (one dispatch element per
// address and port, one bucket element per endpoint): a change is a batch
// of a few elements, a cold load is linear in services, and no rule walk
// grows with the number of services. Endpoints keep their bucket while
// they stay (assignSlots), so an endpoint change replaces one element per
// address and port. Shared chains and maps are reference-counted and
// created with the first service that needs them. Costs seen on this
// kind of machine: a batch that deletes elements waits for an RCU grace
// period in the kernel (a few milliseconds), whatever the table size.
//
// A service without endpoints goes to svc-reject (TCP reset, ICMP port
// unreachable) from the nat chain itself: reject in prerouting needs
// Linux 5.9 or later. ClientIP affinity is kube-proxy's nftables scheme:
// one timeout set of clients per endpoint, looked up in turn (only for
// services with affinity), refreshed on each new connection; a client in
// none picks at random and its endpoint's chain records it, in a rule of
// its own: a set filled to its 65535 elements (a flood of forged sources
// does that in seconds) fails the update and ends only that rule, so new
// clients are balanced without affinity instead of refused.
// externalTrafficPolicy Local sends external IPs and NodePorts to a chain
// that keeps traffic from this host's containers and processes
// cluster-wide and sends outside traffic to local endpoints only
// (separate "-local" buckets), or drops it when there are none. NodePorts
// answer on every local address but loopback: a packet from 127.0.0.1
// cannot be routed to another host without route_localnet on the uplink
// (CVE-2020-8558), as with kube-proxy's nftables mode.
//
// Services across hosts. The endpoint should see the client's own
// address wherever the reply passes through the host that did the DNAT
// anyway; otherwise the reply must be sent back there. Every bucket
// chain sets conntrack mark bit 0x00200000, and postrouting sends the
// first packet of such connections to snat-services, which decides:
//
//   - local endpoint (out a podnet bridge): no source NAT; the reply goes
//     through this host (the endpoint's gateway). Except: a container
//     reaching itself is masqueraded (a packet from its own address would
//     be dropped as martian; set svc-hairpin4 holds local endpoint .
//     itself), and a container reaching another endpoint of its own
//     bridge is masqueraded only when the packet was routed (input and
//     output interface the same bridge, set samebridge): with
//     br_netfilter, which dockerd loads, the frame is bridged, has no
//     input interface at postrouting, and conntrack un-NATs the bridged
//     reply, so the client keeps its address (kube-proxy relies on the
//     same);
//   - a local container (multi-host network) to a pod on another host: no
//     source NAT, the pod network routes the reply back here;
//   - anything else to a pod on another host — the host's own processes,
//     NodePort and external-IP clients from outside, containers of
//     single-host networks — gets this host's tunnel address in the
//     endpoint's network (map tunnel4: subnet → address). The gateway is
//     anycast (the same address on every host) and the underlay address
//     is routed outside the pod network, so neither would bring the reply
//     back: the tunnel address is an address of the pool reserved in IPAM
//     for this host (Calico's tunnel address; flannel puts one on its
//     VXLAN device), and every other host routes it here with its block
//     or as an exception route. The overlay also puts it on its device
//     (pnx<VNI> or pnwg) as the source of the host's own traffic to other
//     hosts' pods (package overlay, "This host's own traffic"); NAT does
//     not need that: the reply is un-NATed in prerouting, before
//     routing. With it, the
//     forward packet arrives on the other host's VXLAN device from an
//     address routed via that device, and the reply on ours from a pod
//     address routed via ours, so strict reverse-path filtering
//     (rp_filter=1) passes on both hosts;
//   - without a tunnel address, or towards a host-network endpoint: masquerade;
//   - an endpoint on a macvlan/ipvlan network of this host, reached
//     through its host-access shim: masquerade (a rule of postrouting
//     itself, before the jump: the container's default route is the
//     LAN's router, so its reply would bypass this host, exactly as
//     for a published port). One on another host is an outside
//     destination (the last rule).
//
// Such connections may cross no podnet bridge (a NodePort forwarded from
// the underlay to the VXLAN device), so PODNET-FORWARD also accepts the
// service conntrack mark in Docker's FORWARD chain.
//
// Control traffic. The nat prerouting and output chains begin with
// returns for podnet's own control traffic — etcd's client and peer ports
// of its members (@etcd4/6), VXLAN to the registered hosts and to this
// host, the cluster DNS — before they jump to services or published
// ports. Those chains are rewritten by every Sync, unlike the service
// section, which a restarted podnetd leaves as it was until it has read
// etcd: a bad service record that took etcd's address and port can
// therefore never cut a host off etcd (and so off the record's removal).
//
// Conflicts. A service's keys (address:port, NodePort) are claimed one
// by one: a key another service holds, or a NodePort that a -p of this
// host or a listening process holds (Options.PortInUse on the wildcard
// addresses), is left out and kept in the service's blocked set with why;
// the rest of the service is programmed. ServiceStatus reports the
// blocked elements (ErrServiceConflict). Keys a change frees go to the
// services that were denied them, in the same batch; NodePorts held by
// local ports are looked at again by every Replace (the agent's
// resync). Publish refuses a host port that is a NodePort here, naming
// its service.
//
// Service state. A change set (Apply) is one nftables transaction
// whatever the number of services in it, with no threshold between "one
// service" and "many": a Replace plans only the services that differ from
// memory and syncs the table, which compares the service section with the
// kernel's element by element (so the first Replace after a start, which
// the previous podnetd's rules await — until then Sync leaves them in
// place, so a restart never interrupts new connections to services, and
// an etcd outage never touches them — changes only what changed while
// podnetd was down, and a periodic one repairs drift). Map svc-sums keeps,
// in the same transactions, the sum of each service map's element hashes,
// so that first Replace lists only the maps whose sum differs from what it
// wants (services_sums.go): after a restart where nothing changed it reads
// a few hundred bytes instead of every element, and costs less than a cold
// load (benchmark B14). It also rewrites no chain the kernel already
// holds (chain_sums.go): svc-sums keeps a sum of the service section's
// chains too, and the other chains were written by the engine's own Sync
// just before, so a restart where nothing changed sends a batch that
// flushes no chain (a chain rewrite makes the commit wait for an RCU grace
// period, ~10 ms here); any other change
// is one delta of the services it names, applied to memory with an undo
// journal, so it costs what it touches. A service whose rules the kernel
// refuses is left out and reported in the Result (ErrServiceNotProgrammed);
// one with blocked keys (Conflicts, above) is programmed without them and
// reported (ErrServiceConflict), and is tried again whenever a change
// frees an address or port.
// When the kernel refuses a whole change, the services in it are
// programmed one batch each so the culprit is named and the others work.
//
// Service conntrack cleanup. When an endpoint leaves, the entries of the
// UDP and SCTP flows a service rule sent to it (service mark, reply
// source the endpoint) are deleted, so the client's next packet picks a
// live endpoint; when a service gains endpoints, UDP/SCTP entries to its
// addresses that no service rule NATed (sent before it existed) are
// deleted; after a restart, the first Replace deletes those a service
// rule sent to an address that is no longer one of its endpoints (one
// dump: filters cannot say "none of these"). TCP is left alone:
// established flows to live endpoints must survive, and one to an
// endpoint that is going away may finish its work.
// The deletes are in-kernel filtered flushes (one IPCTNL_MSG_CT_DELETE
// with CTA_FILTER per endpoint and port: the kernel walks its table, no
// entry crosses to userspace; measured here, 2 ms against 52 ms for a
// dump of 6000 entries none of which matches, 12 ms against 870 ms to
// delete 14000 of 20000); kernels without that support (before ~6.9)
// answer EINVAL or EOPNOTSUPP once, and the engine then dumps the table
// and matches entries itself, as for published ports.
//
// Network policy (policy*.go). The section's objects all start with
// "np-" and, like the service section, are left alone by a Sync until
// the first SetPolicy has said what they should be (a restarted podnetd
// keeps enforcing the previous one's rules); only the skeleton is
// created when missing:
//
//	chain np-forward                the last section of the forward base chain
//	                                (after its established check):
//	                                IPv6 neighbor discovery accept;
//	                                ip saddr vmap @np-out4 (egress of local
//	                                endpoints: jump, a pass returns here);
//	                                ip daddr vmap @np-in4 (ingress); ip6 alike
//	chain np-input                  the last section of the input base chain:
//	                                the same egress dispatch, for what a
//	                                container sends to its own host
//	map np-in4, np-out4, np-in6, np-out6   local endpoint address : its
//	                                group chain, or np-pending-in/out
//	chain np-i4-<group>, np-e4-<group>, np-i6-…, np-e6-…
//	                                one per group (the policies isolating
//	                                an endpoint in one direction) and
//	                                family in use: self traffic passes
//	                                (set np-self4: address . itself), then
//	                                one rule per peer set and protocol
//	                                (`ip saddr @np-a4-<set> tcp dport {
//	                                80, 8000-8080 } accept`; egress:
//	                                daddr, return), then the packet is
//	                                counted against each of the group's
//	                                policies and goes to np-deny-in/out
//	set np-a4-<set>, np-a6-<set>    addresses a pod selector selects
//	set np-r4-<set>, np-r6-<set>    an ipBlock: interval set of its ranges
//	chain np-pending-in/out         labels not known yet: count, drop
//	chain np-deny-in/out            (--policy-log: rate-limited NFLOG
//	                                group 1742) drop
//	counter np-c-<policy>-in/-out   denied packets per policy (named
//	                                counters survive restarts and chain
//	                                rewrites; /metrics reads them)
//
// The per-packet cost does not grow with policies or containers: a new
// connection's first packet costs four hash lookups (a miss for an
// endpoint no policy selects), then, for an isolated endpoint, its own
// group's few rules, each one hash lookup; every later packet only the
// base chain's established check. The section is last in its base chain,
// so its accepts are the chain's verdict, and a drop anywhere is final:
// Docker's FORWARD accepts (another table's base chain) cannot overrule
// it, and podnet's isolation and guard, before it, need no place in it.
// (It used to be a base chain of its own at filter + 10; the order
// against Docker's chains at filter changes only which chain counts a
// packet that more than one drops.) Same-bridge traffic reaches the forward hook through
// br_netfilter (the driver sets the bridge's nf_call_iptables and loads
// the module); ingress of a connection a container opens to a service VIP
// sees the client's own address (DNAT happens in prerouting, before the
// forward hook, and containers' service traffic is not source-NATed
// between hosts), and egress sees the chosen endpoint. The host's own
// connections to its containers never cross the forward hook: allowed
// whatever the policy, as Kubernetes does for a pod's node.
//
// SetPolicy builds the whole section for the state it is given (pure:
// buildPolicySection) and programs the difference with the section last
// programmed in one transaction (applyDelta: sets and chains that appear
// or go, chains whose rules changed, elements, counters); a refused delta
// falls back to rewriting the section. The first call rewrites it.
//
// Namespaces. Every kernel call acts in the network namespace of the
// calling thread (a fresh netlink socket per batch, child processes for
// iptables), which is the host's in podnetd and the lab's in tests run
// under ns.Do.
package dataplane
