package admin

import (
	"errors"
	"fmt"
	"time"
)

// ServiceSpec is a service as the operator writes it: `podnetctl service
// create` builds one from its flags, and `podnetctl apply -f` files hold
// one or a list of them. Field names are Kubernetes' Service fields
// flattened to one level (no metadata/spec). Numbers are plain ints so that
// an out-of-range value reaches the validator (and its clear error) rather
// than failing to decode.
type ServiceSpec struct {
	Name     string            `json:"name" yaml:"name"`
	Selector map[string]string `json:"selector" yaml:"selector"`
	// Type is ClusterIP (default), NodePort or LoadBalancer.
	Type  string            `json:"type,omitempty" yaml:"type,omitempty"`
	Ports []ServicePortSpec `json:"ports" yaml:"ports"`
	// ClusterIP is the VIP: empty to have one allocated, "None" for a
	// headless service (DNS answers the endpoints' addresses).
	ClusterIP   string   `json:"clusterIP,omitempty" yaml:"clusterIP,omitempty"`
	ExternalIPs []string `json:"externalIPs,omitempty" yaml:"externalIPs,omitempty"`
	// LoadBalancerIP (type LoadBalancer) asks for this address of a
	// LoadBalancerPool; empty to have one allocated.
	LoadBalancerIP string `json:"loadBalancerIP,omitempty" yaml:"loadBalancerIP,omitempty"`
	// SessionAffinity is None (default) or ClientIP.
	SessionAffinity       string                 `json:"sessionAffinity,omitempty" yaml:"sessionAffinity,omitempty"`
	SessionAffinityConfig *SessionAffinityConfig `json:"sessionAffinityConfig,omitempty" yaml:"sessionAffinityConfig,omitempty"`
	// ExternalTrafficPolicy is Cluster (default) or Local.
	ExternalTrafficPolicy string `json:"externalTrafficPolicy,omitempty" yaml:"externalTrafficPolicy,omitempty"`
	// HealthCheckNodePort (Local only; default allocated from 30000-32767)
	// is where every host answers HTTP for the service: 200 with the
	// number of its local endpoints, 503 with none (kube-proxy's
	// healthCheckNodePort), so an outside load balancer picks hosts with
	// endpoints.
	HealthCheckNodePort int `json:"healthCheckNodePort,omitempty" yaml:"healthCheckNodePort,omitempty"`
}

// ServicePortSpec is one port of a ServiceSpec.
type ServicePortSpec struct {
	Name string `json:"name,omitempty" yaml:"name,omitempty"`
	// Protocol is TCP (default), UDP or SCTP, any case.
	Protocol string `json:"protocol,omitempty" yaml:"protocol,omitempty"`
	Port     int    `json:"port" yaml:"port"`
	// TargetPort is the port on the endpoints (default: Port).
	TargetPort int `json:"targetPort,omitempty" yaml:"targetPort,omitempty"`
	// NodePort (types NodePort and LoadBalancer): default allocated
	// from 30000-32767.
	NodePort int `json:"nodePort,omitempty" yaml:"nodePort,omitempty"`
}

// SessionAffinityConfig is Kubernetes' sessionAffinityConfig.
type SessionAffinityConfig struct {
	ClientIP *ClientIPConfig `json:"clientIP,omitempty" yaml:"clientIP,omitempty"`
}

// ClientIPConfig is Kubernetes' sessionAffinityConfig.clientIP.
type ClientIPConfig struct {
	// TimeoutSeconds is how long a client keeps its endpoint after its
	// last new connection: 1..86400, default (nil) 10800 (3h). A pointer,
	// as in Kubernetes, so that an explicit 0 is refused, not defaulted.
	TimeoutSeconds *int `json:"timeoutSeconds,omitempty" yaml:"timeoutSeconds,omitempty"`
}

// ServiceView is a service as podnetctl shows it: the spec with every
// default and allocation filled in, and its status. `service get -o yaml`
// output can be fed back to `apply -f` (status is ignored there, as
// kubectl does).
type ServiceView struct {
	ServiceSpec `yaml:",inline"`
	Status      *ServiceStatus `json:"status,omitempty" yaml:"status,omitempty"`
}

