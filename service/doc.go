// Package service is podnet's service layer. So far it holds two background
// agents of podnetd:
//
//   - Watcher follows the Docker API of its host and keeps, for every
//     endpoint on a podnet network, the container's name, network aliases,
//     labels, addresses and readiness in etcd (epmeta/<host>/<endpoint>).
//   - DNS is the cluster DNS server: it answers container names (and their
//     network aliases) of every host from those records, answers PTR for
//     their addresses, and forwards everything else to the host's upstream
//     resolvers.
//
// # Design notes
//
//   - Why a separate meta key. A plugin request never sees a container's
//     name or labels (Docker sends endpoint IDs only) and must never call
//     the Docker API (dockerd may be waiting on the plugin: deadlock). So
//     the watcher learns them afterwards, from Docker's events, and writes
//     them next to the driver's endpoint record rather than into it: the
//     driver and the watcher then never overwrite each other's writes and
//     need no read-modify-write. Every write is a transaction conditioned on
//     the endpoint record being present; the driver deletes the meta key in
//     the same transaction as the endpoint, so a late watcher write can
//     never resurrect an orphan. The watcher still deletes orphans it finds
//     during its full resync (a podnetd that died between the two).
//   - The watcher writes only real changes (it keeps what it last wrote,
//     seeded from etcd at every resync), so Updated moves only when something
//     changed and a chatty event stream (health checks every few seconds)
//     costs etcd nothing. It subscribes to events before listing, so no
//     change falls between the listing and the stream; every reconnect of
//     the stream is followed by a full resync, as is every failed event
//     (after a backoff), plus a periodic one as a safety net.
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
//   - The DNS server keeps everything in memory, fed by two store.Follow
//     loops (epmeta/ and alive/): a query never waits on etcd, and when etcd
//     is unreachable the last known state keeps being served.
//   - Who may ask: the host itself and its containers (podnet's networks,
//     and Docker's own bridges), nobody else — neither the names nor forwarding
//     are for outsiders. That rule is enforced in nftables, by portmap's
//     guard, not in this server; portmap's doc.go says why (no answer to
//     forged sources, one source of truth for podnet's subnets, and it
//     holds while podnetd restarts or etcd is down).
//   - Records on disk (dns_cache.go, DNSConfig.CacheFile): the answerable
//     endpoints are saved to <data-dir>/dns-records.json, 0600, replaced
//     atomically (temporary file, fsync, rename), at most once a second
//     while they change and only once both followers have a full view
//     from etcd, bounded to 65536 endpoints. At start, before etcd
//     answers, the server loads that file and answers from it (and
//     forwards everything else as usual): podnetd starts the DNS before
//     waiting for etcd, so a podnetd restarted during an etcd outage keeps
//     answering the names it knew instead of nothing. The first snapshot
//     from etcd replaces what was loaded.
//   - Forwarding: UDP first, TCP when the answer was truncated, 2 s per
//     upstream, each upstream in turn starting with the last one that
//     answered; SERVFAIL when none answers. Upstreams default to the
//     nameservers of /etc/resolv.conf minus our own address and 127.0.0.11
//     (which would loop).
package service
