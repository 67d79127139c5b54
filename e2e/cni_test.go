//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// The CNI plugin against real clients: cnitool (the CNI project's own
// runtime, built by make build) and podman 4 with its CNI backend, each
// on a lab host beside Docker (scripts/lab.sh podman keeps podman's state
// in the lab).

// clusterNet defines network name on every host (podnetctl network
// create: each podnetd creates the Docker network) and removes it when
// the test ends.
func clusterNet(t *testing.T, l *Lab, name, subnet string) {
	t.Helper()
	l.MustExec(t, "h1", "podnetctl", "network", "create", name, "--subnet", subnet)
	t.Cleanup(func() {
		if out, err := l.Exec("h1", "podnetctl", "network", "rm", name); err != nil {
			t.Errorf("network rm %s: %v: %s", name, err, out)
		}
	})
}

// attachment is an endpoint as podnetctl endpoint ls -o json shows it.
type attachment struct {
	ID       string `json:"id"`
	IPv4     string `json:"ipv4"`
	HostVeth string `json:"hostVeth"`
	CNI      *struct {
		Network     string `json:"network"`
		ContainerID string `json:"containerID"`
		IfName      string `json:"ifname"`
	} `json:"cni"`
}

// attachments lists host's CNI endpoints on network.
func attachments(t *testing.T, l *Lab, host, network string) []attachment {
	t.Helper()
	var all, out []attachment
	s := l.MustExec(t, host, "podnetctl", "endpoint", "ls", "-o", "json")
	if err := json.Unmarshal([]byte(s), &all); err != nil {
		t.Fatalf("podnetctl endpoint ls: %v: %s", err, s)
	}
	for _, a := range all {
		if a.CNI != nil && a.CNI.Network == network {
			out = append(out, a)
		}
	}
	return out
}

// containerAddrs maps the container addresses recorded in etcd for pool
// (key form 10.61.0.0-16) to their owner endpoints.
func containerAddrs(t *testing.T, l *Lab, pool string) map[string]string {
	t.Helper()
	out := l.MustExec(t, "h1", "sh", "-c",
		fmt.Sprintf(`etcdctl --endpoints "$LAB_ETCD_ENDPOINTS" get --print-value-only --prefix /podnet/v1/ipam/%s/addrs/`, pool))
	addrs := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		var a struct {
			IP       string `json:"ip"`
			Kind     string `json:"kind"`
			Endpoint string `json:"endpoint"`
		}
		if line = strings.TrimSpace(line); line == "" {
			continue
		}
		if err := json.Unmarshal([]byte(line), &a); err != nil {
			t.Fatalf("address record %q: %v", line, err)
		}
		if a.Kind == "container" {
			addrs[a.IP] = a.Endpoint
		}
	}
	return addrs
}

// requireCNITool fails unless make build put cnitool beside podnetd.
func requireCNITool(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(filepath.Join(PodnetBin(), "cnitool")); err != nil {
		t.Fatalf("cnitool is missing from %s (make build builds it): %v", PodnetBin(), err)
	}
}

// cnitool runs cnitool on host with the configurations in confDir and
// podnet's plugin on CNI_PATH; env adds CNI_ARGS or CAP_ARGS.
func cnitool(l *Lab, host, confDir string, env []string, args ...string) (string, error) {
	full := append([]string{"env", "NETCONFPATH=" + confDir, "CNI_PATH=" + filepath.Join(l.Dir, "cni-bin")}, env...)
	return l.Exec(host, append(append(full, "cnitool"), args...)...)
}

// cniNetns creates a network namespace on host (in its private /run/netns)
// for cnitool to attach, removed when the test ends.
func cniNetns(t *testing.T, l *Lab, host, name string) string {
	t.Helper()
	l.MustExec(t, host, "ip", "netns", "add", name)
	t.Cleanup(func() { _, _ = l.Exec(host, "ip", "netns", "del", name) })
	l.MustExec(t, host, "ip", "-n", name, "link", "set", "lo", "up")
	return "/run/netns/" + name
}

