// Package overlay is podnet's multi-host data plane for vxlan-mode
// networks: flannel's VXLAN scheme, per IPAM block instead of per host
// subnet. Each host has one VXLAN device per network (pnx<VNI>); Run
// follows hosts/, alive/ and the pools' references, blocks and exception
// records in etcd and turns other hosts' blocks into routes, with one
// permanent neighbor and one FDB entry per remote host that uses the
// network (holds a reference to one of its pools, a block or an exception
// in it) and is alive. The work an etcd event costs is proportional to
// what it changes, not to the cluster (see "Incremental passes").
//
// Files: overlay.go (Config, New, RegisterHost, names and MACs, Stats),
// device.go (EnsureNetwork, RemoveNetwork, the device itself), view.go
// (the etcd view and what each change of it may affect), desired.go (the
// wanted kernel state, whole or entry by entry), program.go (full passes:
// diffing the whole state against the kernel), incremental.go (passes
// after events: only the entries they touch), nl.go (every netlink call,
// each named after its iproute2 equivalent), watch.go (Run and the etcd
// followers), repair.go (exception records after a rolling upgrade),
// underlay.go (DetectUnderlay), encrypt.go (encryption: routes into
// WireGuard and its peers), tunnel.go (this host's tunnel addresses on
// its devices), ndp.go (the NDP responders of IPv6 bridges). Stats reports passes, kernel changes (a restart that
// changed nothing shows zero) and what the watches read.
//
// # Design notes
//
// One subnet, many hosts. A vxlan network has the same subnet and the same
// anycast gateway on every host's bridge. Containers see the whole subnet
// as on-link; a local container's ARP request for a remote address is
// answered by the bridge through proxy ARP, because the host has a route
// for that address through another interface (pnx<VNI> or the underlay).
// The driver sets proxy_arp=1 and neigh proxy_delay=0 on the bridge (the
// kernel otherwise delays proxy replies by up to 0.8 s).
//
// Per-block routes, no L2/L3 miss handling. IPAM hands out addresses from
// blocks (default /26) that hosts claim in etcd, so one route per remote
// block covers every container in it:
//
//	ip route replace 10.1.0.64/26 via <U_H> dev pnx42 onlink proto 152
//	ip neigh replace <U_H> lladdr <VTEPMAC(H,42)> dev pnx42 nud permanent
//	bridge fdb replace <VTEPMAC(H,42)> dev pnx42 dst <U_H> self permanent
//
// The next hop is the remote host's underlay address itself, made on-link
// on the VXLAN device; the neighbor entry maps it to the host's VTEP MAC
// and the FDB entry sends that MAC to the host. Entries per host: one
// neighbor, one FDB entry, one route per block — they grow with hosts and
// blocks, never with containers, and all are static and known before the
// first packet. Like flannel since 0.9 there is no L2/L3-miss handling:
// miss notifications cost a netlink round trip on a packet's first
// appearance, lose packets while userspace answers, and need per-container
// entries; nor any flooding or multicast (no BUM traffic crosses hosts,
// ARP is answered locally).
//
// Deterministic VTEP MACs. VTEPMAC(host, vni) is 02:71 followed by four
// bytes of sha256(host, vni), so every host computes every other host's
// MAC: nothing to store, nothing to go stale, and a device recreated after
// a crash has the MAC its peers already program. A collision (about 1 in
// 10^6 at 100 hosts, 1 in 350 at 5000) is detected and the later host by
// name is skipped with a warning rather than have one MAC's FDB entry
// point at two hosts; likewise of two hosts claiming one underlay address
// (a misconfiguration: they would share a neighbor entry) only the first
// by name is programmed. The kernel keeps one destination per unicast MAC
// (NLM_F_APPEND is ignored for them), so FDB entries are replaced, which
// also moves a host that changed its underlay address in one call.
//
// Route protocol. Every route carries protocol 152 (RouteProtocol; `ip
// route show proto 152`). That is how a restarted podnetd finds exactly its
// routes — including those outside its devices (direct routing over the
// underlay, exceptions to the bridge) — and deletes those nobody wants,
// without ever touching a route an operator or another daemon added.
//
// Exceptions. An address whose owner (the address record's host) is not its
// block's claimant — a borrowed address, or `docker run --ip` inside another
// host's block or an unclaimed one — is routed as a /32 (/128) to its
// owner, which wins over the block route by longest prefix. On the owner
// itself, if a remote host claims the block, `A/32 dev <bridge>` keeps the
// local container from being shadowed by that block's route (and stops
// proxy ARP answering for it). A host's tunnel address (IPAM kind
// "tunnel", the source of its service traffic to other hosts) is routed to
// its owner like a container address. Gateway and aux kinds are never exceptions
// (an aux address is reserved by every host of the network, owned by none). Hosts
// learn of exceptions from exception records (ipam/<pool>/exc/<hex ip>,
// store.Exception), which IPAM writes in the same transaction as an address
// outside its host's blocks and deletes with it: the candidates. Whether a
// candidate is an exception is still decided here, against the blocks as
// the view has them (store.NeedsException), so a record whose owner has
// since claimed the block routes nothing.
//
// Direct routing. With Network.DirectRouting, an IPv4 block of a host whose
// underlay address is inside this host's underlay subnet is routed straight
// to it (`via <U_H> dev <underlay>`, flannel's host-gw), others still over
// VXLAN; neighbors and FDB entries stay in place for every host.
//
// This host's own traffic. A process of the host itself (curl to a pod
// on another host, a health check) has no pod address: the kernel picks
// a source for it from the route. Left to itself it picks the underlay
// address (or whatever global address comes first: the cluster DNS
// address on lo, and for IPv6 the anycast gateway), and the reply to it
// goes wrong: a reply to the underlay address comes back over the
// underlay from a pod address whose route leads into pnx<VNI>, which the
// guard's reverse-path check drops (and with strict rp_filter the other
// host drops the request already: the underlay address is not routed
// through the VXLAN device there); a reply to the anycast gateway stays
// on the other host. So each registered network carries this
// host's tunnel addresses (Network.Tunnels: IPAM kind "tunnel", one per
// pool, the address service traffic between hosts is NATed to; see
// package dataplane, "Services across hosts"), and, as Calico does with
// its tunnel address and flannel with the address of flannel.1:
//
//	ip addr replace 10.1.0.5/32 dev pnx42 noprefixroute
//	ip route replace 10.1.0.64/26 via <U_H> dev pnx42 onlink src 10.1.0.5 proto 152
//
// The address goes on the device the pool's routes to other hosts leave
// by (pnx<VNI>; pnwg with encryption), as a host address without a
// prefix route (IPv6: nodad, since a tentative address cannot be a
// source), and each such route names the tunnel address of its pool as
// source, so a network with several pools, or pnwg holding the tunnel
// addresses of every network, still picks the right one. Every other
// host routes the tunnel address here (with its block, or as an
// exception when borrowed) through the overlay, so the reply arrives on
// the device the request left by: the guard passes it, strict rp_filter
// passes on both hosts, and the address is local here, so the reply is
// delivered. Routes over the underlay (direct routing) keep the
// underlay address as source: the other host routes it back directly.
// Without tunnel addresses (IPAM could not reserve them) routes carry no
// source. A full pass adds missing addresses before routes and removes
// the ones nobody wants after them (addresses of pnx<VNI> and pnwg other
// than IPv6 link-local ones are podnet's): a network removed, a tunnel
// address released, encryption switched on or off. RemoveNetwork does
// not wait for that pass: it takes the network's tunnel addresses off
// the devices that stay (pnwg) along with its routes. A restart finds
// addresses and routes in place and changes nothing (the first pass
// logs its count of changes). A side effect: pods
// on other hosts reach this host at its tunnel address, as local pods
// reach it at the gateway.
//
// IPv6. The kernel refuses RTA_VIA on IPv6 routes ("IPv6 does not support
// RTA_VIA attribute", checked on 6.18), so IPv6 blocks cannot use the IPv4
// underlay address as next hop. Instead the next hop is the remote VTEP's
// EUI-64 link-local address (fe80::71:…), made resolvable by a second
// permanent neighbor entry to the same VTEP MAC, and the same FDB entry
// carries the frame over the IPv4 underlay. The driver skips DAD on IPv6
// bridges (accept_dad=0): a fresh bridge's link-local address is
// tentative for about a second, and until then the kernel sends no
// neighbor solicitations from it, so forwarding to local containers
// stalls.
//
// IPv6 neighbor discovery: a responder per bridge (ndp.go). IPv6 has no
// proxy ARP, and the kernel's proxy NDP needs an entry per address (`ip -6
// neigh add proxy A dev <bridge>`). podnet used to add one per remote
// container address, so every host followed every IPv6 address record
// (addrs/): state and etcd traffic grew with containers cluster-wide.
// Instead, each bridge of a network with an IPv6 pool has a small NDP
// responder in podnetd (package nd: a packet socket with a kernel filter
// passing only neighbor solicitations) that answers, with the bridge's
// MAC and the override flag clear, a solicitation whose target is in one
// of the network's IPv6 pools and which this host routes out of another
// device than the bridge (a lookup in the kernel's routing table, as
// proxy_arp does for IPv4): another host's container, by its block route
// or exception route. A local container (the pool's on-link route, or its
// /128 exception route to the bridge, leads back to the bridge), the
// gateway (a local address), an address nobody routes, a target outside
// the pools, and duplicate address detection (source ::) are never
// answered. The container then sends to the bridge and the kernel routes
// by the blocks and exceptions, so IPv6 pools are followed exactly like
// IPv4 ones (refs/, blocks/, exc/; addrs/ only in the upgrade cases
// below): nothing on this host changes when a remote IPv6 container
// starts or stops. At most nd.DefaultRate solicitations a second per
// bridge reach the routing lookup, with no state per sender or target; the
// rest are parsed (about a microsecond each) and dropped, so a flood costs
// a bounded share of a core and no memory.
//
// Alternatives weighed: routed /128s (IPAM returning /128 addresses and
// the driver an on-link gateway route through Join's static routes) need
// no responder, but change what containers see (no on-link subnet, so
// local traffic also goes through the host) and rely on how dockerd
// orders the interface address, static routes and the gateway route when
// it programs the sandbox; existing containers would keep their /64s for
// their lifetime. An nftables rule cannot answer NDP (it can only
// forward or drop), and an eBPF program at tc ingress could, but needs
// the pools and the local addresses mirrored into maps — the per-address
// state this replaces. The responder decides from the routes the overlay
// programs anyway.
//
// The cost: answers come from podnetd, not the kernel. While podnetd is
// stopped, containers keep the neighbor entries they have (a TCP
// connection's progress keeps its entry reachable), but an entry that
// needs re-confirmation (about 35 s after it was last confirmed, for
// traffic without upper-layer confirmation) or a first contact gets no
// answer until podnetd is back. The new instance starts a bridge's
// responder as soon as its network is registered again and a pass has
// run (Run also tries once before listing etcd): the routes it answers
// from are still in the kernel.
//
// Upgrade. Older podnetds still follow IPv6 address records and add
// proxy entries on their own bridges; the new ones still write the
// records (IPAM is unchanged) and exception records for IPv6 addresses
// routed apart (IPAM has written them for both families since layout 2),
// so old and new hosts route each other's containers side by side. While
// a podnetd older than exception records is alive, IPv6 pools, like IPv4
// ones, follow addrs/ and are repaired when it goes (see "Key layout and
// upgrades"). IPv6 records that such podnetds wrote before this change
// were never repaired (overlays then read IPv6 exceptions from the address
// records), so the first podnetd of this version checks the IPv6 pools'
// exception records once (store.IPv6ExceptionsKey). A full pass removes
// every proxy entry on the bridges of registered IPv6 networks (an older
// podnetd's, left in place when it stopped), so an upgrade leaves none.
//
// Full passes. At start, every Resync (60 s), when a device had to be
// recreated and when the registered networks change, a pass computes the
// whole wanted state from the view (a pure function, unit-tested without
// root) and diffs it against what the kernel has: podnet-protocol routes,
// permanent neighbors and FDB entries on pnx devices (and removes the proxy
// entries older podnetds left on IPv6 bridges). It adds what is missing, replaces what is wrong and deletes
// what is extra, adds before deletes so that no route points at a missing
// neighbor, and never touches a correct entry; drift made behind podnet's
// back is repaired by the periodic one. The state it leaves is kept
// (applied) for the incremental passes that follow.
//
// Incremental passes. Every change of the view records what it may affect
// (view.go): a host's liveness or underlay — its neighbor and FDB entries,
// its blocks' routes, its exceptions'; a block claimed or released — its
// route and the candidates inside it (their claimant changed); a
// candidate — its /32 (/128); a host starting or
// ending its use of a pool — its neighbor and FDB entries. After each batch
// of watch events Run recomputes exactly those entries with the same
// per-entry rules the full computation uses (model in desired.go: the
// full state is the union of the entries, so the two cannot disagree; a
// random walk of every kind of event checks it against the kernel), and
// programs the differences from applied, in the full pass's order. An
// address record that changes nothing costs a few map lookups and no
// kernel call; a block, an exception or a host costs the handful of
// entries it touches, whatever the size of the cluster (bench_test.go,
// BenchmarkScale). A kernel error makes the next pass a full one.
//
// Watching. podnetd's shared feeds (package feed: one store.Follow per
// prefix, list then watch from the listing's revision, the catalog and the
// cluster DNS reading hosts/ and alive/ from the same one) feed the view:
// hosts/ (underlay addresses), alive/ (liveness keys on a lease, and which
// podnetds keep exception records), and per pool of a registered network
// its refs/, blocks/ and exc/ keys — three subscriptions, so
// that the address records (addrs/), which every container start and stop
// writes, reach no host (IPv4 and IPv6 pools alike). A listing after a watch had to be
// restarted is diffed against the view, so it costs what changed meanwhile,
// not a full pass. Nothing is programmed until every followed prefix has
// been listed once. Every 10 s the devices are checked: a deleted or
// altered device is recreated and refilled in a full pass.
//
// Key layout and upgrades. Podnetds before exception records (layout 1)
// follow ipam/<pool>/ whole and derive exceptions from the address
// records; they write addresses without exception records, and release
// addresses without deleting one. The migration to layout 2 must be safe
// with both versions running side by side for as long as a rolling
// upgrade takes, and idempotent:
//
//   - New keys only: exc/ is a new kind under ipam/<pool>/, which layout-1
//     podnetds ignore when they see it (their follower skips unknown
//     kinds, their listings count addrs/ only) and delete with the pool
//     (ipam/<pool>/ goes whole). Address records keep their key and form,
//     so layout-1 overlays keep working during and after the upgrade.
//   - Every podnetd announces its layout in its liveness record
//     (HostAlive.IPAMLayout; layout 1 writes nothing, read as old). While
//     any alive host is old, every new overlay also follows addrs/ and
//     derives exceptions from the address records, as layout 1 does:
//     always right, at layout 1's cost. A host that comes back old (a
//     rollback) brings every other host back to that mode as soon as its
//     liveness key appears, before its podnetd serves Docker.
//   - The first new podnetd to start runs store.MigrateExceptions (from
//     podnetd start-up; recorded at layout/ipam so later ones skip it):
//     every address outside its owner's block gets its record, stale
//     records go. It covers a cluster stopped, upgraded and started again.
//     Each fix is a transaction conditioned on the address record and the
//     exception record as read (and the block when claimed), so it cannot
//     undo a newer write of either version's IPAM, and running it twice,
//     or on several hosts at once, is harmless.
//   - What old podnetds write after that (their --ip and borrowed
//     addresses lack records; their releases leave records behind) is
//     repaired when the last old host goes (repair.go): each new overlay
//     still holds every address record, computes the same fixes
//     (store.ExceptionFix), applies them after a random delay, recomputed
//     from the view each round so that in a large cluster a few hosts
//     write and the others see the records change, and stops following
//     addrs/ only once its view shows exception and address records agree.
//     Routes never depend on the records while they may be wrong.
//   - New IPAM keeps the layout: an address outside its host's blocks is
//     created with its record; one inside deletes any record in the same
//     transaction (a stale one would misroute it); every release, GC and
//     `podnetctl host rm` deletes records with the addresses.
//   - The one order not covered: a cluster migrated, then run on layout-1
//     podnetds alone (none newer alive to notice), then started on layout
//     2 again with every host at once. Its records may then lag the
//     addresses; deleting layout/ipam before that start makes the first
//     podnetd migrate again.
//
// Restart. Run programs nothing until every followed prefix has been
// listed once, so a partial view never deletes anything. Returning from
// Run leaves the kernel as it is: containers keep talking across hosts
// while podnetd restarts (IPv6 with the limit of the responders, under
// "IPv6 neighbor discovery"), and the next instance's first pass finds every
// correct entry in place and changes nothing (no delete-and-re-add, which
// would reset neighbor state and drop packets). Routes of networks not yet
// registered again are left alone by that first pass; routes outside every
// registered pool (a network removed while podnetd was down) are collected
// only by periodic full resyncs, at least Resync after Run started.
//
// MTU. The VXLAN device's MTU is the network MTU, by default the underlay
// MTU minus 50 (outer IPv4, UDP, VXLAN and inner Ethernet headers); a
// larger MTU is refused because the encapsulated frame would not fit.
// With encryption new networks default to the underlay MTU minus 60
// (outer IPv4 20, UDP 8, WireGuard's data header 16 and tag 16), the
// WireGuard device's own MTU; a network made before encryption keeps its
// larger MTU and relies on path MTU discovery (the host answers
// "fragmentation needed" for what does not fit pnwg).
//
// # Encryption
//
// With Config.WireGuard (podnetd --encryption wireguard) all traffic to
// other hosts' blocks and addresses — pods of vxlan and direct-routing
// networks alike, tunnel addresses, and so cross-host service and
// NodePort forwarding, which leaves with a tunnel address towards a pod
// address — is routed into one WireGuard device, pnwg:
//
//	ip route replace 10.1.0.64/26 dev pnwg src 10.1.0.5 proto 152
//	wg set pnwg peer <key of H> endpoint <U_H>:51820 allowed-ips 10.1.0.64/26,…
//
// This host's own traffic needs its tunnel addresses more here than in
// clear (see "This host's own traffic"): from the underlay address a
// packet into pnwg would be dropped by the receiving peer (not among
// this host's allowed IPs there) and the reply to it would leave that
// host in clear. So the tunnel addresses of every network sit on pnwg
// and are the source of every route into it, direct routing included;
// each is inside this host's allowed IPs on every peer (its block's, or
// its own /32 when borrowed: it is routed here like a container
// address), and every peer routes it back into WireGuard.
//
// Layering, by measurement. Two ways were possible: WireGuard routing the
// pod blocks itself (each remote host a peer whose allowed IPs are its
// blocks: Calico's and Cilium's WireGuard), or VXLAN as it is, run inside
// a WireGuard tunnel between per-host inner addresses. B21 measures both
// hand-built between the same two host namespaces on Debian's kernel
// (scripts/vm.sh wireguard-bench, row B21v of make bench): VXLAN inside
// WireGuard moved 0.78 of direct WireGuard's TCP throughput and 0.76 of
// its connection rate (medians of 3 interleaved pairs, 8 s each, under
// TCG on a shared machine: noisy, but below in both), with 50 more bytes
// of headers per packet (MTU 1390 instead of 1440), a second
// encapsulation on both ends and per-host inner addresses to allocate;
// podnet's own path, routing into WireGuard, measured 1.17 and 1.28 of
// the hand-built direct tunnel in the same pairs (B21, B21c).
// Routing blocks directly costs nothing VXLAN does not already cost: the
// allowed IPs are exactly the routes the overlay computes anyway (one per
// remote block, plus exceptions), they change when those do, and
// WireGuard's cryptokey routing then also checks every decrypted
// packet's source against the sending peer's blocks — a host can only
// send from its own pods.
//
// Peers. Every live host whose record carries a valid key is a peer,
// whether or not it shares a network with this one (a full mesh, as
// Calico's); its endpoint is its underlay address and advertised port.
// Its allowed IPs are the destinations routed to it: full passes derive
// them from the routes, incremental passes from the host's own blocks and
// candidates (poolView.users), so a block changing hands sets two peers
// (setting a prefix on one peer moves it off another in the kernel) and a
// host's key change sets its new key and removes the old. A host whose
// lease expires, or that is removed, loses its routes and its peer; a
// key seen twice (a copied data dir) is programmed for the first host by
// name only, and one equal to this host's own for none, with a warning.
//
// Fail closed, both ways. An encrypted host programs nothing for a host
// without a key, and a host in clear programs nothing for one whose
// record carries a key (hostKey.set): between the two no packet passes,
// in either direction, rather than cross the underlay in clear. No VXLAN
// device holds neighbor or FDB entries with encryption (the devices stay,
// attached to the bridges, and drop what the bridge floods to them), and
// Config.Peers is given no host: portmap's guard then accepts VXLAN from
// nobody, and its reverse-path check drops pod sources arriving from the
// underlay (their routes lead into pnwg). A cluster is switched host by
// host (podnetctl encryption set, then a restart of each podnetd): the
// hosts already switched talk among themselves encrypted, the others
// among themselves in clear, and nothing passes between the two groups.
//
// Restart. pnwg, its key and its peers stay in the kernel when podnetd
// stops; the next one finds the device with its key and port (Ensure
// changes nothing) and the peers as wanted, so sessions and connections
// carry on. The private key lives in the data dir (wireguard.key, 0600);
// a new one (a wiped data dir) reaches the other hosts through the host
// record within a watch round trip.
package overlay
