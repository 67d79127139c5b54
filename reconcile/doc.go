// Package reconcile holds podnetd's two agents that act on this host's
// Docker through its API: the garbage collector (Reconciler), which
// compares what podnet holds for this host (endpoint and network records,
// veths, addresses, pool references) with what Docker actually has and
// removes the difference; and NetSync, which makes this host's Docker
// networks follow the named network definitions of `podnetctl network
// create/rm`.
//
// # Design notes
//
//   - Docker does not tell a plugin about endpoints it dropped while the
//     plugin was down (the calls fail and are only logged), nor about
//     containers whose cleanup raced a dockerd crash. Reconciling against
//     the Docker API is the only reliable source of truth, so it runs at
//     start (after a short delay) and then periodically.
//   - It runs in the background and never inside a plugin request: dockerd
//     may be blocked on the plugin, and calling its API from a request
//     deadlocks both.
//   - If Docker cannot be asked, the round is skipped: an unreachable
//     daemon must never look like "nothing is live".
//   - Everything younger than the grace period is left alone, so objects
//     of a container start in progress (address requested, endpoint not yet
//     visible in Docker) are safe.
//   - Order: endpoints and networks first (driver), then addresses and pool
//     references (IPAM), so an address is freed only after nothing uses it.
//   - NetSync never acts on another host: each podnetd creates or removes
//     only its own Docker network, from the definition in etcd, retrying
//     until it succeeds. A host that was down catches up when it returns.
//     It leaves alone a Docker network of the same name that is not
//     podnet's (and says so), and removes only networks of its own driver
//     and subnet. Docker refuses to remove a network with containers, so a
//     removal started by podnetctl (which checks first) cannot strand one.
//   - A definition netspec refuses (stored before podnetctl validated
//     definitions) is not retried against Docker: NetSync logs once that no
//     host can create it and how to remove it.
package reconcile
