// Package clusterdns is the cluster DNS server: it answers container
// names (and their network aliases) of every host from the epmeta/
// records package dockerwatch writes, answers PTR for their addresses,
// answers service names from the catalog (services.go), and forwards
// everything else to the host's upstream resolvers (upstream.go). It
// keeps what it can answer on disk (cache.go, cache_services.go) for a
// restart while etcd is down.
//
// # Design notes
//
//   - Why a forward target of Docker's embedded DNS. Every container on a
//     user-defined network asks 127.0.0.11, Docker's embedded DNS, which
//     knows only the containers of its own host (a limit of Docker's resolver for
//     remote drivers) and forwards every other name to the daemon's configured
//     DNS servers. Making podnet's DNS that forward target (daemon.json
//     "dns": ["10.96.0.10"], or docker run --dns) keeps Docker's answers for
//     same-host names, its per-network scoping and its aliases, and adds the
//     other hosts' containers; names podnet does not know go on to the
//     host's own resolvers, so nothing else changes for the user. The name
//     space podnet adds is cluster-wide and flat: a name resolves to every
//     ready container of that name on any live host.
//   - Why only live hosts and ready containers. An address of a dead host
//     or of a container that is stopped, paused, starting or failing its
//     health check can only produce timeouts; Kubernetes' DNS likewise
//     publishes only ready endpoints. Host liveness is the alive/<host>
//     key, bound to a lease, so a crashed host's containers stop resolving
//     within its liveness TTL even though nobody could clean its records.
//     A name with no answerable container is unknown to us and is
//     forwarded, so the user sees the upstream's NXDOMAIN.
//   - TTL. Answers carry a TTL of 5 s by default: names move as containers
//     come and go and as health changes, and the clients (Docker's embedded
//     DNS, glibc) either do not cache or cache for the TTL, so a short TTL
//     bounds how long a stopped container stays in a client's cache while
//     costing only a local query every few seconds. A known name without a
//     record of the asked type (AAAA of a v4-only container) is NOERROR with
//     no answer, never NXDOMAIN, which would make resolvers give up on A.
//   - The DNS server keeps everything in memory, fed by two prefixes
//     (epmeta/ and alive/) read from podnetd's shared feeds (package feed,
//     the catalog's and the overlay's too): a query never waits on etcd,
//     and when etcd is unreachable the last known state keeps being served.
//   - Who may ask: the host itself and its containers (podnet's networks,
//     and Docker's own bridges), nobody else — neither the names nor forwarding
//     are for outsiders. That rule is enforced in nftables, by the data
//     plane's guard, not in this server; dataplane's doc.go says why (no answer to
//     forged sources, one source of truth for podnet's subnets, and it
//     holds while podnetd restarts or etcd is down).
//   - Records on disk (cache.go, Config.CacheFile): the answerable
//     endpoints are saved to <data-dir>/dns-records.json, 0600, replaced
//     atomically (temporary file, fsync, rename), at most once a second
//     while they change and only once both followers have a full view
//     from etcd, bounded to 65536 endpoints. At start, before etcd
//     answers, the server loads that file and answers from it (and
//     forwards everything else as usual): podnetd starts the DNS before
//     waiting for etcd, so a podnetd restarted during an etcd outage keeps
//     answering the names it knew instead of nothing. The first snapshot
//     from etcd replaces what was loaded. The same file keeps what service
//     names answer (VIP, ports, a headless service's ready endpoints;
//     cache_services.go), saved when the catalog changes and answered
//     until the catalog has read etcd once: the restarted podnetd's proxy
//     rules stay in the kernel meanwhile, so a name that resolves also
//     connects.
//   - Forwarding: UDP first, TCP when the answer was truncated, 2 s per
//     upstream, each upstream in turn starting with the last one that
//     answered; SERVFAIL when none answers. Upstreams default to the
//     nameservers of /etc/resolv.conf minus our own address and 127.0.0.11
//     (which would loop).
package clusterdns
