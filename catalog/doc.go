// Package catalog is the in-memory view of everything services depend
// on: the service records, the containers they select (the selection
// index of the epmeta/ and ctrmeta/ records package dockerwatch writes), the hosts' underlay
// addresses and their liveness. podnetd runs one Catalog; the proxy agent
// (package proxy) computes this host's rules from it, the cluster DNS
// (package clusterdns) answers service names from it, and a one-shot
// copy (Load) answers `podnetctl service get` (package registry).
//
// It knows nothing of the data plane: it hands out service records and
// their ready endpoints (ServiceState), and the agent turns them into the
// data plane's services. The LoadBalancer announcers (package lbannounce)
// read LoadBalancers (each address, its policy, the hosts with a ready
// endpoint) and wake on Subscribe, a channel of their own beside the
// agent's Changed.
//
// # Design notes
//
//   - Endpoints. A service selects the running containers, on any host,
//     whose labels carry every selector term (so Compose's own labels
//     work). A container on a podnet network is reached at its address
//     (the lowest one of the service's family if it has several), a --net
//     host container at its host's underlay address, a --net container:X
//     one at X's address. An endpoint is ready when its record says the
//     container runs and passes its health check, its host is alive, and
//     its address is known; addresses are deduplicated (X and a container
//     sharing its stack are one endpoint).
//   - Reachable: a ready endpoint is programmed only on the hosts that can
//     reach it (reach.go): a single-host bridge network's only on its own
//     host, an --internal network's only there too, a macvlan/ipvlan
//     network's on every other host and on its own only with host access.
//     A host with no endpoint it can reach rejects at once (the data
//     plane's reject) instead of timing out; a ServiceState answers for
//     host self, EndpointViews says from where (Reach) when not from
//     everywhere.
//   - The registered hosts' reserved addresses (store.Host.ReservedAddrs)
//     are kept for the agent: no external IP may be one (ServiceState's
//     ReservedExternalIPs, Reserved).
//   - What feeds the catalog: services/, policies/, alive/, hosts/,
//     networks/, and containers through the selection index (sel/ep/,
//     sel/ctr/: a copy of the metadata of every container some service or
//     policy selects, written by its own host in the same transaction as
//     the metadata; store's selindex.go), plus this host's own records
//     whole (epmeta/<self>/, ctrmeta/<self>/). A container start that
//     nothing selects sends this host nothing. Its host decides with
//     Selects (this catalog's services and policies, on that host) and
//     brings its keys in line when SelectorsChanged fires (podnetd's
//     reselection). Live hosts whose podnetd keeps no selection index
//     (HostAlive.MetaLayout < 2: an older version during a rolling
//     upgrade) are followed whole (epmeta/<host>/, ctrmeta/<host>/,
//     sources.go), and Loaded waits for them; a dead host of an older
//     version is not (its containers leave the selections until it
//     returns). All prefixes come from podnetd's shared feeds (package
//     feed: the overlay and the cluster DNS read alive/ and hosts/ from
//     the same follower, so a host is alive for all of them at once);
//     indexes by label term, by host and by
//     shared stack turn each event into the few services it can affect,
//     which it marks dirty (with the write time of the oldest change) for
//     the agent to take (TakeDelta). A rewrite with a new timestamp, or a
//     change to a container no service selects, marks nothing.
//   - The catalog owns its lock. Readers get copies taken under it
//     (snapshot.go): one service's state (Lookup: its record and ready
//     endpoints), all of them (Snapshot), or the states of the services
//     marked since the last TakeDelta, all consistent with one instant of
//     the view; none of them sees the maps behind it.
//   - Network policies (selections.go). The catalog also follows
//     policies/ and registers every label selector a policy uses (its
//     podSelector and its peers') as a selection, under the selector's
//     anchor (policy.Anchor) in the same label-term index services use: a
//     container change marks dirty only the selections its old or new
//     labels anchor (and those without an anchor), and the policy agent
//     takes them with their addresses (TakePolicyDelta; PolicyChanged is
//     its own signal, apart from the proxy agent's). Selections hold every
//     container on a podnet network, ready or not, on any host, alive or
//     not (a host that stops renewing its lease may still run its
//     containers).
//   - etcd down: the catalog keeps its last view, so the agent's rules and
//     the DNS answers stay.
package catalog
