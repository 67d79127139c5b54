// Package registry keeps podnet's objects in etcd: it creates, updates and
// removes them for podnetctl (service create/rm, apply -f, delete -f)
// through the admin API, and reads them back with their status for
// `podnetctl service get`. Network policies (kind: NetworkPolicy in a
// file: ValidatePolicy, policy_spec.go; stored as one record each under
// policies/, policies.go; shown and checked with `podnetctl policy
// get|check` on a one-shot view, policy_views.go) sit beside services,
// which have: one validator
// (ServiceRange.ValidateService) for flags and files (file.go parses
// them), VIPs from the service CIDR and NodePorts from 30000-32767
// claimed by compare-and-swap (registry.go, apply.go), and the cluster's
// service CIDR itself (cidr.go). It also keeps the LoadBalancer objects
// `apply -f` takes beside services (kind: LoadBalancerPool, kind:
// BGPPeer: one validator each in lb_spec.go, written in lbpools.go) and
// hands type LoadBalancer services their address (lb_alloc.go). A file
// may mix kinds (an object without kind is a service); it is validated
// whole before anything is written.
//
// It imports the catalog only to show a service's endpoints (a one-shot
// catalog.Load per `service get`), never the data plane.
//
// # Design notes
//
//   - One transaction per change. A service's record, its VIP claim
//     (svcips/<hex ip>) and its NodePort claims (nodeports/<port>) are
//     written, changed and deleted together, conditioned on the claims
//     being absent (and, for an update, on the record's revision). Two
//     hosts can therefore never hand out the same VIP or NodePort, a failed
//     create leaves nothing, and rm frees everything at once.
//   - Files in few transactions (batch.go). apply -f and delete -f list
//     the services and the claims once, plan every object against that
//     listing in memory (allocations included) and write whole objects in
//     transactions of up to 128 conditions and writes (etcd's default
//     --max-txn-ops): 1000 services are about 20 transactions, which every
//     host's agent then programs as a few change sets. A transaction whose
//     conditions fail (another writer was faster) is redone one object at
//     a time, with the single-object path's retries and explanations. VIPs are
//     picked from a random offset (as Kubernetes does) so concurrent
//     creates rarely collide; a collision is retried, a VIP or NodePort the
//     request asked for is refused naming its owner.
//   - The service CIDR is a cluster fact (servicecidr): the first podnetd
//     records its --service-cidr, later ones must agree or refuse to start,
//     because hosts with different ranges would program different VIPs.
//     It may not overlap a pool, in either direction: recording it is
//     conditioned on the pools listed, and IPAM refuses new pools (and
//     skips auto pools) inside it. Its network address, .1, .10 (the
//     cluster DNS), the configured DNS address and the broadcast address
//     are never handed out.
//   - External IPs (externalip.go) take traffic for an address on every
//     host, so they are a privilege: only from the cluster's allow-list
//     (--external-ip-cidrs, a cluster fact recorded like the service CIDR;
//     empty by default), never an address podnet or the underlay lives on
//     (hosts' underlay addresses, networks and gateways from their host
//     records, etcd members from etcd's member list, pools). Each external
//     IP's port and protocol is a claim (externalips/), written in the
//     service's transaction like its VIP and NodePorts; a service from
//     before the claims takes them at its next update.
//   - NodePorts and -p host ports are one space per host (published.go):
//     a NodePort that a container publishes on any host (endpoint records
//     carry their ports) is refused naming the container, and never
//     allocated. The data plane refuses -p on a NodePort, and leaves a
//     NodePort out on a host where a -p or a process holds the port first.
//   - Sizes: selector terms and labels have Kubernetes' limits
//     (store.ValidLabel); files for apply -f at most admin.MaxServiceFile.
//   - Files are parsed by podnetd (one parser and one validator whatever
//     the client): unknown fields are refused with their line, values of
//     the wrong type with theirs; a whole file is validated and checked
//     against the claims of other services before anything is written, so
//     a bad file changes nothing. Updates keep the VIP (immutable, as in
//     Kubernetes) and the NodePort of each unchanged port. The status that
//     `service get -o yaml` prints is ignored by apply, so the output can
//     be applied again.
//   - LoadBalancer addresses. A pool's CIDRs never overlap another pool,
//     the service CIDR or a podnet pool, and never hold a host's
//     underlay address or an etcd member's (an L2 pool may lie on the
//     hosts' LAN: the LAN's subnet is allowed, its hosts' addresses are
//     not); a pool is written conditioned on the pools and podnet pools
//     it was checked against, so two overlapping pools cannot both land.
//     A service's address (loadBalancerIP, or the lowest free one of the
//     first pool by name of the service's family; the first and last
//     address of an IPv4 CIDR of /30 or larger are never handed out) is
//     claimed under lbips/ in the service's own transaction, like its
//     VIP, conditioned on its pool's revision, so a pool being changed
//     or removed meanwhile fails the write. A pool holding an address a
//     service uses cannot be removed, or changed so that the address
//     falls out. The address is kept on update (left out of the file,
//     it stays) and released with the service or its type. An external
//     IP inside a pool is refused (the address is the pool's to give).
//     Peers at a host's own address, and two peers with the same address
//     for a common host, are refused. Pools and peers of a file are
//     written before its services, so a service may use a pool of the
//     same file; delete -f removes services first.
//   - etcd down: every write starts with a 2 s probe and fails naming
//     etcd, instead of waiting on a client that cannot answer.
package registry
