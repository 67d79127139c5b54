//go:build e2e

package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// daemon is a server a test runs beside the lab (a registry, Prometheus)
// on the root namespace's loopback.
type daemon struct {
	name   string
	log    string
	exited chan error
}

// startDaemon runs the binary of Debian package pkg with args in its own
// process group, logging to dir/<pkg>.log. When the test ends it is
// stopped by PID (SIGTERM, SIGKILL after 10 s), its data directory is
// removed, and its log is shown if the test failed.
func startDaemon(t *testing.T, pkg, dir, data string, args ...string) *daemon {
	t.Helper()
	bin, err := exec.LookPath(pkg)
	if err != nil {
		t.Fatalf("%s is missing: run scripts/deps.sh (Debian package %s)", pkg, pkg)
	}
	d := &daemon{name: pkg, log: filepath.Join(dir, pkg+".log"), exited: make(chan error, 1)}
	logf, err := os.Create(d.log)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		logf.Close()
		t.Fatalf("start %s: %v", pkg, err)
	}
	go func() { d.exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = syscall.Kill(cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-d.exited:
		case <-time.After(10 * time.Second):
			_ = syscall.Kill(cmd.Process.Pid, syscall.SIGKILL)
			<-d.exited
		}
		logf.Close()
		if t.Failed() {
			b, _ := os.ReadFile(d.log)
			t.Logf("%s log:\n%s", pkg, b)
		}
		if err := os.RemoveAll(data); err != nil {
			t.Errorf("%s data: %v", pkg, err)
		}
	})
	return d
}

// waitReady polls ready until it holds, failing at once if the daemon
// exited.
func (d *daemon) waitReady(t *testing.T, ready func() (bool, string)) {
	t.Helper()
	WaitFor(t, shortWait, func() (bool, string) {
		select {
		case err := <-d.exited:
			b, _ := os.ReadFile(d.log)
			t.Fatalf("%s exited: %v\n%s", d.name, err, b)
		default:
		}
		return ready()
	})
}

// loopbackURL is http://127.0.0.1:port.
func loopbackURL(port int) string { return fmt.Sprintf("http://127.0.0.1:%d", port) }
