package main

import (
	"slices"
	"strings"
	"testing"

	"github.com/podnet/podnet/internal/testutil"
)

// podnetctl must stay small: it links the admin API's types and netspec,
// never the etcd client (nor netlink or the Docker client, which only
// podnetd needs).
func TestPodnetctlLinksNoEtcd(t *testing.T) {
	deps := testutil.Deps(t, "github.com/podnet/podnet/cmd/podnetctl")
	if !slices.Contains(deps, "github.com/podnet/podnet/admin") {
		t.Fatalf("go list found no admin package in podnetctl's dependencies: %v", deps)
	}
	for _, d := range testutil.ThirdParty(deps, "github.com/podnet/podnet") {
		if !strings.HasPrefix(d, "github.com/spf13/") && d != "go.yaml.in/yaml/v3" {
			t.Errorf("podnetctl links %s; it may link only cobra/pflag, the YAML printer and podnet's pure packages", d)
		}
	}
	for _, d := range deps {
		if strings.HasPrefix(d, "github.com/podnet/podnet/") && !slices.Contains(pure, d) {
			t.Errorf("podnetctl links %s, which is not one of podnet's pure packages %v", d, pure)
		}
	}
}

// pure are podnet's packages podnetctl may link.
var pure = []string{
	"github.com/podnet/podnet/admin",
	"github.com/podnet/podnet/netspec",
	"github.com/podnet/podnet/internal/dockerid",
	"github.com/podnet/podnet/internal/httpbody", "github.com/podnet/podnet/internal/fault",
	"github.com/podnet/podnet/cmd/podnetctl",
}
