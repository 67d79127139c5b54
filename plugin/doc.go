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
//   - Request bodies have a read deadline (Options.BodyTimeout, 10 s),
//     set per request on the connection (body.go says why not
//     http.Server.ReadTimeout): a client that never finishes a body is
//     answered 408 and disconnected instead of holding a connection.
//     There is no idle timeout on purpose: dockerd's plugin client never
//     re-sends a POST correctly once it was written (below), so a server
//     that closes an idle connection just as dockerd reuses it would turn
//     a healthy call into a failed one.
//   - A call that needs a body and has none is dockerd's own retry:
//     moby's plugin client (pkg/plugins, callWithRetry) re-sends a call
//     whose connection failed — podnetd killed or restarted mid-call —
//     from the bytes.Buffer the first attempt drained, i.e. with
//     Content-Length 0, for up to 30 s. podnet cannot know what the first
//     attempt asked for, so it does nothing and answers (HTTP 200, so
//     dockerd shows the text) that podnetd stopped during the call and
//     the docker command should be run again; releases dockerd only logs
//     are completed by garbage collection. TestDockerdRetryAfterPodnetdDiedMidCall
//     drives moby's client itself to pin this down.
//   - One log line per request: method, network, endpoint, duration, error.
//   - Swarm-only calls (AllocateNetwork, FreeNetwork) and discovery
//     notifications are answered here: AllocateNetwork echoes the user's
//     options so workers receive them, the rest are no-ops.
package plugin
