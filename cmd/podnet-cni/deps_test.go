package main

import (
	"strings"
	"testing"

	"github.com/podnet/podnet/internal/testutil"
)

// The plugin only asks podnetd: it links the admin API's types, the CNI
// library and netlink, never etcd, Docker or podnetd's own machinery (a
// runtime runs a copy of it for every container start).
func TestPluginLinksOnlyTheAdminAPI(t *testing.T) {
	deps := testutil.Deps(t, "github.com/podnet/podnet/cmd/podnet-cni")
	for _, d := range testutil.ThirdParty(deps, "github.com/podnet/podnet") {
		if !strings.HasPrefix(d, "github.com/containernetworking/cni/") && !strings.HasPrefix(d, "github.com/vishvananda/") &&
			!strings.HasPrefix(d, "golang.org/x/sys/") {
			t.Errorf("podnet-cni links %s; it may link only the CNI library, netlink and x/sys", d)
		}
	}
	for _, d := range deps {
		if p, ok := strings.CutPrefix(d, "github.com/podnet/podnet/"); ok && !pluginPure[p] {
			t.Errorf("podnet-cni links %s, which is not one of the packages it may use", d)
		}
	}
}

var pluginPure = map[string]bool{"cmd/podnet-cni": true, "cniplugin": true, "cniconf": true, "admin": true,
	"internal/httpbody": true, "internal/fault": true, "internal/link": true, "netspec": true}
