// Command podnet-cni is podnet's CNI plugin, installed as "podnet" in the
// CNI bin directory: podman, containerd and kubelets attach containers to
// podnet networks through it, and the local podnetd does the work
// (package cniplugin).
package main

import (
	"fmt"
	"os"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/podnet/podnet/cniplugin"
	"github.com/vishvananda/netlink"
)

var version = "dev"

func main() {
	h, err := netlink.NewHandle()
	if err != nil {
		fmt.Fprintln(os.Stderr, "podnet: netlink:", err)
		os.Exit(1)
	}
	p := &cniplugin.Plugin{Host: h}
	skel.PluginMainFuncs(p.Funcs(), cniplugin.VersionInfo(), "podnet CNI plugin "+version+": attaches containers to podnet networks through the local podnetd")
}
