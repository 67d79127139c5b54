package dataplane

import (
	"net/netip"
	"time"
)

// Service is what the data plane needs to know about one service on this
// host (the control plane builds it from etcd).
type Service struct {
	// Name is unique cluster-wide; it names the service in errors, logs and
	// status, and in the names of its rules.
	Name string
	// ClusterIP is the virtual IP. Invalid (zero) for a headless service,
	// which gets no rules.
	ClusterIP netip.Addr
	// ExternalIPs: traffic to ip:port arriving at (or originating on) this
	// host is treated like traffic to the ClusterIP, whether or not the
	// address is local.
	ExternalIPs []netip.Addr
	Ports       []ServicePort
	// Endpoints are the ready endpoints, cluster-wide, deduplicated,
	// sorted by address. Not-ready endpoints are never passed. An empty
	// list means "reject at once" (TCP reset / ICMP port unreachable),
	// never black-hole.
	Endpoints []ServiceEndpoint
	// Affinity > 0 is ClientIP session affinity: a client address keeps
	// its endpoint for this long after its last new connection.
	Affinity time.Duration
	// LocalOnly is externalTrafficPolicy=Local: NodePort and external-IP
	// traffic that arrives from outside goes only to endpoints on this
	// host, with the client address preserved (no SNAT); with no local
	// endpoint such traffic is dropped (as kube-proxy does). ClusterIP
	// traffic is not affected.
	LocalOnly bool
}

// ServicePort is one port of a service.
type ServicePort struct {
	Name       string // optional (SRV records); unique within the service when set
	Proto      Proto  // TCP, UDP or SCTP
	Port       uint16 // on the ClusterIP and the external IPs
	TargetPort uint16 // on every endpoint
	NodePort   uint16 // 0 = none; else answered on every local address of this host
}

// ServiceEndpoint is one ready endpoint of a service.
type ServiceEndpoint struct {
	// Addr is the container's address; for a --net host container its
	// host's address; for a --net container:X container, X's address.
	Addr netip.Addr
	// Local is true when the endpoint runs on this host.
	Local bool
}
