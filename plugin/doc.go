// Package plugin serves the Docker plugin socket: one HTTP mux for
// Plugin.Activate and every NetworkDriver and IpamDriver call, because
// podnet is one plugin that is both (a managed plugin can only have one
// socket).
//
// # Design notes
//
//   - Each path is one line: decode the JSON body into the
//     go-plugins-helpers request type, call the driver through the small
//     interfaces declared here, encode the answer or {"Err": msg} (network)
//     / {"Error": msg} (IPAM) with HTTP 200, which dockerd shows to the user
//     as "remote: msg". Bodies Docker sends empty (Activate,
//     GetCapabilities, GetDefaultAddressSpaces) are never decoded.
//   - The socket is opened before anything slow (etcd, restore): dockerd
//     registers plugins and may replay IPAM or clean up stale endpoints
//     while it starts, and a plugin that does not answer costs it ~30 s per
//     call or gets a managed plugin disabled. Calls that need state wait on
//     a readiness gate, bounded, and fail with a message saying podnetd is
//     still starting.
//   - Every request runs under a deadline (Options.RequestTimeout) so no
//     dockerd call hangs on an unreachable etcd.
//   - One log line per request: method, network, endpoint, duration, error.
//   - Swarm-only calls (AllocateNetwork, FreeNetwork) and discovery
//     notifications are answered here: AllocateNetwork echoes the user's
//     options so workers receive them, the rest are no-ops.
package plugin
