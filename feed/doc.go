// Package feed shares etcd's prefixes among the readers of one podnetd:
// one store.Follow per prefix, whatever the number of readers, fanned out
// to each of them in the same order. The overlay, the service catalog and
// the cluster DNS all read hosts/, alive/ and epmeta/ (the load-balancer
// announcer and the named-network sync read prefixes of their own through
// it too, so that /healthz covers every view); through a Hub they
// see the same listing and the same changes, so a host is alive (its
// alive/<host> key exists) at the same moment for all of them, and etcd
// serves one watch per prefix instead of one per reader.
//
// # Design notes
//
//   - A reader is a store.Follower, as it would be for store.Follow:
//     Subscribe hands it a Snapshot of what the feed holds (at once when
//     the prefix was listed already, so readers may come and go: the
//     overlay subscribes to a pool's keys while a network uses the pool)
//     and then every Changes. A feed keeps the prefix's current keys for
//     those late readers (without KV.Lease: changes do not carry it);
//     it follows while it has readers and stops with the last one.
//     Deliveries of a feed are serialized and a reader's callbacks must be
//     quick (they update its own view and signal its loop). Subscribing
//     and cancelling never call a reader nor wait for a delivery (a late
//     reader's snapshot comes from another goroutine, before any change),
//     so a reader may do both while holding the lock its own callbacks
//     take, as the overlay does when a network starts or stops using a
//     pool; a delivery under way may still reach a cancelled reader.
//   - Sources. A Hub reads through a Source, today the store itself. A
//     prefix whose readers will ask on demand instead of holding every
//     key (container names looked up when asked, services selecting
//     through label indexes) gets a Source of its own (SetSource) without
//     its readers changing: they still see snapshots and changes of what
//     they asked for.
//   - Freshness. A feed notes when it last heard from etcd: a listing, a
//     change, or a progress notification (the store asks for one every
//     5 s, and etcd answers only on a connected,
//     caught-up watch). Stale names the prefixes that heard nothing for
//     longer than a bound: podnetd's /healthz fails on them, because a
//     view that stopped following etcd keeps serving its last state
//     (which is right during an outage, and what an operator must know).
package feed
