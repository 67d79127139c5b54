// Package netpol is the network policy agent of one host: it compiles the
// policies for this host's endpoints (package policy) from the catalog's
// view (the policies and the addresses their selectors select, on every
// host) and what it learns in process (new endpoints from the driver,
// containers' labels from the Docker watcher), and hands the result to the
// data plane (the policy section of podnet's nftables table, package
// dataplane), which programs only the difference. With --policy-log it
// also logs the packets the data plane denies (nflog.go).
//
// # Design notes
//
//   - Where. Ingress is enforced on the destination's host, egress on the
//     source's host: each host programs rules for its own endpoints only,
//     and peers are address sets. Endpoints on podnet bridge and vxlan
//     networks are enforced (their traffic crosses the host's forward and
//     input hooks; same-bridge traffic through br_netfilter, which the
//     driver makes sure of). macvlan and ipvlan endpoints are not: their
//     traffic goes from the container to the LAN without crossing the
//     host (they are listed as not enforced, with the reason).
//   - Isolated before it runs. Docker never tells the driver which
//     container an endpoint is for, nor its labels (it has no container
//     ID, name or labels in CreateEndpoint or Join); the Docker watcher
//     learns them afterwards. So the driver hands every new endpoint to
//     the agent in CreateEndpoint (and CNI attachments in Attach), before
//     the container can run, and the agent programs it as pending —
//     isolated in every direction some policy has — synchronously, before
//     CreateEndpoint returns (an error fails the container start: an
//     endpoint that could not be isolated must not run). The isolation is
//     lifted, or replaced by the endpoint's own rules, as soon as the
//     agent knows the labels, in process: from the watcher's inspect of
//     the container (no etcd round trip on that path), or earlier through
//     the connect-event shortcut (shortcut.go), which is safe by
//     construction and spares containers no policy selects any wait. While
//     no policy exists, nothing is pending (there is nothing to isolate
//     for); before the agent has read etcd once (a podnetd that just
//     started), every new endpoint is pending (IsolatePending): whether
//     policies exist is unknown. A label-less container whose labels never
//     arrive stays isolated: fail closed.
//   - Peers fail closed too. Policies only allow, so an address missing
//     from an allow set is denied: a new container's address is denied
//     by other hosts' rules until their catalog has its record (etcd
//     watch; about as fast as a service endpoint, B16), never allowed by
//     mistake. On its own host it is in the sets as soon as the agent
//     knows its labels. An address is never allowed by a label its
//     container does not have; the residual risk is an address reused by
//     a new container before a host has seen its previous owner's record
//     go (IPAM hands addresses out round robin within a block, and every
//     host applies the records in etcd's order, so that needs a host to
//     lag by a block's worth of container starts).
//   - Cheap for the common case. The per-packet cost does not grow with
//     policies or containers (see dataplane's "Network policy"): a
//     container no policy selects has no element in the dispatch maps and
//     pays their (failed) lookups only. Each pass recompiles the whole
//     model for this host's endpoints from policies indexed once per
//     change (0.1 ms with 1000 policies) and the data plane diffs it
//     (about 1 ms of CPU with 1000 policies, BenchmarkSetPolicyOneEndpoint),
//     so a container start costs one small nftables batch.
//   - Scale. Selections come from the catalog's label index (package
//     catalog, selections.go): the agent never scans containers itself,
//     so restricting what a host holds to what its services and policies
//     select changes only the catalog's feed.
//   - etcd down and restarts. The agent keeps its last view (the catalog
//     keeps its records), and the kernel keeps the rules: a restarted
//     podnetd leaves the previous one's policy section in place until its
//     first pass, which replaces it in one transaction (conntrack is never
//     touched, so established connections survive), and isolates the
//     endpoints created meanwhile with IsolatePending.
//   - Host traffic. A container's own host reaches it whatever its
//     ingress policy (Kubernetes: traffic from the node is allowed; health
//     checks need it): the host's own connections never cross the forward
//     hook. The reverse is not exempt: a container isolated for egress
//     reaches its host (the cluster DNS included, 10.96.0.10 on the host's
//     lo) only where a rule allows it, as with Calico and Cilium. Traffic
//     from other hosts is judged by the address it arrives with: through a
//     service VIP a container's own address (no source NAT between
//     containers), for NodePort, external-IP and LoadBalancer traffic
//     forwarded to another host that host's tunnel address (see dataplane's "Services
//     across hosts"), and so for the other host's own processes (see
//     overlay's "This host's own traffic"; over direct routing in clear
//     they arrive with its underlay address).
package netpol
