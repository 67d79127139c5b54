// Package testutil gives kernel tests a throwaway network namespace each,
// the way vishvananda/netlink's own tests do: lock the OS thread, remember
// the original namespace, create the new one, switch back before unlocking,
// and delete everything in t.Cleanup. Tests that need root or a kernel
// feature skip with a message naming what is missing. poll.go holds the one
// polling loop every test tier uses (Eventually, Until, Poll): a deadline,
// and a failure that names what was awaited and what was seen last.
package testutil

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// SkipUnlessRoot skips t when not running as root.
func SkipUnlessRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root (network namespaces, links, netfilter); run `sudo make test`")
	}
}

// SkipUnlessLinkType skips t when the kernel cannot create links of kind
// (e.g. "ipvlan", "vxlan", "macvlan"): it tries, in a scratch namespace.
func SkipUnlessLinkType(t testing.TB, kind string) {
	t.Helper()
	SkipUnlessRoot(t)
	ns := NewNetNS(t)
	out, err := ns.Exec("sh", "-c", probeLink(kind))
	if err != nil {
		t.Skipf("kernel lacks %s support (CONFIG_%s): %s", kind, strings.ToUpper(kind), strings.TrimSpace(out))
	}
}

func probeLink(kind string) string {
	switch kind {
	case "ipvlan", "macvlan":
		return "ip link add p0 type veth peer name p1 && ip link add v0 link p0 type " + kind
	case "vxlan":
		return "ip link add v0 type vxlan id 42 dstport 4789"
	case "vlan":
		return "ip link add p0 type veth peer name p1 && ip link add link p0 name v0 type vlan id 42"
	default:
		return "ip link add v0 type " + kind
	}
}

// NetNS is a named network namespace (visible in /run/netns) that is
// deleted when the test ends.
type NetNS struct {
	Name   string
	Path   string
	Handle netns.NsHandle
	// NL is a netlink handle bound to the namespace: use it instead of the
	// package-level netlink functions, which act on the test's own namespace.
	NL *netlink.Handle
}

// NewNetNS creates a fresh namespace with loopback up.
func NewNetNS(t testing.TB) *NetNS {
	t.Helper()
	SkipUnlessRoot(t)
	name := "pntest-" + randHex(4)
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	if err != nil {
		t.Fatalf("get current netns: %v", err)
	}
	defer orig.Close()
	h, err := netns.NewNamed(name)
	// NewNamed switched this thread into the new namespace: go back before
	// anything else runs here.
	if serr := netns.Set(orig); serr != nil {
		panic(fmt.Sprintf("cannot return to original netns: %v", serr))
	}
	if err != nil {
		t.Fatalf("create netns %s: %v", name, err)
	}
	nl, err := netlink.NewHandleAt(h)
	if err != nil {
		h.Close()
		_ = netns.DeleteNamed(name)
		t.Fatalf("netlink handle in %s: %v", name, err)
	}
	n := &NetNS{Name: name, Path: "/run/netns/" + name, Handle: h, NL: nl}
	t.Cleanup(func() {
		nl.Close()
		h.Close()
		_ = netns.DeleteNamed(name)
	})
	if lo, err := nl.LinkByName("lo"); err == nil {
		_ = nl.LinkSetUp(lo)
	}
	return n
}

// Do runs fn with the calling goroutine's thread inside the namespace, and
// returns to the original namespace before the thread is released. Child
// processes started by fn (iptables) inherit the namespace.
func (n *NetNS) Do(fn func() error) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	if err != nil {
		return fmt.Errorf("get current netns: %w", err)
	}
	defer orig.Close()
	if err := netns.Set(n.Handle); err != nil {
		return fmt.Errorf("enter netns %s: %w", n.Name, err)
	}
	defer func() {
		if err := netns.Set(orig); err != nil {
			panic(fmt.Sprintf("cannot return to original netns: %v", err))
		}
	}()
	return fn()
}

// Exec runs a command inside the namespace (nsenter --net) and returns its
// combined output.
func (n *NetNS) Exec(args ...string) (string, error) {
	cmd := exec.Command("nsenter", append([]string{"--net=" + n.Path, "--"}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s in %s: %w: %s", strings.Join(args, " "), n.Name, err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

// MustExec is Exec that fails the test on error.
func (n *NetNS) MustExec(t testing.TB, args ...string) string {
	t.Helper()
	out, err := n.Exec(args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// Start runs a long-lived command inside the namespace and kills it (by
// PID) when the test ends.
func (n *NetNS) Start(t testing.TB, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command("nsenter", append([]string{"--net=" + n.Path, "--"}, args...)...)
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %v in %s: %v", args, n.Name, err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_, _ = cmd.Process.Wait()
	})
	return cmd
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
