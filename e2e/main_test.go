//go:build e2e

package e2e

import (
	"fmt"
	"os"
	"testing"
)

func TestMain(m *testing.M) {
	// Host churn tests wait for a dead host's liveness lease to expire:
	// keep it short in the lab.
	if os.Getenv("PODNETD_ARGS") == "" {
		os.Setenv("PODNETD_ARGS", "--liveness-ttl=6s")
	}
	code := m.Run()
	if err := TeardownShared(); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: taking down the shared lab: %v\n", err)
		if code == 0 {
			code = 1
		}
	}
	os.Exit(code)
}