// ServiceStatus is what a service looks like on the cluster right now.
type ServiceStatus struct {
	Created   time.Time             `json:"created" yaml:"created"`
	Updated   time.Time             `json:"updated" yaml:"updated"`
	Endpoints []ServiceEndpointView `json:"endpoints" yaml:"endpoints"`
	// Errors are the live hosts that could not program the service, and why.
	Errors []ServiceHostError `json:"errors,omitempty" yaml:"errors,omitempty"`
	// LoadBalancer is how a LoadBalancer service's address is announced.
	LoadBalancer *LoadBalancerStatus `json:"loadBalancer,omitempty" yaml:"loadBalancer,omitempty"`
}

// ServiceEndpointView is one selected container.
type ServiceEndpointView struct {
	Host      string `json:"host" yaml:"host"`
	Container string `json:"container" yaml:"container"`
	// Mode is how the container is reached: network (its own podnet
	// address), host (--net host: its host's address) or container
	// (--net container:X: X's address).
	Mode string `json:"mode" yaml:"mode"`
	// Address is empty when it cannot be known (see Reason).
	Address string `json:"address,omitempty" yaml:"address,omitempty"`
	Ports   []int  `json:"ports" yaml:"ports"`
	// Reach says from which hosts the endpoint can be reached when that
	// is not every host ("only from host h1: a single-host (bridge)
	// network"); each host programs only the endpoints it reaches.
	Reach string `json:"reach,omitempty" yaml:"reach,omitempty"`
	Ready bool   `json:"ready" yaml:"ready"`
	// Reason says why a not-ready endpoint gets no traffic.
	Reason string `json:"reason,omitempty" yaml:"reason,omitempty"`
}

// ServiceHostError is one host's programming error for a service.
type ServiceHostError struct {
	Host  string    `json:"host" yaml:"host"`
	Error string    `json:"error" yaml:"error"`
	Since time.Time `json:"since" yaml:"since"`
}

// MaxServiceFile is the largest file apply -f and delete -f take (a
// file of a thousand services is a few hundred KiB): podnetctl refuses a
// larger one before reading more of it, podnetd refuses a larger Content.
const MaxServiceFile = 4 << 20

// ErrFileTooLarge marks a service file over MaxServiceFile.
var ErrFileTooLarge = errors.New("service file too large")

// FileTooLarge is the error for a service file over MaxServiceFile: the
// same words from podnetctl and podnetd.
func FileTooLarge(source string) error {
	return fmt.Errorf("%s: %w: over %d MiB; split it into several files", source, ErrFileTooLarge, MaxServiceFile>>20)
}

// ServiceFile is the body of POST /v1/services/apply and
// /v1/services/delete: a YAML or JSON file of objects (services, network
// policies, load-balancer pools, BGP peers), parsed by podnetd so that
// errors carry the file's line numbers.
type ServiceFile struct {
	// Source names the file in errors ("-" for standard input).
	Source  string `json:"source"`
	Content []byte `json:"content"`
}

// Apply actions, as kubectl prints them.
const (
	ActionCreated    = "created"
	ActionConfigured = "configured"
	ActionUnchanged  = "unchanged"
	ActionDeleted    = "deleted"
	ActionNotFound   = "not found"
)

// ApplyResult is what apply or delete did to one object of a file.
type ApplyResult struct {
	// Kind is Service (also when empty, from an older podnetd),
	// NetworkPolicy, LoadBalancerPool or BGPPeer.
	Kind   string `json:"kind,omitempty"`
	Name   string `json:"name"`
	Action string `json:"action,omitempty"`
	// Error is set when this object failed (the others may have been
	// applied).
	Error string `json:"error,omitempty"`
}

// ServiceAgentStatus is GET /v1/service-agent: what this host's service
// proxy agent holds and how fast changes reached it.
type ServiceAgentStatus struct {
	Host string `json:"host"`
	// Programmer is false when this build has no service data plane: the
	// agent computes the desired state but programs nothing.
	Programmer bool      `json:"programmer"`
	Synced     bool      `json:"synced"`
	LastSync   time.Time `json:"lastSync,omitzero"`
	// LastSyncDuration is how long the data plane took to take the whole
	// set at LastSync (a Replace: after a restart, the one batch that
	// brings the rules the previous podnetd left up to date).
	LastSyncDuration time.Duration `json:"lastSyncDuration,omitempty"`
	Services         int           `json:"services"`
	Failing          []string      `json:"failing,omitempty"`
	// Lag: time from a change's etcd write (its record's timestamp) to
	// this host having handed it to the data plane, over the last changes.
	LagCount int           `json:"lagCount"`
	LagP50   time.Duration `json:"lagP50"`
	LagP99   time.Duration `json:"lagP99"`
	LagMax   time.Duration `json:"lagMax"`
}
