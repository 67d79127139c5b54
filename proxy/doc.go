// Package proxy is the service proxy agent of one host: it turns the
// catalog (services, endpoints, hosts) into the data plane's services
// (dataplane.Service; a LoadBalancer service's address is one more of its
// external addresses, unless it is a host's own) and hands every round of
// changes to the data plane as one change set (dataplane.Change) through
// a Programmer (the dataplane Engine), and it reports what it could not
// program in etcd (svcstatus/<host>/<name>).
//
// # Design notes
//
//   - One change set per round. The agent waits for the catalog's first
//     complete view and hands the whole set over as one Replace (and again
//     on its resync timer: the data plane compares it with the kernel, so
//     nothing that is right is rewritten). After that every round takes
//     what the catalog marked (TakeDelta: the states of the changed
//     services, copied under the catalog's lock), keeps the services whose
//     data-plane view changed, and hands them over as one Change, one
//     nftables transaction: a burst (a host with endpoints of many
//     services dies, a file of 1000 services is applied) costs one
//     transaction of what it touches, a single change the same path with
//     one service in it. There is no threshold between the two. Headless
//     services have no rules and are not passed.
//   - The data plane's Result says, per service, whether it is
//     programmed, or only in part (an element another service holds, a
//     NodePort a local port holds): conflicts stay with the data plane (it
//     retries them when an address or port is freed, and at every
//     resync), a service whose rules the kernel refused is handed back to
//     the catalog and retried a second later.
//     The agent keeps svcstatus/<host>/<name> equal to those errors
//     (status.go), all of a round's writes in one etcd transaction, and
//     `service get` shows them for live hosts.
//   - Observability (metrics.go, kube-proxy's series under podnet_proxy_):
//     round durations by kind, the time from each change's etcd write
//     (its record's timestamp) to its rules being live
//     (podnet_proxy_network_programming_duration_seconds; also `podnetctl
//     service agent`), the last successful round, pending changes, and
//     services programmed and failing. Healthy (podnetd's /healthz) says
//     whether changes wait longer than a bound.
//   - External IPs of a record are programmed only where the cluster's
//     rules allow them (Config.ExternalIPOK: --external-ip-cidrs and the
//     service CIDR; the catalog's ReservedExternalIPs: the registered
//     hosts' addresses): a record written by hand, or by an older podnetd,
//     cannot take them either. Those left out are in the status.
package proxy
