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
// service CIDR itself (cidr.go). Objects of other kinds that `apply -f`
// will take (load-balancer pools, BGP peers) belong here too. A file may
// mix kinds (an object without kind is a service); it is validated whole
// before anything is written.
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
//     create leaves nothing, and rm frees everything at once. VIPs are
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
//   - Files are parsed by podnetd (one parser and one validator whatever
//     the client): unknown fields are refused with their line, values of
//     the wrong type with theirs; a whole file is validated and checked
//     against the claims of other services before anything is written, so
//     a bad file changes nothing. Updates keep the VIP (immutable, as in
//     Kubernetes) and the NodePort of each unchanged port. The status that
//     `service get -o yaml` prints is ignored by apply, so the output can
//     be applied again.
//   - etcd down: every write starts with a 2 s probe and fails naming
//     etcd, instead of waiting on a client that cannot answer.
package registry
