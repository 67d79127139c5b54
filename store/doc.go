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
//   - Every call carries a deadline (Config.RequestTimeout, default 5 s) on
//     top of the caller's context. Plugin handlers run while dockerd waits,
//     so an unreachable etcd must turn into a quick error that names the
//     endpoints, never into a hung `docker run`.
//   - Errors callers branch on are sentinels: ErrNotFound, ErrExists,
//     ErrConflict, ErrUnavailable. Everything else is wrapped with %w and
//     names the key.
//   - Persistent facts (pools, blocks, addresses, networks, endpoints) are
//     plain keys. Liveness facts (a host being up) are bound to a lease that
//     KeepAlive renews; they vanish on their own when a host dies. Nothing
//     persistent ever hangs on a lease.
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
//     from every member's client and peer ports (portmap's guard).
//   - Only this package imports go.etcd.io/etcd; the rest of podnet sees
//     Store, KV, Event, Cmp and Op.
package store
