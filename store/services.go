package store

import (
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// Keys of services, relative to the prefix (default /podnet/v1/). Like
// the rest of the layout (keys.go) they are an on-disk format shared by
// every host: never rename one without a migration.
//
//	servicecidr                          ServiceCIDR     the cluster's service CIDR, written by the first podnetd
//	externalipcidrs                      ExternalIPCIDRs the cluster's allow-list of external IPs, likewise
//	services/<name>                      Service         a service object (spec, VIP and NodePorts)
//	svcips/<hex ip>                      ServiceIPClaim  a VIP taken by a service
//	nodeports/<port>                     NodePortClaim   a NodePort taken by a service
//	externalips/<hex ip>/<proto>/<port>  ExternalIPClaim an external IP's port taken by a service
//	ctrmeta/<host>/<container id>        ContainerMeta   a --net host or --net container:X container
//	svcstatus/<host>/<name>              ServiceStatus   why a host could not program a service
//
// A service's record and its claims are created, changed and deleted in
// one transaction each, so a claim never outlives its service and two
// services never hold the same VIP, NodePort or external IP port. ctrmeta follows the rules
// of epmeta (the Docker watcher of the host writes it and deletes it when
// the container stops or is gone; readers filter by the host's liveness).
// svcstatus exists only while a host fails to program a service.

// ServiceCIDRKey holds the cluster's service CIDR.
const ServiceCIDRKey = "servicecidr"

// ServicesPrefix lists every service.
const ServicesPrefix = "services/"

// ServiceKey is one service.
func ServiceKey(name string) string { return ServicesPrefix + name }

// ServiceIPsPrefix lists every taken VIP.
const ServiceIPsPrefix = "svcips/"

// ServiceIPKey is the claim of one VIP.
func ServiceIPKey(a netip.Addr) string { return ServiceIPsPrefix + AddrName(a) }

// NodePortsPrefix lists every taken NodePort.
const NodePortsPrefix = "nodeports/"

// NodePortKey is the claim of one NodePort (all protocols: a NodePort
// number belongs to one service, as in Kubernetes).
func NodePortKey(port uint16) string { return NodePortsPrefix + strconv.Itoa(int(port)) }

// ExternalIPCIDRsKey holds the cluster's allow-list of external IPs.
const ExternalIPCIDRsKey = "externalipcidrs"

// ExternalIPsPrefix lists every taken external IP port.
const ExternalIPsPrefix = "externalips/"

// ExternalIPKey is the claim of one external IP's port and protocol (proto
// TCP, UDP or SCTP, any case).
func ExternalIPKey(a netip.Addr, proto Protocol, port uint16) string {
	return ExternalIPsPrefix + AddrName(a) + "/" + proto.Lower() + "/" + strconv.Itoa(int(port))
}

// ContainerMetaPrefix lists the host- and container-mode containers of
// one host ("" for all hosts).
func ContainerMetaPrefix(host string) string {
	if host == "" {
		return "ctrmeta/"
	}
	return "ctrmeta/" + host + "/"
}

// ContainerMetaKey is one such container.
func ContainerMetaKey(host, id string) string { return ContainerMetaPrefix(host) + id }

// ServiceStatusPrefix lists the programming errors of one host ("" for
// all hosts).
func ServiceStatusPrefix(host string) string {
	if host == "" {
		return "svcstatus/"
	}
	return "svcstatus/" + host + "/"
}

// ServiceStatusKey is one host's error for one service.
func ServiceStatusKey(host, service string) string { return ServiceStatusPrefix(host) + service }

// ServiceCIDR is the cluster-wide service CIDR. Every podnetd checks its
// --service-cidr against it at start and refuses to run when they differ.
type ServiceCIDR struct {
	CIDR netip.Prefix `json:"cidr"`
	// Host is the podnetd that recorded it first.
	Host  string    `json:"host"`
	Since time.Time `json:"since"`
}

// ExternalIPCIDRs is the cluster-wide allow-list of external IPs
// (--external-ip-cidrs). Every podnetd checks its own against it at start
// and refuses to run when they differ; empty refuses every external IP.
type ExternalIPCIDRs struct {
	CIDRs []netip.Prefix `json:"cidrs"`
	// Host is the podnetd that recorded it first.
	Host  string    `json:"host"`
	Since time.Time `json:"since"`
}

// Service types, session affinities and traffic policies (Kubernetes'
// spelling).
const (
	ServiceTypeClusterIP = "ClusterIP"
	ServiceTypeNodePort  = "NodePort"
	AffinityNone         = "None"
	AffinityClientIP     = "ClientIP"
	TrafficPolicyCluster = "Cluster"
	TrafficPolicyLocal   = "Local"
)

// Service is a service object as validated and allocated: every field is
// in its canonical form (defaults filled in, protocols upper case, the VIP
// and NodePorts chosen).
type Service struct {
	Name     string            `json:"name"`
	Selector map[string]string `json:"selector"`
	Type     string            `json:"type"`
	Ports    []ServicePort     `json:"ports"`
	// ClusterIP is the VIP; invalid when Headless.
	ClusterIP   netip.Addr   `json:"clusterIP,omitzero"`
	Headless    bool         `json:"headless,omitempty"`
	ExternalIPs []netip.Addr `json:"externalIPs,omitempty"`
	// LoadBalancerIP is the address of a LoadBalancer service, from an
	// LBPool (claimed under lbips/).
	LoadBalancerIP        netip.Addr `json:"loadBalancerIP,omitzero"`
	SessionAffinity       string     `json:"sessionAffinity"`
	AffinityTimeout       int        `json:"affinityTimeoutSeconds,omitempty"`
	ExternalTrafficPolicy string     `json:"externalTrafficPolicy"`
	// HealthCheckNodePort is the port every host answers health checks
	// of a Local service on (claimed in nodeports/ like a NodePort).
	HealthCheckNodePort uint16    `json:"healthCheckNodePort,omitempty"`
	Created             time.Time `json:"created"`
	// Updated moves with every change of the spec (it also dates the
	// change for convergence measurements).
	Updated time.Time `json:"updated"`
}

// Protocol is a service port's transport protocol, spelled as Kubernetes
// and the records spell it.
type Protocol string

// The protocols of service ports.
const (
	ProtocolTCP  Protocol = "TCP"
	ProtocolUDP  Protocol = "UDP"
	ProtocolSCTP Protocol = "SCTP"
)

// ParseProtocol is the one reader of a protocol's name, in any case ("udp",
// "UDP"); an empty name is TCP, Kubernetes' default.
func ParseProtocol(s string) (Protocol, bool) {
	switch strings.ToUpper(strings.TrimSpace(s)) {
	case "", "TCP":
		return ProtocolTCP, true
	case "UDP":
		return ProtocolUDP, true
	case "SCTP":
		return ProtocolSCTP, true
	}
	return "", false
}

// Lower is p as nftables, Docker and SRV names spell it ("tcp"): the data
// plane's spelling.
func (p Protocol) Lower() string { return strings.ToLower(string(p)) }

// ServicePort is one port of a service.
type ServicePort struct {
	Name       string   `json:"name,omitempty"`
	Protocol   Protocol `json:"protocol"`
	Port       uint16   `json:"port"`
	TargetPort uint16   `json:"targetPort"`
	NodePort   uint16   `json:"nodePort,omitempty"`
}

// ServiceIPClaim reserves a VIP for one service.
type ServiceIPClaim struct {
	Service string `json:"service"`
}

// NodePortClaim reserves a NodePort for one service.
type NodePortClaim struct {
	Service string `json:"service"`
}

// ExternalIPClaim reserves one port and protocol of an external IP for
// one service.
type ExternalIPClaim struct {
	Service string `json:"service"`
}

// Network modes of a ContainerMeta.
const (
	ModeHost      = "host"
	ModeContainer = "container"
)

// ContainerMeta is what the Docker watcher knows about a container that
// has no endpoint of its own on a podnet network: one in --net host (it is
// reached at its host's address) or in --net container:X (reached at X's
// address). Services select such containers by label like any other.
type ContainerMeta struct {
	Container string            `json:"container"`
	Name      string            `json:"name"`
	Mode      string            `json:"mode"`
	Parent    string            `json:"parent,omitempty"` // X's full ID in container mode
	Labels    map[string]string `json:"labels,omitempty"`
	Ready     bool              `json:"ready"`
	Updated   time.Time         `json:"updated"`
}

// ServiceStatus is one host's reason for not programming a service.
type ServiceStatus struct {
	Host    string    `json:"host"`
	Service string    `json:"service"`
	Error   string    `json:"error"`
	Since   time.Time `json:"since"`
}
