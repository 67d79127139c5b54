package cniconf

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"strings"

	"github.com/containernetworking/cni/pkg/types"

	"github.com/podnet/podnet/internal/fault"
)

// Type is the plugin's "type" in a network configuration: the name of its
// binary in the CNI bin directory.
const Type = "podnet"

// DefaultVersion is the CNI version cni-config writes by default.
const DefaultVersion = "1.1.0"

// Versions are the CNI versions the plugin speaks (CHECK needs 0.4.0 or
// later, GC and STATUS 1.1.0; the libcni of podman 4 knows up to 1.0.0).
var Versions = []string{"0.3.1", "0.4.0", "1.0.0", "1.1.0"}

// Capabilities the plugin honours, as a conflist declares them.
var Capabilities = map[string]bool{"portMappings": true, "ips": true, "mac": true, "aliases": true}

// ErrInvalid marks a configuration or argument the plugin refuses: the
// caller's fault (errors.Is(err, fault.ErrInvalid) holds too).
var ErrInvalid = fault.New("invalid podnet CNI configuration")

// NetConf is the plugin's configuration, as a runtime passes it on stdin.
type NetConf struct {
	types.PluginConf
	// Subnet is the podnet network's first subnet: a network is the same
	// subnet on every host, where its Docker IDs differ.
	Subnet netip.Prefix `json:"subnet"`
	// Socket is podnetd's admin socket (default /run/podnet/podnet.sock).
	Socket        string        `json:"socket,omitempty"`
	RuntimeConfig RuntimeConfig `json:"runtimeConfig"`
	Args          struct {
		CNI struct {
			IPs []string `json:"ips,omitempty"`
		} `json:"cni"`
	} `json:"args"`
}

// RuntimeConfig holds the capability arguments the runtime passed.
type RuntimeConfig struct {
	PortMappings []PortMapping `json:"portMappings,omitempty"`
	// Aliases is a list of names (CNI's convention) or, from podman, a map
	// of network name to names.
	Aliases json.RawMessage `json:"aliases,omitempty"`
	IPs     []string        `json:"ips,omitempty"`
	MAC     string          `json:"mac,omitempty"`
}

// PortMapping is one entry of the portMappings capability.
type PortMapping struct {
	HostPort      int    `json:"hostPort"`
	ContainerPort int    `json:"containerPort"`
	Protocol      string `json:"protocol,omitempty"`
	HostIP        string `json:"hostIP,omitempty"`
}

// Args are the CNI_ARGS the plugin reads.
type Args struct {
	types.CommonArgs
	IP                types.UnmarshallableString
	MAC               types.UnmarshallableString
	K8S_POD_NAME      types.UnmarshallableString
	K8S_POD_NAMESPACE types.UnmarshallableString
}

// Parse reads a plugin configuration and checks what every operation needs.
func Parse(stdin []byte) (*NetConf, error) {
	var c NetConf
	if err := json.Unmarshal(stdin, &c); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	if c.Name == "" {
		return nil, fmt.Errorf("%w: no network name", ErrInvalid)
	}
	if !c.Subnet.IsValid() {
		return nil, fmt.Errorf("%w: network %s has no \"subnet\" (make the configuration with podnetctl cni-config %s)", ErrInvalid, c.Name, c.Name)
	}
	c.Subnet = c.Subnet.Masked()
	return &c, nil
}

// ParseArgs reads CNI_ARGS (unknown keys are ignored: runtimes pass
// others' too).
func ParseArgs(s string) (Args, error) {
	var a Args
	if err := types.LoadArgs(s, &a); err != nil {
		return a, fmt.Errorf("%w: CNI_ARGS %q: %w", ErrInvalid, s, err)
	}
	return a, nil
}

// RequestedIPs merges the ips capability, args.cni.ips and CNI_ARGS IP
// (deprecated: used only when neither of the others is given), with or
// without a prefix length.
func (c *NetConf) RequestedIPs(a Args) ([]netip.Addr, error) {
	raw := c.RuntimeConfig.IPs
	if len(raw) == 0 {
		raw = c.Args.CNI.IPs
	}
	if len(raw) == 0 && a.IP != "" {
		raw = strings.Split(string(a.IP), ",")
	}
	var out []netip.Addr
	for _, s := range raw {
		s = strings.TrimSpace(s)
		if p, err := netip.ParsePrefix(s); err == nil {
			out = append(out, p.Addr())
			continue
		}
		ip, err := netip.ParseAddr(s)
		if err != nil {
			return nil, fmt.Errorf("%w: requested IP %q: %w", ErrInvalid, s, err)
		}
		out = append(out, ip.Unmap())
	}
	return out, nil
}

// RequestedMAC is the mac capability, else CNI_ARGS MAC.
func (c *NetConf) RequestedMAC(a Args) string {
	if c.RuntimeConfig.MAC != "" {
		return c.RuntimeConfig.MAC
	}
	return string(a.MAC)
}

// AliasesFor returns the aliases capability for this network: a list, or
// the entry of a map keyed by network name (podman's form).
func (c *NetConf) AliasesFor() ([]string, error) {
	raw := c.RuntimeConfig.Aliases
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var list []string
	if err := json.Unmarshal(raw, &list); err == nil {
		return list, nil
	}
	var byNet map[string][]string
	if err := json.Unmarshal(raw, &byNet); err != nil {
		return nil, fmt.Errorf("%w: aliases %s: want a list of names or a map of network to names", ErrInvalid, raw)
	}
	return byNet[c.Name], nil
}

// ConfList is a network configuration list for a podnet network.
type ConfList struct {
	CNIVersion string   `json:"cniVersion"`
	Name       string   `json:"name"`
	Plugins    []Plugin `json:"plugins"`
}

// Plugin is the podnet entry of a ConfList.
type Plugin struct {
	Type         string          `json:"type"`
	Subnet       netip.Prefix    `json:"subnet"`
	Socket       string          `json:"socket,omitempty"`
	Capabilities map[string]bool `json:"capabilities"`
}

// NewConfList returns the configuration list for network name (subnet
// its first subnet); socket "" means podnetd's default admin socket.
func NewConfList(name string, subnet netip.Prefix, version, socket string) (ConfList, error) {
	if version == "" {
		version = DefaultVersion
	}
	ok := false
	for _, v := range Versions {
		ok = ok || v == version
	}
	if !ok {
		return ConfList{}, fmt.Errorf("%w: CNI version %q: the plugin speaks %s", ErrInvalid, version, strings.Join(Versions, ", "))
	}
	return ConfList{CNIVersion: version, Name: name, Plugins: []Plugin{{
		Type: Type, Subnet: subnet.Masked(), Socket: socket, Capabilities: Capabilities,
	}}}, nil
}
