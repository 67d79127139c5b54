package catalog_test

import (
	"slices"
	"testing"

	"github.com/podnet/podnet/internal/testutil"
)

const mod = "github.com/podnet/podnet/"

// The service and policy layers' packages keep their floors: only the
// proxy and policy agents drive the data plane; the catalog sees records,
// not the packages that read or write them; the Docker watcher only writes
// records; the compiled policy model is pure.
func TestServiceLayerFloors(t *testing.T) {
	for pkg, banned := range map[string][]string{
		"catalog":     {"dataplane", "proxy", "clusterdns", "registry", "dockerwatch"},
		"registry":    {"dataplane", "proxy", "clusterdns", "dockerwatch"},
		"clusterdns":  {"dataplane", "proxy", "dockerwatch"},
		"dockerwatch": {"dataplane", "proxy", "clusterdns", "registry", "catalog"},
		"proxy":       {"clusterdns", "registry", "dockerwatch"},
		// The compiled model is pure: records in, rules out.
		"policy": {"dataplane", "catalog", "proxy", "clusterdns", "registry", "dockerwatch", "netpol", "driver"},
		"netpol": {"proxy", "clusterdns", "registry", "dockerwatch", "driver"},
	} {
		deps := testutil.Deps(t, mod+pkg)
		if !slices.Contains(deps, mod+"store") {
			t.Fatalf("go list found no store package in %s's dependencies: %v", pkg, deps)
		}
		for _, b := range banned {
			if slices.Contains(deps, mod+b) {
				t.Errorf("%s links %s; it must not (see its doc.go)", pkg, b)
			}
		}
	}
}
