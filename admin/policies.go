package admin

import (
	"encoding/json"
	"errors"
	"strconv"
	"time"
)

// PolicySpec is a network policy as the operator writes it in a file for
// `podnetctl apply -f`: Kubernetes' NetworkPolicy with the spec's fields
// at the top level beside name (no metadata/spec, no namespaces: Docker
// has none). Numbers are plain ints and ports may be names, so that a bad
// value reaches the validator (and its clear error) rather than failing
// to decode.
type PolicySpec struct {
	Kind string `json:"kind" yaml:"kind"`
	Name string `json:"name" yaml:"name"`
	// PodSelector picks the containers the policy applies to, by Docker
	// label ({} selects every container). Required, as in Kubernetes.
	PodSelector *LabelSelector `json:"podSelector" yaml:"podSelector"`
	// PolicyTypes are Ingress and/or Egress; absent, Ingress, plus Egress
	// when there are egress rules.
	PolicyTypes []string            `json:"policyTypes,omitempty" yaml:"policyTypes,omitempty"`
	Ingress     []PolicyIngressRule `json:"ingress,omitempty" yaml:"ingress,omitempty"`
	Egress      []PolicyEgressRule  `json:"egress,omitempty" yaml:"egress,omitempty"`
}

// LabelSelector is Kubernetes' label selector.
type LabelSelector struct {
	MatchLabels      map[string]string      `json:"matchLabels,omitempty" yaml:"matchLabels,omitempty"`
	MatchExpressions []LabelRequirementSpec `json:"matchExpressions,omitempty" yaml:"matchExpressions,omitempty"`
}

// LabelRequirementSpec is one matchExpressions entry.
type LabelRequirementSpec struct {
	Key      string   `json:"key" yaml:"key"`
	Operator string   `json:"operator" yaml:"operator"`
	Values   []string `json:"values,omitempty" yaml:"values,omitempty"`
}

// PolicyIngressRule allows traffic from any of From (everyone when empty)
// to any of Ports (every port when empty).
type PolicyIngressRule struct {
	From  []PolicyPeerSpec `json:"from,omitempty" yaml:"from,omitempty"`
	Ports []PolicyPortSpec `json:"ports,omitempty" yaml:"ports,omitempty"`
}

// PolicyEgressRule allows traffic to any of To (everywhere when empty)
// on any of Ports (every port when empty).
type PolicyEgressRule struct {
	To    []PolicyPeerSpec `json:"to,omitempty" yaml:"to,omitempty"`
	Ports []PolicyPortSpec `json:"ports,omitempty" yaml:"ports,omitempty"`
}

// PolicyPeerSpec is exactly one of a pod selector or an address block.
type PolicyPeerSpec struct {
	PodSelector *LabelSelector `json:"podSelector,omitempty" yaml:"podSelector,omitempty"`
	IPBlock     *IPBlockSpec   `json:"ipBlock,omitempty" yaml:"ipBlock,omitempty"`
}

// IPBlockSpec is a CIDR minus the CIDRs of Except.
type IPBlockSpec struct {
	CIDR   string   `json:"cidr" yaml:"cidr"`
	Except []string `json:"except,omitempty" yaml:"except,omitempty"`
}

// PolicyPortSpec is a protocol (TCP by default) and a port, a port range
// (Port..EndPort) or, without Port, every port.
type PolicyPortSpec struct {
	Protocol string     `json:"protocol,omitempty" yaml:"protocol,omitempty"`
	Port     *PortValue `json:"port,omitempty" yaml:"port,omitempty"`
	EndPort  *int       `json:"endPort,omitempty" yaml:"endPort,omitempty"`
}

// PortValue is Kubernetes' IntOrString port: a number, or a name (which
// podnet refuses with a clear error: Docker has no named container
// ports).
type PortValue struct {
	Number int
	Name   string
}

// PortNumber is a numeric PortValue.
func PortNumber(n int) *PortValue { return &PortValue{Number: n} }

func (p PortValue) String() string {
	if p.Name != "" {
		return p.Name
	}
	return strconv.Itoa(p.Number)
}

// UnmarshalYAML takes an int or a string. (The yaml package's older
// Unmarshaler form, which needs no import of it: the CNI plugin links this
// package and nothing of YAML.)
func (p *PortValue) UnmarshalYAML(unmarshal func(any) error) error {
	if err := unmarshal(&p.Number); err == nil {
		return nil
	}
	var name string
	if err := unmarshal(&name); err != nil {
		return errors.New("port: want a number")
	}
	p.Number, p.Name = 0, name
	return nil
}

