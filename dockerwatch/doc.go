// Package dockerwatch follows the Docker API of its host and keeps, for
// every endpoint on a podnet network, the container's name, network
// aliases, labels, addresses and readiness in etcd
// (epmeta/<host>/<endpoint>), and for every --net host or --net
// container:X container its labels, readiness and X
// (ctrmeta/<host>/<container>). Other hosts never read those records
// whole: every write carries, in the same transaction, the cluster DNS's
// name index (dns/names/, read by a host when it is asked a name) and the
// selection index (sel/: a copy for the catalogs of every host, written
// only when Config.Selects says a service or policy selects the
// container, or a selected --net container:X container shares its
// stack); store's dnsindex.go and selindex.go.
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
//   - Metadata of CNI attachments (Runtime "cni": podman's, a kubelet's)
//     is podnetd's CNI side's to write and remove: Docker does not know
//     those containers, so the watcher leaves their records alone.
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
//   - Labels longer than a selector term may be (store.ValidLabel,
//     Kubernetes' limits) are not recorded: no service could select them,
//     and a few megabytes of label would make the record too big for etcd
//     and leave the container unregistered.
//   - Hints (hints.go) for the network policy agent, in process: the
//     labels of every container (from create events, whose attributes
//     carry them, and from a listing of all containers at each resync), a
//     container's announced connection to a network (a connect event,
//     which Docker sends before the container's process starts, handed
//     over before the watcher's inspect, which blocks until the start is
//     over) and the metadata of each inspect, before it goes to etcd. The
//     agent uses them to give a new endpoint its rules without an etcd
//     round trip.
package dockerwatch
