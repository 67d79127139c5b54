package testutil

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Deps lists every package pkg links (`go list -deps pkg`, test files
// excluded), for tests that keep a package's dependencies in check.
func Deps(t testing.TB, pkg string) []string {
	t.Helper()
	goTool := "go"
	if root := os.Getenv("GOROOT"); root != "" {
		goTool = filepath.Join(root, "bin", "go")
	} else if _, err := exec.LookPath("go"); err != nil {
		goTool = "/usr/local/go/bin/go"
	}
	out, err := exec.Command(goTool, "list", "-deps", pkg).Output()
	if err != nil {
		t.Fatalf("go list -deps %s: %v", pkg, err)
	}
	return strings.Fields(string(out))
}

// ThirdParty returns the packages of deps that are not in the standard
// library (their first path element has a dot), except module's own.
func ThirdParty(deps []string, module string) []string {
	var out []string
	for _, d := range deps {
		first, _, _ := strings.Cut(d, "/")
		if strings.Contains(first, ".") && d != module && !strings.HasPrefix(d, module+"/") {
			out = append(out, d)
		}
	}
	return out
}
