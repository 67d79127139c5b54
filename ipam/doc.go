// Package ipam is podnet's Docker IPAM driver: address pools shared by
// every host through etcd, cut into blocks that hosts claim, and addresses
// recorded with their owner so that leaks can be found and collected.
//
// Files: ipam.go (config, in-memory state), request.go (validation of what
// Docker sends), pool.go (RequestPool, ReleasePool, pool lifecycle),
// affinity.go (loading, claiming and releasing blocks), block.go (a block
// in memory), alloc.go (RequestAddress, ReleaseAddress), gateway.go,
// gc.go (GC, host removal, listing), addr.go (address arithmetic).
//
// # Design notes
//
// Pool identity. Docker never tells an IPAM driver which network it
// serves, so a pool is its subnet: the PoolID is the canonical CIDR
// (--subnet 10.1.2.3/16 gives "10.1.0.0/16"). The same subnet requested on
// another host is the same logical network: every host's RequestPool is
// idempotent and leaves a reference ipam/<pool>/refs/<host>. The same
// subnet twice on one host is refused when a podnet network record of
// that host already uses it; a reference without such a record is left
// over from a create that failed half-way and is reused. A pool is created
// with its first reference in one transaction conditioned on "no pool
// record changed since the listing the overlap check used", so two hosts
// creating overlapping pools at once cannot both win. Joining is
// conditioned on the pool record as read, so it cannot race the last host
// deleting the pool.
//
// Overlap. libnetwork checks nothing for a user-given subnet, so podnet
// refuses one that overlaps another podnet pool, and one that is unsafe
// (netspec.CheckSafe, the rule podnetctl network create applies too):
// loopback, multicast, link-local, the unspecified and broadcast ranges,
// and any network of this host's interfaces (its LAN, docker0, an address
// on lo) except podnet's own bridges and VXLAN devices — a podnet bridge
// holding the LAN's gateway address makes the host answer ARP for the LAN
// on the wrong side. A macvlan or ipvlan network on the LAN's own subnet
// is legitimate: --ipam-opt parent=IFACE lifts the refusal for that
// interface's networks only. The address space must be one of the two
// podnet reports. Routes are not checked for user-given subnets (a
// subnet inside a broad VPN route can be meant). Auto pools (no --subnet)
// must avoid both pools and this host's routes (the default route aside),
// or Docker asks again forever. An auto pool is per host: another host
// without --subnet gets another.
//
// Block affinity. Pools are cut into aligned blocks (/26 and /122 by
// default, the whole pool if it is smaller). A host hands out addresses
// only from blocks it claimed with a compare-and-swap create of the block
// key, searching from an offset derived from its name so hosts starting
// together do not race for the same block. Hosts therefore contend only
// when claiming blocks, not per address, and other hosts route per block,
// so route count grows with hosts, not containers (Calico's BlockAffinity).
//
// One round trip. Each host keeps its blocks and their taken addresses in
// memory (loaded per pool on first use: list the blocks, one range read
// per own block), so an allocation is a single transaction creating the
// address key if it is absent. Memory is only a hint: etcd's create decides.
// When the create fails (someone took that address with --ip) the block is
// re-read and the next address tried. A release of an address this host
// allocated is one delete. Addresses are handed out round-robin after the
// last one, as CNI's host-local does, so a just-released address is the
// last to be reused (stale ARP entries and connections of the previous
// holder die first). A restarted podnetd continues after the address it
// handed out most recently. Dynamic allocation skips the IPv4 network and
// broadcast addresses, the IPv6 subnet-router anycast address, and stays in
// the pool's ip-range.
//
// Borrowing. When this host's blocks are full it claims another block; when
// every block of the range is claimed it re-reads the pool (others may have
// freed addresses in its blocks) and then borrows a free address from
// another host's block, recorded with itself as owner (Calico without
// strict affinity). Only when nothing is free does it fail, naming the pool,
// the ip-range and the number of usable addresses. Blocks are released when
// the host stops using the pool (ReleasePool, GC), not when they empty:
// borrowing covers a pool whose blocks are all claimed.
//
// Exception records. An address this host creates outside its own blocks
// (borrowed, --ip or a tunnel address in another host's block or an
// unclaimed one) gets an exception record (ipam/<pool>/exc/<hex ip>, owner
// only) in the same transaction, and loses it with the address (release,
// GC, host removal). Other hosts route such an address as a /32 to its
// owner, and learn of it from these records alone: they never receive
// address records, which every container start and stop writes, so a
// start costs other hosts nothing. An address created inside this host's
// blocks deletes any exception record in the same transaction (one left by
// a podnetd older than the records would misroute it; deleting an absent
// key notifies nobody). Which blocks are this host's comes from its
// memory, which is authoritative: only this host claims and releases them
// while it is alive (`podnetctl host rm` refuses a live host). The rule is
// store.NeedsException; the layout and its migration are described in
// store/exceptions.go and overlay's doc.go.
//
// Explicit addresses and aux addresses. --ip may name any address of the
// pool, outside the ip-range and in any host's block (the driver then
// routes it as a /32). Docker sends --aux-address requests exactly like
// --ip ({"Address":"10.1.0.5","Options":null}), but only while it creates
// the network: an explicit request for a pool no podnet network of this
// host uses yet is an aux address (aux.go). It is shared like the gateway:
// every host creating the network with it reserves it, no container on
// any host gets it, the last host releasing it deletes it, and it goes
// with the pool (GC never collects it as a leak, a host's ReleasePool or
// removal drops only that host's share, and a block holding only shared
// addresses is idle). Owned by no host, it is routed to none: it needs no
// exception record (store.NeedsException). An aux address recorded by an
// older podnetd, as a container address of the requesting host, keeps
// behaving as one.
//
// Addresses the driver holds. The host-access shim of a macvlan/ipvlan
// network takes a dynamic address (like a container's, owned by the host).
// Docker releases a network's pool before the driver's DeleteNetwork,
// which releases the shim's address afterwards: that release finishes the
// pool's cleanup (finishRelease), so no block or pool is left behind.
//
// Gateway anycast. The gateway is the same address on every host's bridge.
// Without --gateway it is the first usable address of the subnet — of the
// subnet, not of the ip-range as Docker's built-in IPAM would pick, so that
// every host computes the same one. Its record lists the hosts using it;
// every host requesting the same gateway succeeds and adds itself; a host
// asking for a different one is refused and told which --gateway to pass; an
// address held by a container cannot become the gateway. The pool record
// remembers the gateway; the last host releasing it deletes the address and
// clears the pool's gateway. The returned address carries the pool's mask.
//
// Tunnel addresses. TunnelAddress reserves one address per host in each
// pool of a multi-host network, from the host's own blocks, recorded with
// kind "tunnel" and the host as owner (tunnel.go). The service data plane
// uses it as the source of service traffic the host sends to endpoints on
// other hosts when the client's own address would not bring the reply
// back (Calico's tunnel address; flannel puts one on its VXLAN device):
// every other host routes it to its owner with its block, or as an
// exception like any address its owner holds outside its blocks. It is
// idempotent (a restarted podnetd finds its address again), never handed
// to a container, never collected as leaked, and released with the
// network (ReleaseTunnelAddress) or, at the latest, with the host's pool
// reference (ReleasePool, GCPools, host removal).
//
// Reference counting and release. ReleasePool drops this host's reference,
// its blocks without container addresses (so others may claim them) and
// its share of the gateway. When no reference is left and no container
// address remains, the pool record and everything under ipam/<pool>/ go in
// one transaction conditioned on the references being empty and no address
// created since the listing. Container addresses left over (a release
// Docker never sent) keep the pool until GC has collected them. Deletes
// tolerate absence everywhere: Docker only logs release errors and never
// retries them.
//
// Ownership. Every address records its owner host. A host never releases
// another host's container address (it logs a warning): with a shared
// etcd, a stray ReleaseAddress must not free an address in use elsewhere.
// The driver adds the endpoint to the record later; nothing here depends
// on it.
//
// Concurrency. Docker sends concurrent requests. Each pool has a mutex that
// guards the in-memory state and is never held across an etcd call (an
// address is marked in flight instead), and a second one that serialises
// the slow paths of the pool on this host (loading, claiming, borrowing,
// gateway and pool changes); it is held across etcd calls, which all carry
// the store's deadline. A dynamic allocation whose transaction failed in
// an unknown state (a timeout) may leave a record nobody uses: GC collects
// it after its grace period.
package ipam
