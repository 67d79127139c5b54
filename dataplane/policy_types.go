package dataplane

import "net/netip"

// Policy is this host's network policy state as the data plane needs it:
// which rule group guards each local endpoint in each direction, the
// groups' rules, and the address sets the rules name. The policy agent
// (package netpol) builds it from the compiled model (package policy).
type Policy struct {
	Endpoints []PolicyEndpoint
	// Groups are the rule groups, each shared by every endpoint the same
	// policies isolate in the same direction.
	Groups []PolicyGroup
	// AddrSets are the address sets of pod selectors, by ID; RangeSets
	// those of ipBlocks (CIDRs minus excepts).
	AddrSets  map[string][]netip.Addr
	RangeSets map[string][]AddrRange
	// Policies names every policy: each gets a denied-packet counter per
	// direction (metrics), whether or not it selects an endpoint here.
	Policies []string
	// Log sends denied packets to the policy log (NFLOG group PolicyLogGroup),
	// at most PolicyLogRate a second per direction.
	Log bool
}

// PolicyEndpoint is one local endpoint on a podnet bridge or vxlan
// network: the group guarding each direction, "" when no policy isolates
// it there, or PolicyPending while its container's labels are unknown
// (everything new is dropped: it is isolated before it runs).
type PolicyEndpoint struct {
	Addrs           []netip.Addr
	Ingress, Egress string
}

// PolicyPending isolates an endpoint whose labels are not known yet.
const PolicyPending = "pending"

// PolicyGroup is the rules of one set of policies in one direction:
// traffic any rule matches passes, the rest is counted against each of
// Policies and dropped.
type PolicyGroup struct {
	ID       string
	Egress   bool
	Policies []string
	Rules    []PolicyRule
}

// PolicyRule passes traffic from (ingress) or to (egress) an address in
// one of Peers (IDs of AddrSets or RangeSets; none: any address) on one
// of Ports (none: any protocol and port).
type PolicyRule struct {
	Peers []string
	Ports []PolicyPorts
}

// PolicyPorts is First..Last of Proto; 0..65535 is the whole protocol.
type PolicyPorts struct {
	Proto       Proto
	First, Last uint16
}

// AddrRange is First..Last, inclusive, of one family.
type AddrRange struct{ First, Last netip.Addr }

// The policy log: denied packets go to this NFLOG group, rate-limited.
const (
	PolicyLogGroup = 1742
	PolicyLogRate  = 10 // packets a second, per direction
	// PolicyLogPrefixIn and PolicyLogPrefixOut start the log prefix of a
	// packet denied by an ingress or egress group.
	PolicyLogPrefixIn  = "podnet-deny-in"
	PolicyLogPrefixOut = "podnet-deny-out"
)
