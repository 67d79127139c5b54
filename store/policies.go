package store

import (
	"net/netip"
	"time"
)

// Keys of network policies, relative to the prefix (default /podnet/v1/),
// part of the on-disk layout (keys.go): never rename one without a
// migration.
//
//	policies/<name>    NetworkPolicy    a network policy object
//
// A policy is one record: it claims nothing, so it is created, changed
// and deleted with one put or delete, conditioned on its revision.

// PoliciesPrefix lists every network policy.
const PoliciesPrefix = "policies/"

// PolicyKey is one network policy.
func PolicyKey(name string) string { return PoliciesPrefix + name }

// Policy types (Kubernetes' spelling).
const (
	PolicyIngress = "Ingress"
	PolicyEgress  = "Egress"
)

// Label selector operators (Kubernetes' spelling).
const (
	OpIn           = "In"
	OpNotIn        = "NotIn"
	OpExists       = "Exists"
	OpDoesNotExist = "DoesNotExist"
)

// NetworkPolicy is a network policy as validated: Kubernetes'
// NetworkPolicy spec over Docker labels, every field in its canonical form
// (policy types filled in, protocols upper case, lists in the order the
// user gave them).
type NetworkPolicy struct {
	Name        string        `json:"name"`
	PodSelector LabelSelector `json:"podSelector"`
	PolicyTypes []string      `json:"policyTypes"`
	Ingress     []PolicyRule  `json:"ingress,omitempty"`
	Egress      []PolicyRule  `json:"egress,omitempty"`
	Created     time.Time     `json:"created"`
	// Updated moves with every change of the spec (it also dates the
	// change for convergence measurements).
	Updated time.Time `json:"updated"`
}

// LabelSelector is Kubernetes' label selector: every matchLabels term and
// every requirement must hold; an empty selector selects everything.
type LabelSelector struct {
	MatchLabels      map[string]string  `json:"matchLabels,omitempty"`
	MatchExpressions []LabelRequirement `json:"matchExpressions,omitempty"`
}

// LabelRequirement is one matchExpressions entry.
type LabelRequirement struct {
	Key      string   `json:"key"`
	Operator string   `json:"operator"` // In, NotIn, Exists, DoesNotExist
	Values   []string `json:"values,omitempty"`
}

// PolicyRule is one ingress or egress rule: traffic from (ingress) or to
// (egress) any of Peers on any of Ports. No peer means every address, no
// port every port of every protocol.
type PolicyRule struct {
	Peers []PolicyPeer `json:"peers,omitempty"`
	Ports []PolicyPort `json:"ports,omitempty"`
}

// PolicyPeer is exactly one of a pod selector (containers with those
// labels, on any host and any podnet network) or an address block.
type PolicyPeer struct {
	PodSelector *LabelSelector `json:"podSelector,omitempty"`
	IPBlock     *IPBlock       `json:"ipBlock,omitempty"`
}

// IPBlock is a CIDR minus the CIDRs of Except (each inside it).
type IPBlock struct {
	CIDR   netip.Prefix   `json:"cidr"`
	Except []netip.Prefix `json:"except,omitempty"`
}

// PolicyPort is a protocol and, optionally, a port or a port range
// (Port..EndPort); Port 0 means every port of the protocol.
type PolicyPort struct {
	Protocol string `json:"protocol"` // TCP, UDP or SCTP
	Port     uint16 `json:"port,omitempty"`
	EndPort  uint16 `json:"endPort,omitempty"`
}

// Has reports whether p has policy type t.
func (p NetworkPolicy) Has(t string) bool {
	for _, x := range p.PolicyTypes {
		if x == t {
			return true
		}
	}
	return false
}
