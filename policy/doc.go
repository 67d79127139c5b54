// Package policy is the compiled model of network policies: Kubernetes'
// NetworkPolicy semantics over Docker labels, as a pure function from the
// policies and the endpoints to enforce on (with the addresses each label
// selector selects) to, per endpoint and direction, the group of rules
// that guards it and the address sets those rules name (Compile), and the
// decision for one connection (Model.Decide). Each host's agent (package
// netpol) programs its data plane from the model of its own endpoints;
// `podnetctl policy check` compiles the model of the two ends of a
// connection with the same function and asks Decide, which walks the
// groups and sets exactly as the kernel rules do. So the check and the
// data plane cannot disagree.
//
// # Design notes
//
//   - Semantics (Kubernetes'). An endpoint is isolated for ingress
//     (egress) when some policy with that policy type selects its
//     container; it then accepts (sends) only what a rule of one of those
//     policies allows, and policies add up. A rule allows traffic from
//     (to) any of its peers on any of its ports; no peer means every
//     address, no port every protocol and port. A peer is a pod selector
//     (the containers with those labels, on any host and any podnet
//     network, at every address they have) or an ipBlock (a CIDR minus
//     its excepts, as address ranges). Replies of allowed connections and
//     traffic a container sends to itself are never filtered (the data
//     plane accepts established connections first, and self traffic
//     through a self set). A label selector is Kubernetes' matchLabels
//     plus matchExpressions (In, NotIn, Exists, DoesNotExist); {} selects
//     every container. Docker has no namespaces: a Compose project is
//     selected through its label, com.docker.compose.project.
//   - Unknown labels fail closed. A Target whose labels are not known
//     yet (a container that just started) is pending: isolated in every
//     direction some policy has, with no rule allowing anything, until
//     they are known. Any selector could match an unknown label set, so
//     nothing less is safe.
//   - Groups. Endpoints isolated by the same policies in one direction
//     share one Group (its ID is a hash of the direction and the policy
//     names), so the number of rule chains follows the distinct policy
//     combinations in use, not the endpoints. A group's rules are its
//     policies' rules in policy name order.
//   - Address sets are shared. A pod selector's set is identified by the
//     selector's canonical text (Key): every policy using the same
//     selector names the same set. An ipBlock's is identified by its
//     ranges. Only the sets the compiled groups name are in the model.
//   - Cost. Index prepares the policies once per change: sorted, each
//     under its selector's anchor (Anchor: one matchLabels term, an In
//     requirement's terms or an Exists key that every container it selects
//     must carry; selectors without one are universal), so the policies
//     an endpoint may match are found through its labels, not by trying
//     every policy. A host's pass with 1000 policies compiles in about
//     0.1 ms (BenchmarkCompile1000). The same anchors index selections in
//     the catalog.
//   - --net container:X containers are X as far as policy goes (they
//     have no address of their own); --net host containers are their
//     host (not selected, not peers: an ipBlock names the host).
package policy
