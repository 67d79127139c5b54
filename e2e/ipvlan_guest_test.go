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
	requireRoot(t)
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(root, "scripts", "vm.sh"), "e2e")
	out, err := cmd.CombinedOutput()
	log := string(out)
	var steps []string
	for _, line := range strings.Split(log, "\n") {
		if strings.HasPrefix(line, "GUEST: ") {
			steps = append(steps, strings.TrimPrefix(line, "GUEST: "))
		}
	}
	t.Logf("guest steps:\n  %s", strings.Join(steps, "\n  "))
	if err != nil || !strings.Contains(log, "GUEST: PASS") {
		t.Fatalf("scripts/vm.sh e2e: %v\n%s", err, tailLines(log, 80))
	}
	for _, want := range []string{"ok: c1 → c2", "ok: physical machine → c2", "ok: the host → c1 through the shim",
		"-p: the LAN", "ok: l3: d1 → web3", "ok: l3 -p:", "ok: v1 → the LAN over VLAN 42", "ok: VLAN parent network rm leaves nothing"} {
		if !strings.Contains(log, want) {
			t.Errorf("the guest never reported %q", want)
		}
	}
}
