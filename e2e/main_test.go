//go:build e2e

package e2e

import (
	"fmt"
	"os"
	"testing"
)

func TestMain(m *testing.M) {
	code := m.Run()
	if err := TeardownShared(); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: taking down the shared lab: %v\n", err)
		if code == 0 {
			code = 1
		}
	}
	os.Exit(code)
}
