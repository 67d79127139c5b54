package cniplugin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/netip"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/podnet/podnet/admin"
	"github.com/podnet/podnet/internal/testutil"
	"github.com/vishvananda/netlink"
)

// fakePodnetd plays podnetd's part in the host namespace: ADD makes the
// veth pair there (as the driver does), DEL deletes it.
type fakePodnetd struct {
	t      *testing.T
	host   *testutil.NetNS
	mu     sync.Mutex
	calls  []string
	down   bool   // every call fails as if podnetd were not running
	peer   string // the peer ADD reports (default: the one it made)
	status admin.CNIStatus
}

const mac = "02:70:0a:2c:00:09"

func (f *fakePodnetd) result() admin.CNIResult {
	return admin.CNIResult{Endpoint: "ep1", HostIface: "pnhtest", PeerIface: "pnctest", MAC: mac, MTU: 1400,
		IPs:    []admin.CNIAddress{{Address: netip.MustParsePrefix("10.44.0.9/16"), Gateway: netip.MustParseAddr("10.44.0.1")}},
		Routes: []admin.CNIRoute{{Dst: netip.MustParsePrefix("0.0.0.0/0"), GW: netip.MustParseAddr("10.44.0.1")}},
		DNS:    admin.CNIDNS{Nameservers: []netip.Addr{netip.MustParseAddr("10.96.0.10")}, Search: []string{"svc.podnet.local"}}}
}

func (f *fakePodnetd) Post(_ context.Context, path string, in, out any) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, path)
	if f.down {
		return &admin.UnreachableError{Socket: "/run/podnet/podnet.sock", Err: syscall.ECONNREFUSED}
	}
	switch path {
	case "/v1/cni/add":
		hw, _ := net.ParseMAC(mac)
		v := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "pnhtest", MTU: 1400}, PeerName: "pnctest", PeerHardwareAddr: hw}
		if err := f.host.NL.LinkAdd(v); err != nil {
			return err
		}
		_ = f.host.NL.LinkSetUp(v)
		res := f.result()
		if f.peer != "" {
			res.PeerIface = f.peer
		}
		*out.(*admin.CNIResult) = res
	case "/v1/cni/check":
		*out.(*admin.CNIResult) = f.result()
	case "/v1/cni/del":
		if l, err := f.host.NL.LinkByName("pnhtest"); err == nil {
			_ = f.host.NL.LinkDel(l)
		}
	case "/v1/cni/status":
		*out.(*admin.CNIStatus) = f.status
	}
	return nil
}

func (f *fakePodnetd) called(path string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, c := range f.calls {
		if c == path {
			return true
		}
	}
	return false
}

type pluginRig struct {
	host, ctr *testutil.NetNS
	pod       *fakePodnetd
	p         *Plugin
	out       *bytes.Buffer
}

func newPluginRig(t *testing.T) *pluginRig {
	host, ctr := testutil.NewNetNS(t), testutil.NewNetNS(t)
	pod := &fakePodnetd{t: t, host: host}
	out := &bytes.Buffer{}
	p := &Plugin{Host: host.NL, Dial: func(string) Podnetd { return pod }, Stdout: out, Stderr: &bytes.Buffer{}}
	return &pluginRig{host: host, ctr: ctr, pod: pod, p: p, out: out}
}

func (r *pluginRig) args(version string, prev string) *skel.CmdArgs {
	conf := `{"cniVersion":"` + version + `","name":"pods","type":"podnet","subnet":"10.44.0.0/16"` + prev + `}`
	return &skel.CmdArgs{ContainerID: "c0ffee", Netns: r.ctr.Path, IfName: "eth0", Args: "IgnoreUnknown=1;K8S_POD_NAME=web1", StdinData: []byte(conf)}
}

