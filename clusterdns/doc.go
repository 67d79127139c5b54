// Package clusterdns is the cluster DNS server: it answers container
// names (and their network aliases) of every host, read on demand from
// the name index each host writes beside its endpoint metadata, answers PTR for their addresses,
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
//   - Names on demand (ondemand.go). A host does not follow every
//     endpoint of the cluster: each podnetd writes, in the same etcd
//     transaction as an endpoint's metadata, one small key per name it
//     answers to and one per address (store's dnsindex.go,
//     dns/names/<label>/<host>/<endpoint>), only while it is ready. The
//     first query for a name lists dns/names/<label>/ (the keys of that
//     name only) and watches it through podnetd's shared feeds (package
//     feed): later queries are answered from memory, a removed, renamed
//     or unready container stops resolving when its owner's delete
//     arrives, and a container start anywhere costs a host nothing unless
//     it asked for that name. The first query waits at most 500 ms for
//     etcd (then answers from what it knows, and the watch keeps trying;
//     for 5 s after such a miss first queries do not wait). A name or
//     address nobody asked for in 10 minutes is dropped, and the least
//     recently asked one past 20 000. Unknown names are followed too
//     (negative caching), so a repeated miss costs no etcd read either.
//     Host liveness (alive/, one key per host) is still followed whole.
//   - Rolling upgrade. A podnetd writes the index of its own endpoints
//     (store.IndexHostNames, for what an older version wrote) before it
//     announces MetaLayout 1 in its liveness record. Hosts whose record
//     says 0 (older podnetds, or one whose indexing failed) are followed
//     whole (epmeta/<host>/) while they are alive; index entries count
//     only for hosts that announce the index, metadata entries only for
//     hosts that do not. Older podnetds ignore the index keys and keep
//     following epmeta/, which every version still writes. A downgraded
//     host's stale index keys are not read while it runs the older
//     version; if it is upgraded again, names of containers removed in
//     between may resolve until they are rewritten (its start indexes
//     only what exists).
//   - Who may ask: the host itself and its containers (podnet's networks,
//     and Docker's own bridges), nobody else — neither the names nor forwarding
//     are for outsiders. That rule is enforced in nftables, by the data
//     plane's guard, not in this server; dataplane's doc.go says why (no answer to
//     forged sources, one source of truth for podnet's subnets, and it
//     holds while podnetd restarts or etcd is down).
//   - Records on disk (cache.go, Config.CacheFile): what the server
//     answers (the names and addresses it was asked for, the endpoints of
//     hosts followed whole) is saved to <data-dir>/dns-records.json,
//     0600, replaced atomically (temporary file, fsync, rename), at most
//     once a second while it changes and only once alive/ was read from
//     etcd, bounded to 65536 endpoints. At start, before etcd
//     answers, the server loads that file and answers from it (and
//     forwards everything else as usual): podnetd starts the DNS before
//     waiting for etcd, so a podnetd restarted during an etcd outage keeps
//     answering the names it knew instead of nothing. A name's saved answer
//     counts until etcd has answered for that name. The same file keeps what service
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
