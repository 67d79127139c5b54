// Package service is podnet's service layer:
//
//   - Watcher follows the Docker API of its host and keeps, for every
//     endpoint on a podnet network, the container's name, network aliases,
//     labels, addresses and readiness in etcd (epmeta/<host>/<endpoint>),
//     and for every --net host or --net container:X container its labels,
//     readiness and X (ctrmeta/<host>/<container>).
//   - DNS is the cluster DNS server: it answers container names (and their
//     network aliases) of every host from those records, answers PTR for
//     their addresses, answers service names (dns_services.go), and
//     forwards everything else to the host's upstream resolvers.
//   - Registry (podnetctl service, apply -f, delete -f) creates, updates
//     and removes service objects: one validator (ServiceRange.Validate)
//     for flags and files, VIPs from the service CIDR and NodePorts from
//     30000-32767 claimed by compare-and-swap.
//   - Catalog is the in-memory view of services, the containers they may
//     select, hosts and liveness; Proxy, the proxy agent, turns it into the
//     data plane's []portmap.Service through a Programmer.
//
// # Services: design notes
//
//   - One transaction per change. A service's record, its VIP claim
//     (svcips/<hex ip>) and its NodePort claims (nodeports/<port>) are
//     written, changed and deleted together, conditioned on the claims
//     being absent (and, for an update, on the record's revision). Two
//     hosts can therefore never hand out the same VIP or NodePort, a failed
//     create leaves nothing, and rm frees everything at once. VIPs are
//     picked from a random offset (as Kubernetes does) so concurrent
//     creates rarely collide; a collision is retried, a VIP or NodePort the
//     request asked for is refused naming its owner.
//   - The service CIDR is a cluster fact (servicecidr): the first podnetd
//     records its --service-cidr, later ones must agree or refuse to start,
//     because hosts with different ranges would program different VIPs.
//     It may not overlap a pool, in either direction: recording it is
//     conditioned on the pools listed, and IPAM refuses new pools (and
//     skips auto pools) inside it. Its network address, .1, .10 (the
//     cluster DNS), the configured DNS address and the broadcast address
//     are never handed out.
//   - External IPs (externalip.go) take traffic for an address on every
//     host, so they are a privilege: only from the cluster's allow-list
//     (--external-ip-cidrs, a cluster fact recorded like the service CIDR),
//     never an address podnet or the underlay lives on (hosts' underlay
//     addresses, networks and gateways from their host records, etcd
//     members from etcd's member list, pools). Each external IP's port and
//     protocol is a claim (externalips/), written in the service's
//     transaction like its VIP and NodePorts. The agent applies the rules
//     it can check without etcd (allow-list, service CIDR, the hosts it
//     follows) again to what it programs, so a record written by hand
//     cannot capture them either; the data plane keeps podnet's control
//     traffic out of every NAT (portmap's guard).
//   - NodePorts and -p host ports are one space per host: the registry
//     refuses (and never allocates) a NodePort that a container publishes
//     on any host (endpoint records carry their ports), naming it; the
//     data plane refuses -p on a NodePort and leaves a NodePort out where
//     a -p or a host process holds the port first.
//   - A service the data plane programs only in part (an element another
//     service holds, a NodePort a local port holds) is reported by
//     ServiceStatus like one it cannot program; such errors are settled
//     (ErrServiceInvalid, ErrServiceConflict): the agent does not retry
//     them every second, and reports and logs them once per change.
//   - Files are parsed by podnetd (one parser and one validator whatever
//     the client): unknown fields are refused with their line, values of
//     the wrong type with theirs; a whole file is validated and checked
//     against the claims of other services before anything is written, so
//     a bad file changes nothing. Updates keep the VIP (immutable, as in
//     Kubernetes) and the NodePort of each unchanged port. The status that
//     `service get -o yaml` prints is ignored by apply, so the output can
//     be applied again.
//   - Endpoints. A service selects the running containers, on any host,
//     whose labels carry every selector term (so Compose's own labels
//     work). A container on a podnet network is reached at its address
//     (the lowest one of the service's family if it has several), a --net
//     host container at its host's underlay address, a --net container:X
//     one at X's address. An endpoint is ready when its record says the
//     container runs and passes its health check, its host is alive, and
//     its address is known; addresses are deduplicated (X and a container
//     sharing its stack are one endpoint).
//   - The agent. Five store.Follow loops feed the catalog (services/,
//     epmeta/, ctrmeta/, alive/, hosts/); indexes by label term, by host
//     and by shared stack turn each event into the few services it can
//     affect. The agent waits for the first complete view, hands the whole
//     set over with SetServices (and again on its resync timer), then
//     recomputes the marked services and calls UpsertService or
//     DeleteService only for those whose result changed: a rewrite with a
//     new timestamp, or a change to a container no service selects, costs
//     the data plane nothing. A burst of changes (a host with endpoints of
//     many services dies, a resync) is handed over as one SetServices
//     instead (batchAt): each call is a netlink batch of its own that
//     waits for a kernel RCU grace period, so 1000 single calls took 13 s
//     where one SetServices programming the same difference took 50 ms. Headless services have no rules and are not
//     passed. The time from a change's etcd write (its record's timestamp)
//     to the data plane having taken it is kept per host
//     (podnetctl service agent), as is how long the last SetServices took
//     (after a restart: the one batch replacing the previous podnetd's
//     rules, benchmark B14). A service the data plane cannot program
//     is reported by ServiceStatus; the agent keeps svcstatus/<host>/<name>
//     equal to those errors, and `service get` shows them for live hosts.
//   - etcd down: the catalog keeps its last view, so rules and DNS answers
//     stay; writes (service create) start with a 2 s probe and fail naming
//     etcd.
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
//     (after a backoff), plus a periodic one as a safety net. A stream
//     lost because Docker went away is not retried with a growing backoff
//     (which reached 30 s, keeping a restarted dockerd's containers out of
//     their services for that long): the watcher pings Docker every 250 ms
//     and reconnects, and resyncs, as soon as it answers.
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
//     from etcd replaces what was loaded. The same file keeps what service
//     names answer (VIP, ports, a headless service's ready endpoints;
//     dns_cache_services.go), saved when the catalog changes and answered
//     until the catalog has read etcd once: the restarted podnetd's proxy
//     rules stay in the kernel meanwhile, so a name that resolves also
//     connects.
//   - Forwarding: UDP first, TCP when the answer was truncated, 2 s per
//     upstream, each upstream in turn starting with the last one that
//     answered; SERVFAIL when none answers. Upstreams default to the
//     nameservers of /etc/resolv.conf minus our own address and 127.0.0.11
//     (which would loop).
package service
