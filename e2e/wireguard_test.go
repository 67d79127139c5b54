//go:build e2e

package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestWireGuardInQEMUGuest: encryption between hosts on Debian's stock
// kernel, three podnet hosts in the QEMU guest (test/vm/wireguard-e2e.sh):
// strict reverse-path filtering on every host, a cluster switched from
// clear to WireGuard host by host (nothing passes between an encrypted and
// a clear host; a podnetd with the old mode is refused naming both), a
// host's own processes reaching containers on another host (in clear; and
// encrypted over a vxlan and a dual-stack direct-routing network, from its
// tunnel addresses), an underlay capture with WireGuard only between hosts
// (both networks, the host's own processes, NodePort forwarding), a forger
// of a host's address injecting nothing (VXLAN, direct pod source,
// unknown key), a key change picked up within 1 s, podnetd restarts
// keeping a connection, a host that left in no peer list.
func TestWireGuardInQEMUGuest(t *testing.T) {
	guestScenario(t, "wireguard-e2e",
		"ok: in clear: c1 → c2",
		"ok: in clear: h1 itself → c2",
		"ok: nothing passes between an encrypted and a clear host",
		"ok: a podnetd with the old mode refused",
		"ok: both encrypted: c1 → c2",
		"ok: h1's peers are h2 and h3",
		"ok: host ls shows every host's encryption and key fingerprint",
		"ok: direct routing, encrypted: d1 → d2",
		"ok: encrypted: h1 itself → c2 (vxlan)",
		"ok: encrypted: h1 itself → d2 (direct routing)",
		"ok: encrypted: h1 itself → d2 over IPv6",
		"ok: h1's own processes reach pods on h2 from its tunnel addresses",
		"ok: NodePort on h1 → c2 on h2",
		"ok: underlay capture (vxlan, direct routing, NodePort forwarding, h1's own processes): all",
		"ok: forged VXLAN, forged direct pod source and an unknown WireGuard key injected nothing",
		"ok: key change picked up by h1 within 1 s",
		"ok: one TCP connection c1 → c2 kept across podnetd restarts",
		"ok: a host that left is in no peer list")
}

// TestEncryptionNeedsWireGuard: on a kernel without WireGuard (this
// machine's), podnetd --encryption wireguard refuses to start, naming
// CONFIG_WIREGUARD, before it serves anything, and leaves no device.
func TestEncryptionNeedsWireGuard(t *testing.T) {
	requireRoot(t)
	RequirePodnetd(t)
	ns := "pnwgt" + strings.ReplaceAll(time.Now().Format("150405.000"), ".", "")
	if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add: %v %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", ns).Run() })
	if exec.Command("ip", "-n", ns, "link", "add", "probe", "type", "wireguard").Run() == nil {
		t.Skip("this kernel has WireGuard: TestWireGuardInQEMUGuest covers encryption")
	}
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "nsenter", "--net=/run/netns/"+ns, "--", filepath.Join(PodnetBin(), "podnetd"),
		"--encryption", "wireguard", "--host-name", "wgtest", "--data-dir", filepath.Join(dir, "data"),
		"--plugin-socket", filepath.Join(dir, "podnet.sock"), "--admin-socket", filepath.Join(dir, "admin.sock"),
		"--etcd-endpoints", "http://127.0.0.1:1", "--dns-addr", "off", "--metrics-addr", "off")
	out, err := cmd.CombinedOutput()
	if err == nil || ctx.Err() != nil {
		t.Fatalf("podnetd --encryption wireguard on a kernel without WireGuard: err %v (timeout %v)\n%s", err, ctx.Err(), out)
	}
	if !strings.Contains(string(out), "CONFIG_WIREGUARD") {
		t.Fatalf("the refusal does not name CONFIG_WIREGUARD:\n%s", out)
	}
	for _, f := range []string{"podnet.sock", "admin.sock"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err == nil {
			t.Errorf("%s was served before the refusal", f)
		}
	}
	if links, _ := exec.Command("ip", "-n", ns, "-o", "link", "show", "type", "wireguard").CombinedOutput(); strings.Contains(string(links), "pnwg") {
		t.Errorf("a WireGuard device was left: %s", links)
	}
	t.Logf("refused: %s", strings.TrimSpace(string(out)))
}
