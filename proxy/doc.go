// Package proxy is the service proxy agent of one host: it turns the
// catalog (services, endpoints, hosts) into the data plane's services
// (dataplane.Service; a LoadBalancer service's address is one more of
// its external addresses, unless it is a host's own) and hands every change to the data plane through a
// Programmer (the dataplane Engine), and it reports what it could not
// program in etcd (svcstatus/<host>/<name>).
//
// # Design notes
//
//   - The agent waits for the catalog's first complete view, hands the
//     whole set over with SetServices (and again on its resync timer),
//     then recomputes the services the catalog marked and calls
//     UpsertService or DeleteService only for those whose result changed:
//     a change that leaves a service's data-plane view as it was costs the
//     data plane nothing. A burst of changes (a host with endpoints of
//     many services dies, a resync) is handed over as one SetServices
//     instead (batchAt): each call is a netlink batch of its own that
//     waits for a kernel RCU grace period, so 1000 single calls took 13 s
//     where one SetServices programming the same difference took 50 ms.
//     Headless services have no rules and are not passed.
//   - The time from a change's etcd write (its record's timestamp) to the
//     data plane having taken it is kept per host (podnetctl service
//     agent), as is how long the last SetServices took (after a restart:
//     the one batch replacing the previous podnetd's rules, benchmark
//     B14).
//   - A service the data plane cannot program, or programs only in part
//     (an element another service holds, a NodePort a local port holds),
//     is reported by ServiceStatus; the agent keeps svcstatus/<host>/<name>
//     equal to those errors (status.go), and `service get` shows them for
//     live hosts. A failed change is marked dirty again in the catalog and
//     retried a second later; a settled one (ErrServiceInvalid,
//     ErrServiceConflict: nothing changes until a service does) is not, so
//     it is logged once per change, not every second.
//   - External IPs of a record are programmed only where the cluster's
//     rules allow them (Config.ExternalIPOK: --external-ip-cidrs and the
//     service CIDR; the catalog's Reserved: the registered hosts'
//     addresses): a record written by hand, or by an older podnetd,
//     cannot take them either. Those left out are in the status.
package proxy
