//go:build e2e

package e2e

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// External IPs on the 3-host lab, whose podnetds allow the lab's /24
// (scripts/lab.sh: --external-ip-cidrs).

// TestExternalIPRules: external IPs outside --external-ip-cidrs, and the
// addresses podnet and the underlay live on even inside it, are refused
// naming why; an external IP's port and protocol belong to one service
// cluster-wide.
func TestExternalIPRules(t *testing.T) {
	l := svcLab(t)
	gw := l.Net + ".1"
	for addr, want := range map[string]string{
		"8.8.8.8":      "is outside the cluster's --external-ip-cidrs " + l.Net + ".0/24",
		"172.17.0.1":   "is outside the cluster's --external-ip-cidrs",
		l.HostIP("h2"): "is the underlay address of host h2",
		gw:             "is the underlay gateway of host h",
		l.Net + ".0":   "is the address of host h",
		l.Net + ".255": "is the broadcast address of host h",
		l.Net + ".201": "is the address of an etcd member",
		"10.96.0.10":   "lies in the service CIDR",
	} {
		out, err := l.Exec("h1", "podnetctl", "service", "create", "badext", "--selector", "a=b", "--port", "80", "--external-ip", addr)
		if err == nil || !strings.Contains(err.Error(), "external IP "+addr+" "+want) {
			t.Errorf("external IP %s: %v %s, want an error containing %q", addr, err, out, want)
		}
	}
	ext := l.Net + ".251"
	service(t, l, "h1", "exta", "--selector", "app=exta", "--port", "80", "--external-ip", ext)
	out, err := l.Exec("h2", "podnetctl", "service", "create", "extb", "--selector", "app=extb", "--port", "80", "--external-ip", ext)
	if err == nil || !strings.Contains(err.Error(), "external IP "+ext+" port 80/TCP is taken by service exta") {
		t.Fatalf("a second service on %s:80: %v %s", ext, err, out)
	}
	service(t, l, "h2", "extb", "--selector", "app=extb", "--port", "81", "--port", "80/udp", "--external-ip", ext)
}

