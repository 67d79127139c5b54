// Package metrics is podnet's one list of Prometheus series: every
// collector podnetd exports is declared in metrics.go, with its help text,
// and nowhere else. Packages record into them with one line at the spot
// that does the work (metrics.PluginRequests.WithLabelValues(...).Inc(),
// or a small helper of this package); NewRegistry gathers them, with the
// Go runtime and process collectors and podnet_build_info, into a registry
// of its own, and Serve exposes it on --metrics-addr.
//
// # Design notes
//
//   - One place. A series is one line in metrics.go (name, help, labels);
//     adding one is that line plus the line that records into it. The
//     registration test walks the same list, so a new series is checked
//     (valid name, unit suffix, help, bounded labels) without touching
//     the test.
//   - Package-level collectors, private registry. Metrics are process-wide
//     by nature, and threading a recorder through every constructor would
//     put a change into every package's Config for nothing. The collectors
//     are therefore package variables, as in kube-proxy, but they are never
//     registered with Prometheus's global default registry: NewRegistry
//     builds a fresh one each call, so tests can register everything again
//     and lint it, and nothing a library registers globally leaks into
//     podnet's endpoint. Tests of the instrumented packages compare values
//     before and after the code ran (testutil.ToFloat64), so they do not
//     depend on what other tests recorded.
//   - Bounded labels. A label value is always one of a small closed set
//     (methods of the plugin API, outcomes, kinds, gRPC codes) or a pool
//     (subnet): pools are few and long-lived. Never a container, endpoint,
//     network ID, address or host name: those grow without bound and
//     belong in logs. Values podnet does not recognise are folded into
//     "other".
//   - State gauges that podnet keeps in memory anyway (IPAM blocks and
//     addresses per pool) are read at scrape time through a source function
//     the owning package provides (SetIPAMUsage), so a pool that goes away
//     disappears from the output instead of leaving a stale series. Gauges
//     of work that happens in passes (overlay routes, nftables map
//     elements) are set at the end of each pass.
//   - Base units (seconds, counts) and Prometheus naming: podnet_<area>_
//     <what>_<unit>, counters end in _total.
//   - Exposure. The listener defaults to 127.0.0.1:9477: loopback is not
//     reachable from other machines, nor from containers (podnet's nftables
//     table drops packets to 127.0.0.0/8 that arrive on a podnet bridge,
//     where route_localnet would otherwise let them in). Any other address
//     is served as asked, with a warning at start: a metrics endpoint tells
//     whoever reads it the pools, request rates and errors of the host.
//     Serve never stops podnetd: a metrics port taken by another process is
//     logged and retried, the way kube-proxy does, because the data plane
//     matters more than its numbers.
package metrics
