package store

// PodnetSchema is the schema this build of podnet reads and writes.
//
// Version 1 is the layout in keys.go as it was when podnet started
// versioning its data (data without SchemaKey is version 1). No migration
// exists yet.
//
// Adding one: make the layout change, raise Current, and append
// Migration{To: Current, Name: "what changes", Apply: ...}. The rules:
//
//   - Every host runs the migration's new podnetd only after its own restart,
//     one host at a time: while a cluster is being upgraded, podnetds of the
//     previous version keep running against the migrated data. A migration
//     must therefore leave the data usable by the previous version: add keys
//     and fields (old binaries ignore unknown ones), keep writing the old
//     ones, and remove them only in a later version, once no binary of the
//     version that needed them can still be running (expand, then contract).
//   - Apply reads and writes through its MigrationTx only and is
//     deterministic: it may run several times (a concurrent write makes the
//     commit fail and the whole run is planned again) and must produce the
//     same writes from the same data.
//   - Everything of one run, all steps from the version found to Current,
//     commits in one etcd transaction: it must fit etcd's --max-txn-ops
//     (default 128 writes and 128 conditions; a listing costs one condition)
//     and --max-request-bytes (default 1.5 MiB). A migration that cannot
//     fit must be split into versions, or done by a podnetctl command.
//   - Test it in schema_test.go's style: data of the old version written as
//     the old code wrote it, EnsureSchema, the new layout asserted.
//
// Not every addition needs a version. Exception records (exceptions.go)
// are an addition older podnetds ignore, their count is unbounded (one
// per borrowed address, more than one transaction may hold), and newer
// podnetds repair them continuously while older ones write addresses
// without them; so MigrateExceptions runs outside this transaction, once
// per cluster (IPAMLayoutKey), and the layout each host keeps is in its
// liveness record (HostAlive.IPAMLayout) rather than in SchemaKey.
var PodnetSchema = Schema{Current: 1}
