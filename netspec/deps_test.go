package netspec_test

import (
	"testing"

	"github.com/podnet/podnet/internal/testutil"
)

// netspec is pure: the standard library only, so podnetctl, the driver,
// IPAM and the overlay can all import it.
func TestNetspecIsPure(t *testing.T) {
	for _, pkg := range []string{"github.com/podnet/podnet/netspec", "github.com/podnet/podnet/admin"} {
		deps := testutil.Deps(t, pkg)
		if len(deps) == 0 {
			t.Fatalf("go list found nothing for %s", pkg)
		}
		if third := testutil.ThirdParty(deps, "github.com/podnet/podnet"); len(third) > 0 {
			t.Errorf("%s links %v; it must link the standard library only", pkg, third)
		}
		for _, d := range deps {
			if d == "github.com/podnet/podnet/internal/httpbody" || d == "github.com/podnet/podnet/internal/fault" {
				continue // the standard library's only (the plugin socket's body reader, the error kind)
			}
			if d != pkg && len(d) > len("github.com/podnet/podnet/") && d[:len("github.com/podnet/podnet/")] == "github.com/podnet/podnet/" {
				t.Errorf("%s imports %s; it must import no other podnet package", pkg, d)
			}
		}
	}
}