// TestCNIToolLifecycle drives every CNI command through cnitool on h1: ADD
// gives a namespace an address of the podnet network that a Docker
// container on h2 reaches by address and by the name CNI_ARGS gave;
// CHECK passes, then fails when the route is gone; DEL frees the address
// and is idempotent; a failed ADD leaves nothing; GC removes attachments
// the runtime no longer lists; STATUS fails naming podnetd while it is
// down.
func TestCNIToolLifecycle(t *testing.T) {
	l := multi(t)
	requireCNITool(t)
	const network, subnet, pool = "cnit", "10.61.0.0/16", "10.61.0.0-16"
	clusterNet(t, l, network, subnet)
	confDir := filepath.Join(l.HostDir("h1"), "cnitool-net.d")
	conf := l.MustExec(t, "h1", "podnetctl", "cni-config", network)
	mustContain(t, "cni-config", conf, `"cniVersion": "1.1.0"`)
	mustContain(t, "cni-config", conf, `"subnet": "`+subnet+`"`)
	if err := os.MkdirAll(confDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(confDir, network+".conflist"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(confDir) })
	// A network nobody defined is refused by name.
	if out, err := l.Exec("h1", "podnetctl", "cni-config", "nosuchnet"); err == nil || !strings.Contains(err.Error(), "no podnet network named nosuchnet") {
		t.Fatalf("cni-config of an unknown network: %v %s", err, out)
	}

	if out, err := cnitool(l, "h1", confDir, nil, "status", network, "/run/netns/none"); err != nil {
		t.Fatalf("STATUS of a ready podnetd: %v %s", err, out)
	}
	ns1 := cniNetns(t, l, "h1", "cnit1")
	out, err := cnitool(l, "h1", confDir, []string{"CNI_ARGS=IgnoreUnknown=1;K8S_POD_NAME=cnipod"}, "add", network, ns1)
	if err != nil {
		t.Fatalf("ADD: %v %s", err, out)
	}
	var res struct {
		IPs []struct {
			Address string `json:"address"`
			Gateway string `json:"gateway"`
		} `json:"ips"`
		DNS struct {
			Nameservers []string `json:"nameservers"`
		} `json:"dns"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil || len(res.IPs) != 1 {
		t.Fatalf("ADD result %s: %v", out, err)
	}
	addr := netip.MustParsePrefix(res.IPs[0].Address)
	if !netip.MustParsePrefix(subnet).Contains(addr.Addr()) || res.IPs[0].Gateway != "10.61.0.1" || !slices.Contains(res.DNS.Nameservers, dnsAddr) {
		t.Fatalf("ADD result %s: want an address of %s, its gateway and the cluster DNS", out, subnet)
	}
	ip := addr.Addr().String()
	mustContain(t, "eth0 in the namespace", l.MustExec(t, "h1", "ip", "-n", "cnit1", "addr", "show", "eth0"), addr.String())
	if as := attachments(t, l, "h1", network); len(as) != 1 || as[0].IPv4 != addr.String() {
		t.Fatalf("podnetd's attachments: %+v", as)
	}
	if owner := containerAddrs(t, l, pool)[ip]; owner == "" {
		t.Fatalf("address %s not recorded with its attachment as owner", ip)
	}
	// A Docker container on another host reaches it by address and name.
	run(t, l, "h2", "cnidk", sleeper("--network", network, "--dns", dnsAddr)...)
	WaitFor(t, shortWait, func() (bool, string) {
		return ping(l, "h2", "cnidk", ip), "a Docker container on h2 cannot reach the cnitool namespace on h1 at " + ip
	})
	WaitFor(t, shortWait, func() (bool, string) {
		got, out := lookupIn(l, "h2", "cnidk", "cnipod")
		return slices.Equal(got, []string{ip}), "cnipod does not resolve to " + ip + " on h2:\n" + out
	})

	if out, err := cnitool(l, "h1", confDir, nil, "check", network, ns1); err != nil {
		t.Fatalf("CHECK of a fresh attachment: %v %s", err, out)
	}
	l.MustExec(t, "h1", "ip", "-n", "cnit1", "route", "del", "default")
	if out, err := cnitool(l, "h1", confDir, nil, "check", network, ns1); err == nil || !strings.Contains(err.Error(), "lacks route 0.0.0.0/0") {
		t.Fatalf("CHECK without the default route: %v %s", err, out)
	}

	if out, err := cnitool(l, "h1", confDir, nil, "del", network, ns1); err != nil {
		t.Fatalf("DEL: %v %s", err, out)
	}
	if _, ok := containerAddrs(t, l, pool)[ip]; ok {
		t.Fatalf("address %s still recorded after DEL", ip)
	}
	if as := attachments(t, l, "h1", network); len(as) != 0 {
		t.Fatalf("attachments after DEL: %+v", as)
	}
	if out, err := cnitool(l, "h1", confDir, nil, "del", network, ns1); err != nil {
		t.Fatalf("second DEL: %v %s", err, out)
	}

	// A failed ADD (the namespace has an eth0 that is no veth) leaves
	// nothing: no attachment, no address, no interface.
	before := containerAddrs(t, l, pool) // the Docker container's
	ns2 := cniNetns(t, l, "h1", "cnit2")
	l.MustExec(t, "h1", "ip", "-n", "cnit2", "link", "add", "eth0", "type", "bridge")
	if out, err := cnitool(l, "h1", confDir, nil, "add", network, ns2); err == nil || !strings.Contains(err.Error(), "already has an interface eth0") {
		t.Fatalf("ADD into a namespace with another eth0: %v %s", err, out)
	}
	if as, addrs := attachments(t, l, "h1", network), containerAddrs(t, l, pool); len(as) != 0 || !maps.Equal(addrs, before) {
		t.Fatalf("a failed ADD left attachments %+v, addresses %v (before: %v)", as, addrs, before)
	}
	if vs := links(t, l, "h1", "pnh"); len(vs) != len(endpoints(t, l, "h1")) {
		t.Fatalf("host veths %v for %d endpoints: a failed ADD left one", vs, len(endpoints(t, l, "h1")))
	}

	// GC: the runtime lists no attachment (cnitool passes none), and its
	// cache of results is gone, so only the plugin's GC can remove them.
	for _, n := range []string{"cnit3", "cnit4"} {
		if out, err := cnitool(l, "h1", confDir, nil, "add", network, cniNetns(t, l, "h1", n)); err != nil {
			t.Fatalf("ADD %s: %v %s", n, err, out)
		}
	}
	if as := attachments(t, l, "h1", network); len(as) != 2 {
		t.Fatalf("attachments before GC: %+v", as)
	}
	l.MustExec(t, "h1", "rm", "-rf", "/var/lib/cni")
	if out, err := cnitool(l, "h1", confDir, nil, "gc", network, "/run/netns/cnit3"); err != nil {
		t.Fatalf("GC: %v %s", err, out)
	}
	if as, addrs := attachments(t, l, "h1", network), containerAddrs(t, l, pool); len(as) != 0 || !maps.Equal(addrs, before) {
		t.Fatalf("GC left attachments %+v, addresses %v (before: %v)", as, addrs, before)
	}
	if vs := links(t, l, "h1", "pnh"); len(vs) != len(endpoints(t, l, "h1")) {
		t.Fatalf("host veths %v for %d endpoints after GC", vs, len(endpoints(t, l, "h1")))
	}

	// STATUS names podnetd while it is down.
	if err := l.PodnetdStop("h1", false); err != nil {
		t.Fatal(err)
	}
	out, err = cnitool(l, "h1", confDir, nil, "status", network, "/run/netns/none")
	if serr := l.PodnetdStart("h1"); serr != nil {
		t.Fatal(serr)
	}
	if err == nil || !strings.Contains(err.Error(), "podnetd is not running") {
		t.Fatalf("STATUS without podnetd: %v %s", err, out)
	}
}