// ADD moves podnetd's peer into the container as eth0 with its address,
// MAC and default route, and prints a result naming both interfaces;
// CHECK passes, then fails once the route is gone; DEL removes it all.
func TestAddCheckDel(t *testing.T) {
	r := newPluginRig(t)
	if err := r.p.Add(r.args("1.1.0", "")); err != nil {
		t.Fatal(err)
	}
	out := r.ctr.MustExec(t, "ip", "-4", "addr", "show", "eth0")
	if !strings.Contains(out, "10.44.0.9/16") || !strings.Contains(out, "UP") {
		t.Fatalf("eth0 in the container:\n%s", out)
	}
	if routes := r.ctr.MustExec(t, "ip", "route"); !strings.Contains(routes, "default via 10.44.0.1 dev eth0") {
		t.Fatalf("routes in the container:\n%s", routes)
	}
	if _, err := r.host.NL.LinkByName("pnctest"); err == nil {
		t.Fatal("the peer is still in the host namespace")
	}
	var res current.Result
	if err := json.Unmarshal(r.out.Bytes(), &res); err != nil {
		t.Fatalf("result %s: %v", r.out, err)
	}
	if res.CNIVersion != "1.1.0" || len(res.Interfaces) != 2 || res.Interfaces[1].Sandbox != r.ctr.Path || res.Interfaces[1].Mac != mac ||
		len(res.IPs) != 1 || *res.IPs[0].Interface != 1 || res.IPs[0].Gateway.String() != "10.44.0.1" || res.DNS.Nameservers[0] != "10.96.0.10" {
		t.Fatalf("result %s", r.out)
	}

	prev := `,"prevResult":` + r.out.String()
	if err := r.p.Check(r.args("1.1.0", prev)); err != nil {
		t.Fatalf("CHECK of a fresh attachment: %v", err)
	}
	r.ctr.MustExec(t, "ip", "route", "del", "default")
	err := r.p.Check(r.args("1.1.0", prev))
	if err == nil || !strings.Contains(err.Error(), "lacks route 0.0.0.0/0 via 10.44.0.1") {
		t.Fatalf("CHECK without the default route: %v", err)
	}
	r.ctr.MustExec(t, "ip", "addr", "flush", "dev", "eth0")
	if err := r.p.Check(r.args("1.1.0", prev)); err == nil || !strings.Contains(err.Error(), "lacks address 10.44.0.9/16") {
		t.Fatalf("CHECK without the address: %v", err)
	}

	if err := r.p.Del(r.args("1.1.0", "")); err != nil {
		t.Fatal(err)
	}
	if _, err := r.ctr.NL.LinkByName("eth0"); err == nil {
		t.Fatal("eth0 left in the container after DEL")
	}
}

// A result converts to the version the runtime asked for.
func TestAddOldVersion(t *testing.T) {
	r := newPluginRig(t)
	if err := r.p.Add(r.args("0.4.0", "")); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(r.out.String(), `"cniVersion": "0.4.0"`) {
		t.Fatalf("result %s", r.out)
	}
}

// When the container side cannot be set up, ADD undoes podnetd's side.
func TestFailedAddIsUndone(t *testing.T) {
	r := newPluginRig(t)
	r.pod.peer = "pncmissing"
	err := r.p.Add(r.args("1.1.0", ""))
	if err == nil {
		t.Fatal("ADD succeeded without an interface to move")
	}
	if !r.pod.called("/v1/cni/del") {
		t.Fatal("a failed ADD did not ask podnetd to remove the attachment")
	}
	if _, err := r.host.NL.LinkByName("pnhtest"); err == nil {
		t.Fatal("host veth left after a failed ADD")
	}
	if _, err := r.ctr.NL.LinkByName("eth0"); err == nil {
		t.Fatal("eth0 left in the container after a failed ADD")
	}
}

// Without podnetd: ADD asks to try later naming podnetd, STATUS says the
// plugin is not available, DEL still frees the container (removing its
// interface: podnetd releases the address when it returns).
func TestWithoutPodnetd(t *testing.T) {
	r := newPluginRig(t)
	if err := r.p.Add(r.args("1.1.0", "")); err != nil {
		t.Fatal(err)
	}
	r.pod.down = true
	var te *types.Error
	if err := r.p.Add(r.args("1.1.0", "")); !errors.As(err, &te) || te.Code != types.ErrTryAgainLater || !strings.Contains(te.Msg, "podnetd") {
		t.Fatalf("ADD without podnetd: %v", err)
	}
	if err := r.p.Status(r.args("1.1.0", "")); !errors.As(err, &te) || te.Code != types.ErrPluginNotAvailable || !strings.Contains(te.Msg, "podnetd is not running") {
		t.Fatalf("STATUS without podnetd: %v", err)
	}
	if err := r.p.Del(r.args("1.1.0", "")); err != nil {
		t.Fatalf("DEL without podnetd: %v", err)
	}
	if _, err := r.ctr.NL.LinkByName("eth0"); err == nil {
		t.Fatal("DEL without podnetd left the container's interface")
	}
	r.pod.down = false
	r.pod.status = admin.CNIStatus{Reason: "podnetd cannot reach etcd: context deadline exceeded"}
	if err := r.p.Status(r.args("1.1.0", "")); !errors.As(err, &te) || te.Code != types.ErrPluginNotAvailable || !strings.Contains(te.Msg, "cannot reach etcd") {
		t.Fatalf("STATUS of a podnetd that is not ready: %v", err)
	}
	r.pod.status = admin.CNIStatus{Ready: true}
	if err := r.p.Status(r.args("1.1.0", "")); err != nil {
		t.Fatalf("STATUS of a ready podnetd: %v", err)
	}
}
