package main

import (
	"github.com/podnet/podnet/dataplane"
	"github.com/podnet/podnet/internal/link"
	"github.com/podnet/podnet/netspec"
	"github.com/podnet/podnet/overlay"
)

// hostNetworks reads the networks of this host's interfaces that podnet
// subnets must not overlap: every interface but podnet's own bridges and
// VXLAN devices, which hold podnet subnets by design.
func hostNetworks(k *link.Kernel) func() ([]netspec.HostNetwork, error) {
	return func() ([]netspec.HostNetwork, error) {
		return k.InterfaceNetworks(dataplane.DefaultBridgePrefix, overlay.DevicePrefix)
	}
}