// TestExternalIPBadRecord: a service record written straight into etcd
// (by hand, or by an older podnetd) takes another service's external IP
// and port, an etcd member's client port, a host's VXLAN port and the
// cluster DNS. podnet's control traffic goes on (etcd, even for a podnetd
// restarted meanwhile; VXLAN; the cluster DNS), the other service keeps
// its external IP, the bad service loses only the conflicting elements
// (its VIP works), every host shows why in service get and logs it once,
// and nothing of it is left in the kernel once the record is removed.
func TestExternalIPBadRecord(t *testing.T) {
	l := svcLab(t)
	ext := l.Net + ".252"
	backend(t, l, "h1", "good1", "--network", svcNet, "-l", "app=good", "--hostname", "good1")
	backend(t, l, "h2", "evil1", "--network", svcNet, "-l", "app=evil", "--hostname", "evil1")
	service(t, l, "h1", "good", "--selector", "app=good", "--port", "80:8080", "--external-ip", ext)
	run(t, l, "h3", "badrec-far", sleeper("--network", svcNet)...)
	far := ipOf(t, l, "h3", "badrec-far", svcNet)
	evilVIP := "10.96.77.77"
	record := fmt.Sprintf(`{"name":"evil","selector":{"app":"evil"},"type":"ClusterIP","clusterIP":%q,`+
		`"externalIPs":[%q,%q,%q,"10.96.0.10"],"ports":[{"protocol":"TCP","port":80,"targetPort":8080},`+
		`{"protocol":"TCP","port":2379,"targetPort":8080},{"protocol":"UDP","port":4789,"targetPort":9001},`+
		`{"protocol":"UDP","port":53,"targetPort":9001}],"sessionAffinity":"None","externalTrafficPolicy":"Cluster",`+
		`"created":"2026-01-01T00:00:00Z","updated":"2026-01-01T00:00:00Z"}`, evilVIP, ext, l.Net+".201", l.HostIP("h2"))
	etcdctl := func(args ...string) string {
		return l.MustExec(t, "h1", append([]string{"sh", "-c", `etcdctl --endpoints "$LAB_ETCD_ENDPOINTS" "$@"`, "etcdctl"}, args...)...)
	}
	etcdctl("put", "/podnet/v1/services/evil", record)
	t.Cleanup(func() { etcdctl("del", "/podnet/v1/services/evil") })

	// Every host says what it left out, once.
	for _, h := range l.Hosts() {
		WaitFor(t, shortWait, func() (bool, string) {
			v := svcGet(t, l, h, "evil")
			for _, e := range v.Status.Errors {
				if e.Host == h && strings.Contains(e.Error, ext+":80/tcp is already served by service good") &&
					strings.Contains(e.Error, "external IP "+l.HostIP("h2")+" is the underlay address of host h2") &&
					strings.Contains(e.Error, "external IP 10.96.0.10 lies in the service CIDR") {
					return true, ""
				}
			}
			return false, fmt.Sprintf("%s: evil's errors %+v", h, v.Status.Errors)
		})
	}
	// The good service keeps its external IP, the bad one its own VIP.
	l.MustClient(t, "ip", "route", "replace", ext+"/32", "via", l.HostIP("h3"))
	t.Cleanup(func() { _, _ = l.Client("ip", "route", "del", ext+"/32") })
	for _, c := range []struct{ url, want string }{{"http://" + ext + "/id", "good1"}} {
		out, err := curlClient(l, c.url)
		if err != nil || !strings.Contains(out, c.want) {
			t.Errorf("%s from outside: %v %q, want %s", c.url, err, out, c.want)
		}
	}
	if out, err := curl(l, "h3", "http://"+evilVIP+"/id"); err != nil || !strings.Contains(out, "evil1") {
		t.Errorf("the bad service's own VIP: %v %q", err, out)
	}
	// Control traffic: etcd (a podnetd restarted now must get going), VXLAN
	// across hosts, the cluster DNS.
	if err := l.PodnetdStop("h2", true); err != nil {
		t.Fatal(err)
	}
	if err := l.PodnetdStart("h2"); err != nil {
		t.Fatalf("h2's podnetd restarted under the bad record: %v", err)
	}
	WaitFor(t, shortWait, func() (bool, string) {
		out, err := l.Exec("h2", "podnetctl", "status")
		return err == nil && strings.Contains(out, "etcd:           healthy"), out + errString(err)
	})
	l.MustExec(t, "h2", "podnetctl", "service", "create", "badrec-probe", "--selector", "a=b", "--port", "80")
	l.MustExec(t, "h2", "podnetctl", "service", "rm", "badrec-probe")
	WaitFor(t, shortWait, func() (bool, string) {
		return ping(l, "h1", "good1", far), "h1 -> h3 over VXLAN"
	})
	mustContain(t, "the cluster DNS on h2", l.MustExec(t, "h2", "netcheck", "dns", dnsAddr, "good"), "NOERROR")
	// Logged once per change, not every second (h1's podnetd was not
	// restarted: its log has the whole story).
	time.Sleep(3 * time.Second)
	n := 0
	for _, line := range strings.Split(readFile(t, filepath.Join(l.HostDir("h1"), "podnetd.log")), "\n") {
		if strings.Contains(line, "service cannot be programmed on this host") && strings.Contains(line, "service=evil") {
			n++
		}
	}
	if n != 1 {
		t.Errorf("h1 logged evil's status %d times, want once", n)
	}

	etcdctl("del", "/podnet/v1/services/evil")
	for _, h := range l.Hosts() {
		WaitFor(t, shortWait, func() (bool, string) {
			out := l.MustExec(t, h, "nft", "list", "map", "inet", "podnet", "svc-ip4")
			return !strings.Contains(out, evilVIP) && !strings.Contains(out, l.Net+".201"), h + " still holds evil's elements:\n" + out
		})
	}
}
