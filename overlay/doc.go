// Package overlay is podnet's multi-host data plane for vxlan-mode
// networks: flannel's VXLAN scheme, per IPAM block instead of per host
// subnet. Each host has one VXLAN device per network (pnx<VNI>); Run
// follows hosts/, alive/ and the pools' ipam/ keys in etcd and turns other
// hosts' blocks into routes, with one permanent neighbor and one FDB entry
// per remote host that uses the network (holds a reference to one of its
// pools, a block or an address in it) and is alive.
//
// Files: overlay.go (Config, New, RegisterHost, names and MACs), device.go
// (EnsureNetwork, RemoveNetwork, the device itself), desired.go (the pure
// computation of the wanted kernel state from an etcd view), program.go
// (diffing that against the kernel and applying it), nl.go (every netlink
// call, each named after its iproute2 equivalent), watch.go (Run and the
// etcd followers), underlay.go (DetectUnderlay). Stats reports passes
// and kernel changes (a restart that changed nothing shows zero).
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
//	bridge fdb append <VTEPMAC(H,42)> dev pnx42 dst <U_H> self permanent
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
// 10^6 at 100 hosts) is detected and the later host by name is skipped with
// a warning rather than have one MAC's FDB entry point at two hosts.
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
// proxy ARP answering for it). Gateway and aux kinds are never exceptions
// (an aux address is reserved by every host of the network, owned by none).
//
// Direct routing. With Network.DirectRouting, an IPv4 block of a host whose
// underlay address is inside this host's underlay subnet is routed straight
// to it (`via <U_H> dev <underlay>`, flannel's host-gw), others still over
// VXLAN; neighbors and FDB entries stay in place for every host.
//
// IPv6. The kernel refuses RTA_VIA on IPv6 routes ("IPv6 does not support
// RTA_VIA attribute", checked on 6.18), so IPv6 blocks cannot use the IPv4
// underlay address as next hop. Instead the next hop is the remote VTEP's
// EUI-64 link-local address (fe80::71:…), made resolvable by a second
// permanent neighbor entry to the same VTEP MAC, and the same FDB entry
// carries the frame over the IPv4 underlay. IPv6 has no proxy ARP, so each
// bridge gets a proxy neighbor entry (`ip -6 neigh replace proxy A dev
// <bridge>`) per remote container address of its IPv6 pools: the one place
// where state grows with containers. The driver sets proxy_ndp=1 and
// net.ipv6.neigh.<bridge>.proxy_delay=0 on IPv6 bridges, and should skip
// DAD on them (accept_dad=0): a fresh bridge's link-local address is
// tentative for about a second, and until then the kernel sends no
// neighbor solicitations from it, so forwarding to local containers stalls.
//
// Desired state, then diff. Each pass computes the whole wanted state from
// an in-memory view of etcd (a pure function, unit-tested without root) and
// diffs it against what the kernel has: podnet-protocol routes, permanent
// neighbors and FDB entries on pnx devices, proxy entries on the bridges.
// It adds what is missing, replaces what is wrong and deletes what is
// extra, adds before deletes so that no route points at a missing neighbor,
// and never touches a correct entry. A pass whose desired state equals what
// the previous clean pass applied does not even read the kernel (an etcd
// change elsewhere in a pool costs one computation, ~2 ms at 100 hosts ×
// 4 blocks × 32 containers); drift made behind podnet's back is repaired by
// the periodic full pass.
//
// Watching. store.Follow (list, then watch from the listing's revision,
// relist after compaction or a lost connection) feeds the view: hosts/
// (underlay addresses), alive/ (liveness keys on a lease) and, per pool of
// a registered network, ipam/<pool>/ (refs, blocks, addresses). A change
// is programmed at once when the overlay is idle; changes arriving during
// or within 20 ms of a pass are coalesced into the next. Every Resync
// (60 s) a full pass repairs drift, and every 10 s the devices are checked:
// a deleted or altered device is recreated and refilled in the same pass.
//
// Host death and return. When a host's lease expires its alive/ key
// disappears and the next pass removes its neighbor, FDB entry and routes
// everywhere (tens of milliseconds after the key goes), so nothing is sent
// into a tunnel towards a host that is gone and proxy ARP stops answering
// for its containers. Its blocks stay claimed in IPAM; when the key
// returns, its entries come back. Hosts with no alive key never get
// entries. How soon a crashed host's key goes is the lease TTL podnetd
// keeps it with; a clean shutdown revokes the lease at once.
//
// Restart. Run programs nothing until every followed prefix has been
// listed once, so a partial view never deletes anything. Returning from
// Run leaves the kernel as it is: containers keep talking across hosts
// while podnetd restarts, and the next instance's first pass finds every
// correct entry in place and changes nothing (no delete-and-re-add, which
// would reset neighbor state and drop packets). Routes of networks not yet
// registered again are left alone by that first pass; routes outside every
// registered pool (a network removed while podnetd was down) are collected
// only by periodic full resyncs, at least Resync after Run started.
//
// MTU. The VXLAN device's MTU is the network MTU, by default the underlay
// MTU minus 50 (outer IPv4, UDP, VXLAN and inner Ethernet headers); a
// larger MTU is refused because the encapsulated frame would not fit.
package overlay
