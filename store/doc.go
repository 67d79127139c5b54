// Package store is podnet's only door to etcd: the client, the embedded
// single-member server, the key layout (keys.go), the record types shared by
// ipam and driver (records.go), and a handful of helpers that every caller
// needs — Create (compare-and-swap on absence), Update (compare-and-swap on
// ModRevision), Txn, List, Watch and a liveness key bound to a lease.
//
// # Design notes
//
//   - Values are JSON. Keys are given relative to the store's prefix
//     (default "/podnet/v1/"), so tests and benchmarks can share one etcd
//     without seeing each other, and the layout in keys.go reads the same in
//     code and in `etcdctl get --prefix /podnet/v1/`.
//   - Deadlines and retries (call.go). Every call carries a deadline
//     (Config.RequestTimeout, default 5 s) on top of the caller's context:
//     plugin handlers run while dockerd waits (without a timeout of its
//     own for legacy plugins, 30 s for managed ones). Within it, a call
//     survives a leader change: it is retried, on whichever member
//     answers, after etcd's transient errors (gRPC Unavailable: no leader,
//     leader changed, the server's own timeouts, a member gone), each
//     attempt cut short (1 s) so a proposal stranded on a member that has
//     not yet noticed the dead leader does not eat the whole deadline. A member without a leader refuses at once
//     (WithRequireLeader). When no endpoint can be connected at all, the
//     call fails after 400 ms naming etcd and the endpoints: dockerd sends
//     container starts one after another, so a dead etcd must cost each
//     well under a second. Each call first asks gRPC to reconnect now, so
//     the first call after etcd returns succeeds.
//   - A retried write whose first attempt may have been applied (its
//     answer was lost) can find its own write: Txn then reads the keys back
//     and reports success when they hold exactly what it wrote at one
//     revision. Create never reports ErrExists for a key it created.
//   - Errors callers branch on are sentinels: ErrNotFound, ErrExists,
//     ErrConflict, ErrUnavailable. Errors are classified by identity
//     (etcd's rpctypes values, gRPC status codes, context errors), never
//     by their text, and wrapped with %w: errors.Is reaches etcd's own
//     error. A call the caller cancelled wraps context.Canceled (or the
//     caller's DeadlineExceeded), never ErrUnavailable.
//   - Watches (Follow) resume from the last revision they saw when
//     interrupted (member restart, leader change, outage), as flannel's
//     do; only a revision etcd compacted away leads to a new listing and a
//     fresh Snapshot. WatchStats counts listings and resumes.
//   - Freshness. Every 5 s (Config.ProgressInterval) the store asks etcd
//     for a progress notification on its watches; a ProgressFollower hears
//     it, so a quiet prefix is told from one that stopped hearing from
//     etcd (package feed's Stale, podnetd's /healthz). etcd answers only
//     when every watch of the stream starts at or below its current
//     revision: a watch therefore starts at the revision its follower
//     already has (dropping that revision's changes, which it has), and
//     one that hears nothing for three intervals is started again from
//     there (the client's own resume after a broken stream starts one
//     above, and would stay silent until the next write).
//     A progress notification is a sign of life, never a position: etcd
//     before 3.4.25 and 3.5.8 (Debian 12 ships 3.4.23) answers a requested
//     progress on every watch of the stream with the store's current
//     revision, also on a watch still being sent older changes
//     (etcd-io/etcd#15220). Taking it as the follower's revision dropped
//     those changes as already seen (found at 5000 hosts: a tenth of the
//     liveness keys never reached a host; TestFollowLosesNothingToProgress
//     runs against this machine's etcd binary). So only changes move a
//     watch's revision, and a resume of a prefix quiet for longer than
//     etcd keeps history lists it again. What podnet cannot fix: etcd's
//     client resumes a broken stream on its own from such a notification's
//     revision, so with an affected etcd a member failing while a watch is
//     behind can still lose changes; use etcd 3.4.25, 3.5.8 or newer.
//   - Persistent facts (pools, blocks, addresses, networks, endpoints) are
//     plain keys. Liveness facts (a host being up) are bound to a lease that
//     its holder renews (KeepLease; package hostid holds a host's); they
//     vanish on their own when a host dies. Nothing persistent ever hangs
//     on a lease.
//   - The data carries a schema version (SchemaKey; absent = 1, the layout
//     before versioning). podnetd calls EnsureSchema before it reads any
//     record: newer data is refused with both versions named, older data
//     is migrated in one transaction guarded by everything the migration
//     read, so concurrent starts commit it once (schema.go; the list and
//     the rules for writing a migration are in migrations.go).
//   - Records hold addresses and prefixes as netip.Addr and netip.Prefix,
//     whose JSON is their text form ("10.1.0.7", "10.1.0.0/16"), so the
//     bytes in etcd are the ones earlier versions wrote as strings (a test
//     decodes and re-encodes them byte for byte). A malformed value fails
//     KV.Decode with an error naming the key, instead of becoming a zero
//     field a caller would silently skip. Zero values are omitted where the
//     string was (omitzero for omitempty). Keys under ipam/<pool>/ are
//     parsed by one function, ParseIPAMKey.
//   - Indexes of the container metadata (dnsindex.go, selindex.go): a
//     name index for the cluster DNS and a selection index for the
//     service catalogs, written by the container's own host in the same
//     transaction as its metadata (WriteEndpointMeta, WriteContainerMeta),
//     so that other hosts read only what they need (a name they were
//     asked, the containers a service or policy selects) instead of
//     every container of the cluster. HostAlive.MetaLayout says which
//     indexes a host keeps; readers follow a host's metadata whole while
//     it says none (an older podnetd).
//   - Only podnet writes podnet's etcd. The embedded member serves clients
//     on a unix socket in its data directory (made 0700, the socket 0600),
//     so a local user who is not root cannot connect at all; its peer
//     port (loopback TCP, which etcd requires even for one member, and
//     which takes raft messages) is TLS with client-certificate
//     authentication against a CA podnetd makes in <data-dir>/pki
//     (embedded_tls.go). External clusters are the operator's: TLS with
//     --client-cert-auth, certificates from scripts/etcd-certs.sh;
//     podnetd warns at start when it talks to etcd without TLS or without
//     a client certificate. MemberURLs lets podnetd keep containers away
//     from every member's client and peer ports (the data plane's guard).
//   - Only this package imports go.etcd.io/etcd; the rest of podnet sees
//     Store, KV, Event, Cmp and Op.
package store
