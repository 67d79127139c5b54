// Package lbannounce makes the addresses of LoadBalancer services reach
// this host from outside: for the addresses of L2 pools it takes part in
// an election through etcd and answers ARP (IPv4) and NDP (IPv6) for the
// addresses it wins; for those of BGP pools it tells this host's BGP
// speaker (package bgp) which routes to announce. The data plane needs
// nothing more: a load-balancer address is one more external address of
// its service (package proxy), DNATed by whichever host the packet
// reaches.
//
// Files: announcer.go (Config, Run, one reconcile pass, the L2 claims),
// election.go (the order of candidates), view.go (what it follows in
// etcd), responder.go (ARP/NDP from user space), ifaces.go (which
// interface answers for an address, and whether it is up), coverage.go
// (the addresses no host announces, for podnet_lb_unannounced_addresses).
//
// # Design notes
//
// A user-space responder, not an address on an interface. kube-vip adds
// the address to the LAN interface and lets the kernel answer ARP; MetalLB
// answers from user space on a raw socket. podnet does the latter, for
// three reasons. (1) An address on an interface is local: every process
// listening on 0.0.0.0 (sshd, the metrics port, a database) would answer
// on the service's address, and the data plane's "fib daddr type local"
// NodePort rule would too; answering only ARP keeps the address nothing
// but the service's DNAT target. (2) A crashed podnetd leaves an address
// on the interface behind, so two hosts answer until someone cleans up;
// a crashed responder's socket closes with the process, and the lease
// then moves the address. (3) This kernel has no dummy interface to hold
// addresses apart from the LAN's. The cost is that the host does not
// answer ICMP on the address, and a packet to a port the service does not
// have is routed like any packet not for this host (MetalLB in L2 mode
// behaves the same). mdlayher/arp and mdlayher/ndp do the wire formats
// (the advertisement itself is package nd's, shared with the overlay's
// NDP responders of IPv6 bridges); the responder joins each IPv6 address's solicited-node group so that
// neighbor solicitations reach it.
//
// The election. Each host keeps an announcer lease (--lb-lease-ttl,
// default 3 s, shorter than the host liveness lease) with its record
// under lbspeakers/<host>; the hosts with a record are the candidates. A
// claim lbl2/<hex ip> (host, service) is created on absence, bound to
// the winner's lease, so two hosts never both hold an address and a host
// that dies — or whose LAN link goes down, which cuts it from etcd too —
// loses its claims when its lease runs out. Every candidate orders the
// candidates by a hash of the address and the host name (rendezvous
// hashing: addresses spread over the hosts, and the order of the others
// does not change when one goes), and waits its rank times ClaimDelay
// (300 ms) before it tries: the first one usually wins at once, the next
// takes over when it cannot. Failover after a host dies therefore takes
// the lease TTL, the time etcd takes to expire it (it checks every 500
// ms) and the watch — 3 to 4 s with the defaults, well within the host
// liveness TTL + 3 s — plus the rank delay when the next host in order
// is gone too. With externalTrafficPolicy Local only hosts with a ready
// endpoint of the service are candidates, and a holder whose last local
// endpoint leaves deletes its claim. A clean stop closes the responder
// and revokes the lease: the claims vanish at once and the next host
// takes over within its rank delay. The winner sends a gratuitous ARP
// (reply, sender and target the address, to broadcast), or an unsolicited
// neighbor advertisement with the override flag, and twice more a second
// apart, so neighbor caches move to its MAC at once; Linux takes a
// gratuitous reply for an entry it already has.
//
// Losing etcd. A host whose lease expired while etcd was out of reach
// keeps answering for the addresses it held until it sees another host
// claim them (then it stops at once), and binds its claims to a new lease
// (or resumes the old one, which etcd extends when it elects a leader
// after an outage) as soon as it can: an etcd outage must not take the
// addresses down, as it takes no other traffic down. The other side of
// that choice: a host cut off from etcd but not from the LAN answers
// alongside the host that took over, until it reconnects. A host whose
// own link goes down stops answering on it (HostInterfaces reports the
// link without carrier) and, when the link is back, answers again only
// after a fresh read from etcd confirms the claim is still its own: the
// watch may lag, and answering for an address another host took would
// split the LAN's caches.
//
// BGP. The announcer hands the speaker the peers that select this host
// (BGPPeer.hosts, default every host) and the addresses to announce:
// every address of a BGP pool for Cluster services, only those with a
// ready endpoint on this host for Local ones, each to the peers of its
// address family. The router sees one route per announcing host and
// spreads the load by ECMP. A Local route is withdrawn as soon as the
// catalog shows the last local endpoint gone, a removed service's at
// once, and a clean stop closes every session with a Cease notification
// (routers withdraw at once); a crashed host's routes go when the
// router's hold timer runs out.
//
// What it writes: its claims and its speaker record (the interfaces it
// answers on, its BGP sessions and announced addresses, for `podnetctl
// bgp` and `service get`), both on its lease, so nothing of a host that
// is gone outlives it by more than the TTL. The pools, peers and claims
// come from etcd (podnetd's shared feeds, package feed); the services and their endpoints from
// the catalog, whose Subscribe wakes the loop. Each write carries a one
// second deadline: a host whose link is down must not stall its loop.
package lbannounce
