// Package reconcile is podnetd's garbage collector: it compares what podnet
// holds for this host (endpoint and network records, veths, addresses, pool
// references) with what Docker actually has, and removes the difference.
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
package reconcile
