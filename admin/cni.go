package admin

import "net/netip"

// The wire types of the CNI routes: podnet's CNI plugin (cmd/podnet-cni)
// forwards each CNI operation to the local podnetd with these, and
// podnetctl cni-config asks for a network's configuration.
//
//	POST /v1/cni/add      CNIRequest  -> CNIResult
//	POST /v1/cni/check    CNIRequest  -> CNIResult
//	POST /v1/cni/del      CNIRequest  -> {}
//	POST /v1/cni/gc       CNIGCRequest -> CNIGCReport
//	POST /v1/cni/status   CNIRequest (network and subnet) -> CNIStatus
//	GET  /v1/cni/config/{network}?cniVersion=V -> the conflist (JSON)

// CNIRequest is one attachment operation (ADD, CHECK, DEL).
type CNIRequest struct {
	// Network is the network configuration's name; Subnet the podnet
	// network it stands for (its first subnet, the same on every host).
	Network     string       `json:"network"`
	Subnet      netip.Prefix `json:"subnet"`
	ContainerID string       `json:"containerID"`
	IfName      string       `json:"ifname"`
	NetNS       string       `json:"netns,omitempty"`
	// Name is the container's name (CNI_ARGS K8S_POD_NAME: podman passes
	// the container name there), Aliases its other names on this network
	// (the "aliases" capability).
	Name    string   `json:"name,omitempty"`
	Aliases []string `json:"aliases,omitempty"`
	// IPs are requested addresses ("ips" capability, CNI_ARGS IP=), MAC a
	// requested MAC ("mac" capability, CNI_ARGS MAC=).
	IPs   []netip.Addr `json:"ips,omitempty"`
	MAC   string       `json:"mac,omitempty"`
	Ports []CNIPort    `json:"ports,omitempty"`
}

// CNIPort is one entry of the "portMappings" capability.
type CNIPort struct {
	HostPort      uint16     `json:"hostPort"`
	ContainerPort uint16     `json:"containerPort"`
	Protocol      string     `json:"protocol,omitempty"` // tcp (default), udp, sctp
	HostIP        netip.Addr `json:"hostIP,omitzero"`
}

// CNIResult is what the plugin configures in the container and reports
// to the runtime: podnetd made the veth pair in the host namespace; the
// plugin moves PeerIface into the container as the requested name.
type CNIResult struct {
	Endpoint  string        `json:"endpoint"`
	HostIface string        `json:"hostIface"`
	PeerIface string        `json:"peerIface"`
	MAC       string        `json:"mac"`
	MTU       int           `json:"mtu"`
	IPs       []CNIAddress  `json:"ips"`
	Routes    []CNIRoute    `json:"routes,omitempty"`
	DNS       CNIDNS        `json:"dns"`
	Ports     []PortMapping `json:"ports,omitempty"`
}

// CNIAddress is an address with the subnet's mask and its gateway.
type CNIAddress struct {
	Address netip.Prefix `json:"address"`
	Gateway netip.Addr   `json:"gateway,omitzero"`
}

// CNIRoute is a route in the container.
type CNIRoute struct {
	Dst netip.Prefix `json:"dst"`
	GW  netip.Addr   `json:"gw,omitzero"`
}

// CNIDNS is the cluster DNS the runtime writes into resolv.conf.
type CNIDNS struct {
	Nameservers []netip.Addr `json:"nameservers,omitempty"`
	Search      []string     `json:"search,omitempty"`
}

// CNIGCRequest is a CNI GC: every attachment of Network not in Valid goes.
type CNIGCRequest struct {
	Network string             `json:"network"`
	Subnet  netip.Prefix       `json:"subnet"`
	Valid   []CNIAttachmentRef `json:"valid"`
}

// CNIAttachmentRef names an attachment of a network.
type CNIAttachmentRef struct {
	ContainerID string `json:"containerID"`
	IfName      string `json:"ifname"`
}

// CNIGCReport lists the endpoints a GC removed.
type CNIGCReport struct {
	Endpoints []string `json:"endpoints"`
}

// CNIStatus answers STATUS: whether podnetd can serve ADD on the network.
type CNIStatus struct {
	Ready  bool   `json:"ready"`
	Reason string `json:"reason,omitempty"`
}
