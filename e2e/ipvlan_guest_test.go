//go:build e2e

package e2e

import (
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestIPVlanInQEMUGuest: dockerd and podnetd on Debian's stock kernel in a
// QEMU guest (this machine's kernel may have no ipvlan or 802.1q), running
// test/vm/ipvlan-e2e.sh: an ipvlan l2 network with host access (two
// containers reach each other, the LAN and the host, -p works, an aux
// address is reserved, another ipvlan mode on the same parent is refused),
// an l3 network routed through the device, a VLAN parent podnet creates
// and removes; after each network rm no link, route, rule or pool is left.
func TestIPVlanInQEMUGuest(t *testing.T) {
	guestScenario(t, "e2e", "ok: c1 → c2", "ok: physical machine → c2", "ok: the host → c1 through the shim",
		"-p: the LAN", "ok: l3: d1 → web3", "ok: l3 -p:", "ok: v1 → the LAN over VLAN 42", "ok: VLAN parent network rm leaves nothing")
}

// guestScenario runs `scripts/vm.sh COMMAND` (a scenario in the QEMU
// guest), logs the steps the guest reported, and fails unless it passed
// and reported every step in want. The scenarios use no lab: they run in
// parallel with each other (each guest has one vCPU), after the tests
// that do.
func guestScenario(t *testing.T, command string, want ...string) {
	requireRoot(t)
	t.Parallel()
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 35*time.Minute)
	defer cancel()
	start := time.Now()
	cmd := exec.CommandContext(ctx, filepath.Join(root, "scripts", "vm.sh"), command)
	out, err := cmd.CombinedOutput()
	log := string(out)
	var steps []string
	for _, line := range strings.Split(log, "\n") {
		if strings.HasPrefix(line, "GUEST: ") {
			steps = append(steps, strings.TrimPrefix(line, "GUEST: "))
		} else if strings.HasPrefix(line, "GUEST-FAIL: ") { // the dump after it can push it out of the tail
			steps = append(steps, line)
		}
	}
	t.Logf("guest steps (%s in all):\n  %s", time.Since(start).Round(time.Second), strings.Join(steps, "\n  "))
	if err != nil || !strings.Contains(log, "GUEST: PASS") {
		t.Fatalf("scripts/vm.sh %s: %v\n%s", command, err, tailLines(log, 80))
	}
	for _, w := range want {
		if !strings.Contains(log, w) {
			t.Errorf("the guest never reported %q", w)
		}
	}
}