// MarshalYAML writes a number (or the name).
func (p PortValue) MarshalYAML() (any, error) {
	if p.Name != "" {
		return p.Name, nil
	}
	return p.Number, nil
}

// UnmarshalJSON takes a number or a string.
func (p *PortValue) UnmarshalJSON(b []byte) error {
	if err := json.Unmarshal(b, &p.Number); err == nil {
		return nil
	}
	return json.Unmarshal(b, &p.Name)
}

// MarshalJSON writes a number (or the name).
func (p PortValue) MarshalJSON() ([]byte, error) {
	if p.Name != "" {
		return json.Marshal(p.Name)
	}
	return json.Marshal(p.Number)
}

// PolicyView is a network policy as podnetctl shows it: the spec in its
// canonical form (`policy get -o yaml` applies back unchanged; status is
// ignored by apply) and its status.
type PolicyView struct {
	PolicySpec `yaml:",inline"`
	Status     *PolicyStatus `json:"status,omitempty" yaml:"status,omitempty"`
}

// PolicyStatus is what a policy applies to right now.
type PolicyStatus struct {
	Created time.Time `json:"created" yaml:"created"`
	Updated time.Time `json:"updated" yaml:"updated"`
	// Selected are the containers its podSelector picks, on every host.
	Selected []PolicyTargetView `json:"selected" yaml:"selected"`
}

// PolicyTargetView is one container a policy selects.
type PolicyTargetView struct {
	Host      string `json:"host" yaml:"host"`
	Container string `json:"container" yaml:"container"`
	// Addresses are the addresses its policies are enforced on.
	Addresses []string `json:"addresses,omitempty" yaml:"addresses,omitempty"`
	// Enforced is false when podnet cannot enforce policies on this
	// container (Reason says why).
	Enforced bool   `json:"enforced" yaml:"enforced"`
	Reason   string `json:"reason,omitempty" yaml:"reason,omitempty"`
}

// PolicyCheck is POST /v1/policies/check: would a connection from From to
// To on Port be allowed? From and To are container names (or IDs) or IP
// addresses; Port is PORT[/PROTO] (TCP by default).
type PolicyCheck struct {
	From string `json:"from"`
	To   string `json:"to"`
	Port string `json:"port"`
}

// PolicyVerdict answers a PolicyCheck, from the same compiled model the
// data plane is programmed from.
type PolicyVerdict struct {
	Allowed bool `json:"allowed"`
	// From and To describe what the two ends resolved to.
	From string `json:"from"`
	To   string `json:"to"`
	// Egress (the source's side) and Ingress (the destination's side)
	// say how each side decided.
	Egress  PolicySide `json:"egress"`
	Ingress PolicySide `json:"ingress"`
}

// PolicySide is one side's decision.
type PolicySide struct {
	Allowed bool `json:"allowed"`
	// Isolated is true when policies select this end for the direction;
	// Policies names them.
	Isolated bool     `json:"isolated"`
	Policies []string `json:"policies,omitempty"`
	// Rules are the rules that allow the connection ("policy ingress
	// rule 2: from podSelector app=web, port 80/TCP").
	Rules []string `json:"rules,omitempty"`
	// Reason says in words why the side allows or denies.
	Reason string `json:"reason"`
}

// PolicyAgentStatus is GET /v1/policy-agent: what this host's network
// policy agent holds.
type PolicyAgentStatus struct {
	Host     string `json:"host"`
	Synced   bool   `json:"synced"`
	Policies int    `json:"policies"`
	// Endpoints counts this host's endpoints by state: isolated (some
	// policy selects it), open (none does), pending (labels not known
	// yet: isolated both ways), unenforced (macvlan/ipvlan).
	Endpoints map[string]int `json:"endpoints"`
	// LastProgram is when the data plane last took the policy state, and
	// how long compiling and programming it took.
	LastProgram         time.Time     `json:"lastProgram,omitzero"`
	LastProgramDuration time.Duration `json:"lastProgramDuration,omitempty"`
	// Pending lists the endpoints still waiting for their labels.
	Pending []string `json:"pending,omitempty"`
}
