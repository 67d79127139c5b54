package link

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

// ErrNoBridgeNetfilter: the kernel has no br_netfilter and it could not be
// loaded, so frames bridged between two ports of one bridge never reach
// the IP hooks (network policy cannot filter them).
var ErrNoBridgeNetfilter = errors.New("the kernel's br_netfilter is missing (modprobe br_netfilter failed)")

// EnsureBridgeNetfilter makes frames bridged between the ports of bridge
// name pass the IPv4 and IPv6 netfilter hooks (forward among them), where
// network policy filters them: it loads br_netfilter if the kernel lacks
// it (modprobe br_netfilter; it registers net/bridge under /proc/sys)
// and sets the bridge's own nf_call_iptables and nf_call_ip6tables (ip
// link set NAME type bridge nf_call_iptables 1 nf_call_ip6tables 1), so
// podnet relies neither on dockerd having loaded the module nor on the
// namespace-wide bridge-nf-call-* sysctls, which concern every bridge.
// The request goes to the calling thread's network namespace.
func (k *Kernel) EnsureBridgeNetfilter(name string) error {
	if _, err := os.Stat(filepath.Join(k.ProcSys, "net/bridge")); errors.Is(err, os.ErrNotExist) {
		if out, err := exec.Command("modprobe", "br_netfilter").CombinedOutput(); err != nil {
			return fmt.Errorf("bridge %s: %w: %v %s", name, ErrNoBridgeNetfilter, err, out)
		}
	}
	l, err := k.NL.LinkByName(name)
	if err != nil {
		return fmt.Errorf("bridge %s: %w", name, err)
	}
	req := nl.NewNetlinkRequest(unix.RTM_NEWLINK, unix.NLM_F_ACK)
	msg := nl.NewIfInfomsg(unix.AF_UNSPEC)
	msg.Index = int32(l.Attrs().Index)
	req.AddData(msg)
	info := nl.NewRtAttr(unix.IFLA_LINKINFO, nil)
	info.AddRtAttr(nl.IFLA_INFO_KIND, nl.NonZeroTerminated("bridge"))
	data := info.AddRtAttr(nl.IFLA_INFO_DATA, nil)
	data.AddRtAttr(nl.IFLA_BR_NF_CALL_IPTABLES, []byte{1})
	data.AddRtAttr(nl.IFLA_BR_NF_CALL_IP6TABLES, []byte{1})
	req.AddData(info)
	if _, err := req.Execute(unix.NETLINK_ROUTE, 0); err != nil {
		return fmt.Errorf("bridge %s: set nf_call_iptables: %w", name, err)
	}
	return nil
}
