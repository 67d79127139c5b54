// Package hostid makes a host name belong to one podnetd process at a
// time. Every other host routes a host's blocks to the underlay address in
// hosts/<host> and considers it up while alive/<host> exists; a second
// podnetd started with the same --host-name (a cloned machine, a copied
// configuration) would silently take both over.
//
// # Design notes
//
//   - Claim, at start, before podnetd touches any state of the host:
//     alive/<host> is created bound to a fresh lease of this process, with
//     a Holder record (instance, underlay address, machine, boot ID, PID
//     namespace, PID and its start time). When it exists already, its
//     holder is either running — podnetd refuses to start, naming the host
//     and the address and machine that hold it (ErrHeld) — or gone without
//     revoking its lease (kill -9, power loss): then it is taken over with
//     a compare-and-swap on the record's revision, so two newcomers never
//     both win.
//   - Running or gone. On the same machine (same boot ID and PID
//     namespace, as with podnetd restarted after kill -9, or lab hosts that
//     are network namespaces of one machine) /proc answers at once: the
//     PID with the same start time exists or not. Elsewhere the lease
//     answers: a running holder renews it every third of its TTL, so a
//     lease that is not renewed within a third of its TTL plus a margin
//     (about 12 s with the default 30 s TTL) belongs to a holder that is
//     gone. A restart on the same machine therefore never waits.
//   - Hold keeps the lease and watches alive/<host> and hosts/<host>. A
//     record someone else overwrote or deleted while this process holds
//     the lease (etcdctl, a podnetd of a version without this check) is
//     written back at once, with a warning naming what was found. When the
//     lease itself was lost (etcd unreachable for longer than the TTL) the
//     name is claimed again the same way as at start: if another running
//     podnetd holds it by then, Hold returns its ErrHeld and podnetd stops
//     with that error rather than fight over the name or go silently dark.
//   - A lease whose first write fails is revoked at once (it would
//     otherwise linger for a TTL with nothing bound to it). A clean stop
//     does not revoke it: podnetd stopping is not the host going away —
//     its containers keep running and keep their network — so every other
//     host keeps routing to them and keeps them as service endpoints. The
//     podnetd that starts next on the machine takes the name over at once
//     (its predecessor's PID is gone), with a compare-and-swap that other
//     hosts see as an update, not as the host leaving and coming back; a
//     host stopped for good is seen down when its lease runs out
//     (--liveness-ttl), as after a crash.
package hostid
