//go:build e2e

package e2e

import (
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestDockerRestartLogsOnce: while a host's dockerd stops (stopping a
// container that ignores SIGTERM) and stays down, podnetd's Docker watcher,
// garbage collector and network fan-out all keep failing; podnetd logs one
// warning that Docker is unreachable and one line when it is back, and no
// other warning about Docker.
func TestDockerRestartLogsOnce(t *testing.T) {
	l := single(t)
	// A named definition makes the network fan-out call Docker every round.
	l.MustExec(t, "h1", "podnetctl", "network", "create", "dup", "--subnet", "10.227.0.0/24")
	t.Cleanup(func() {
		removeNetwork(l, "h1", "dup")
		_, _ = l.Exec("h1", "podnetctl", "network", "rm", "dup")
	})
	WaitFor(t, shortWait, func() (bool, string) {
		out, _ := l.Docker("h1", "network", "ls", "-q", "--filter", "name=^dup$")
		return out != "", "network fan-out did not create dup"
	})
	run(t, l, "h1", "stubborn", sleeper("--network", "dup")...)

	logPath := filepath.Join(l.HostDir("h1"), "podnetd.log")
	before := len(readFile(t, logPath))
	if err := l.DockerdStop("h1", false); err != nil {
		t.Fatal(err)
	}
	// Down long enough for every agent to retry several times (the
	// watcher backs off from 250 ms, the fan-out retries every 10 s).
	time.Sleep(15 * time.Second)
	if err := l.DockerdStart("h1"); err != nil {
		t.Fatal(err)
	}
	WaitFor(t, 60*time.Second, func() (bool, string) {
		return strings.Contains(readFile(t, logPath)[before:], "Docker is reachable again"), "podnetd did not notice Docker is back"
	})
	seg := readFile(t, logPath)[before:]
	down := 0
	for _, line := range strings.Split(seg, "\n") {
		if !strings.Contains(line, "level=WARN") {
			continue
		}
		if strings.Contains(line, "Docker is unreachable") {
			down++
			continue
		}
		if strings.Contains(strings.ToLower(line), "docker") {
			t.Errorf("warning about Docker besides the one transition: %s", line)
		}
	}
	if down != 1 || strings.Count(seg, "Docker is reachable again") != 1 {
		t.Fatalf("want one 'unreachable' warning and one 'reachable again' line, got %d and %d:\n%s",
			down, strings.Count(seg, "Docker is reachable again"), seg)
	}
}
