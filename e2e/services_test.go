//go:build e2e

package e2e

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// Services on the 3-host lab. Each test checks the control plane first
// (etcd, podnetctl service get, the cluster DNS), then the traffic through
// the VIPs, NodePorts and external IPs podnetd programs.

// svcView mirrors admin.ServiceView as podnetctl -o json prints it.
type svcView struct {
	Name      string            `json:"name"`
	Selector  map[string]string `json:"selector"`
	Type      string            `json:"type"`
	ClusterIP string            `json:"clusterIP"`
	Ports     []struct {
		Name       string `json:"name"`
		Protocol   string `json:"protocol"`
		Port       int    `json:"port"`
		TargetPort int    `json:"targetPort"`
		NodePort   int    `json:"nodePort"`
	} `json:"ports"`
	ExternalIPs         []string `json:"externalIPs"`
	HealthCheckNodePort int      `json:"healthCheckNodePort"`
	Status              struct {
		Endpoints []svcEndpoint `json:"endpoints"`
		Errors    []struct {
			Host  string `json:"host"`
			Error string `json:"error"`
		} `json:"errors"`
	} `json:"status"`
}

type svcEndpoint struct {
	Host      string `json:"host"`
	Container string `json:"container"`
	Mode      string `json:"mode"`
	Address   string `json:"address"`
	Ports     []int  `json:"ports"`
	Ready     bool   `json:"ready"`
	Reason    string `json:"reason"`
	Reach     string `json:"reach"`
}

type agentView struct {
	Programmer bool          `json:"programmer"`
	Synced     bool          `json:"synced"`
	Services   int           `json:"services"`
	LagCount   int           `json:"lagCount"`
	LagP50     time.Duration `json:"lagP50"`
	LagP99     time.Duration `json:"lagP99"`
	LagMax     time.Duration `json:"lagMax"`
}

// svcNet is the vxlan network services tests use (on every host).
const (
	svcNet    = "svc"
	svcSubnet = "10.72.0.0/16"
	dnsAddr   = "10.96.0.10"
)

// svcLab returns the shared 3-host lab with network svc on every host.
func svcLab(t *testing.T) *Lab {
	t.Helper()
	l := multi(t)
	vxNet(t, l, svcNet, svcSubnet)
	return l
}

// service runs `podnetctl service create` on host and removes the
// service when the test ends.
func service(t *testing.T, l *Lab, host, name string, args ...string) svcView {
	t.Helper()
	out := l.MustExec(t, host, append([]string{"podnetctl", "service", "create", name, "-o", "json"}, args...)...)
	t.Cleanup(func() { _, _ = l.Exec(host, "podnetctl", "service", "rm", name) })
	var v svcView
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("service create %s: %v: %s", name, err, out)
	}
	return v
}

func svcGet(t *testing.T, l *Lab, host, name string) svcView {
	t.Helper()
	out := l.MustExec(t, host, "podnetctl", "service", "get", name, "-o", "json")
	var v svcView
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("service get %s: %v: %s", name, err, out)
	}
	return v
}

// endpointsAre polls until service name, seen from every host, lists
// exactly want ("host/container/address/ready" each).
func endpointsAre(t *testing.T, l *Lab, name string, want ...string) {
	t.Helper()
	slices.Sort(want)
	for _, h := range l.Hosts() {
		WaitFor(t, time.Minute, func() (bool, string) {
			v := svcGet(t, l, h, name)
			var got []string
			for _, e := range v.Status.Endpoints {
				got = append(got, fmt.Sprintf("%s/%s/%s/%v", e.Host, e.Container, e.Address, e.Ready))
			}
			slices.Sort(got)
			return slices.Equal(got, want), fmt.Sprintf("%s sees endpoints of %s %v, want %v", h, name, got, want)
		})
	}
}

func agent(t *testing.T, l *Lab, host string) agentView {
	t.Helper()
	var a agentView
	out := l.MustExec(t, host, "podnetctl", "service", "agent", "-o", "json")
	if err := json.Unmarshal([]byte(out), &a); err != nil {
		t.Fatalf("service agent: %v: %s", err, out)
	}
	return a
}

// lookup resolves name with the cluster DNS from a throwaway container
// on host (its sorted addresses; nil when the name does not resolve).
func lookup(l *Lab, host, name, qtype string) ([]string, string) {
	out, _ := l.Docker(host, "run", "--rm", "--network", svcNet, "--dns", dnsAddr, TestImage,
		"nslookup", "-type="+qtype, name, dnsAddr)
	return nslookupAddrs(out), out
}

// lookupIn is lookup from a running container (no etcd needed).
func lookupIn(l *Lab, host, container, name string) ([]string, string) {
	out, _ := l.Docker(host, "exec", container, "nslookup", name, dnsAddr)
	return nslookupAddrs(out), out
}

// nslookupAddrs reads the answers of busybox nslookup, sorted.
func nslookupAddrs(out string) []string {
	var addrs []string
	lines := strings.Split(out, "\n")
	for i, line := range lines {
		if i < 2 { // the server's own address
			continue
		}
		if a, ok := strings.CutPrefix(strings.TrimSpace(line), "Address:"); ok {
			addrs = append(addrs, strings.TrimSpace(strings.Split(strings.TrimSpace(a), " ")[0]))
		}
	}
	slices.Sort(addrs)
	return addrs
}

// resolvesTo polls until name resolves to want from every host.
func resolvesTo(t *testing.T, l *Lab, name string, want ...string) {
	t.Helper()
	slices.Sort(want)
	for _, h := range l.Hosts() {
		WaitFor(t, shortWait, func() (bool, string) {
			got, out := lookup(l, h, name, "a")
			return slices.Equal(got, want), fmt.Sprintf("%s: %s resolves to %v, want %v:\n%s", h, name, got, want, out)
		})
	}
}

// svcKeys lists every service-related etcd key.
func svcKeys(t *testing.T, l *Lab) []string {
	t.Helper()
	var out []string
	for _, p := range []string{"services/", "svcips/", "nodeports/", "svcstatus/"} {
		out = append(out, etcdKeys(t, l, "h1", p)...)
	}
	return out
}

// backend runs a container answering HTTP on 8080 (/id: its hostname),
// TCP echo on 9000, UDP echo on 9001 and a TCP "from" server on 9002
// (each logs its peers), and removes it when the test ends.
func backend(t *testing.T, l *Lab, host, name string, args ...string) {
	t.Helper()
	run(t, l, host, name, append(args, TestImage, "sh", "-c",
		"mkdir -p /www && hostname > /www/id && { netcheck echo-server 9000 & netcheck udp-server 9001 & "+
			"netcheck tcp-server 9002 & exec httpd -f -p 8080 -h /www; }")...)
}

// TestServiceObjects: a service created on one host is the same object on
// every host (etcd), lists containers of every host matching its selector
// with their addresses, resolves by name everywhere, and leaves no key
// behind when removed.
func TestServiceObjects(t *testing.T) {
	l := svcLab(t)
	backend(t, l, "h1", "obj1", "--network", svcNet, "-l", "app=obj")
	backend(t, l, "h2", "obj2", "--network", svcNet, "-l", "app=obj")
	ip1, ip2 := ipOf(t, l, "h1", "obj1", svcNet), ipOf(t, l, "h2", "obj2", svcNet)
	run(t, l, "h3", "other", sleeper("--network", svcNet, "-l", "app=other")...)
	v := service(t, l, "h1", "obj", "--selector", "app=obj", "--port", "http:80:8080", "--port", "dns:53/udp",
		"--type", "NodePort", "--session-affinity", "ClientIP", "--affinity-timeout", "10m")
	if !strings.HasPrefix(v.ClusterIP, "10.96.") || v.Ports[0].NodePort < 30000 || v.Ports[0].NodePort > 32767 {
		t.Fatalf("allocation: %+v", v)
	}
	var rec struct {
		ClusterIP string `json:"clusterIP"`
	}
	if !etcdGet(t, l, "h3", "services/obj", &rec) || rec.ClusterIP != v.ClusterIP {
		t.Fatalf("etcd services/obj: %+v", rec)
	}
	mustContain(t, "VIP claim", strings.Join(svcKeys(t, l), " "), "svcips/"+hexIP(v.ClusterIP))
	endpointsAre(t, l, "obj", "h1/obj1/"+ip1+"/true", "h2/obj2/"+ip2+"/true")
	resolvesTo(t, l, "obj.svc.podnet.local", v.ClusterIP)
	resolvesTo(t, l, "obj", v.ClusterIP)
	out, _ := l.Docker("h3", "run", "--rm", "--network", svcNet, "--dns", dnsAddr, TestImage,
		"nslookup", "-type=srv", "_http._tcp.obj.svc.podnet.local", dnsAddr)
	mustContain(t, "SRV", out, "80 obj.svc.podnet.local")
	out, _ = l.Docker("h2", "run", "--rm", "--network", svcNet, "--dns", dnsAddr, TestImage,
		"nslookup", v.ClusterIP, dnsAddr)
	mustContain(t, "PTR of the VIP", out, "obj.svc.podnet.local")
	// The table form names what the user asked for.
	table := l.MustExec(t, "h3", "podnetctl", "service", "get", "obj")
	for _, want := range []string{"obj1", ip1 + ":8080", "ClientIP (10m0s)"} {
		mustContain(t, "service get", table, want)
	}

	// A stopped container leaves, a started one joins, without a command.
	l.MustDocker(t, "h2", "stop", "-t", "1", "obj2")
	endpointsAre(t, l, "obj", "h1/obj1/"+ip1+"/true")
	l.MustDocker(t, "h2", "start", "obj2")
	ip2 = ipOf(t, l, "h2", "obj2", svcNet)
	endpointsAre(t, l, "obj", "h1/obj1/"+ip1+"/true", "h2/obj2/"+ip2+"/true")

	l.MustExec(t, "h2", "podnetctl", "service", "rm", "obj")
	if k := svcKeys(t, l); len(k) != 0 {
		t.Fatalf("keys left after rm: %v", k)
	}
	WaitFor(t, shortWait, func() (bool, string) {
		got, out := lookup(l, "h3", "obj.svc.podnet.local", "a")
		return len(got) == 0 && strings.Contains(out, "NXDOMAIN"), "obj still resolves: " + out
	})
	out = l.MustExec(t, "h3", "podnetctl", "service", "rm", "obj")
	mustContain(t, "rm of an absent service", out, "not found")
}

// TestServiceApplyFile: apply -f creates, reports unchanged and configured
// like kubectl; get -o yaml applies back unchanged; delete -f removes.
func TestServiceApplyFile(t *testing.T) {
	l := svcLab(t)
	dir := filepath.Join(l.Dir, "apply")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "services.yaml")
	write := func(s string) {
		if err := os.WriteFile(file, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	spec := `
- name: front
  selector: {com.docker.compose.service: front}
  type: NodePort
  ports: [{name: http, port: 80, targetPort: 8080}]
- name: back
  selector: {app: back}
  clusterIP: None
  ports: [{port: 5432}]
`
	write(spec)
	t.Cleanup(func() { _, _ = l.Exec("h1", "podnetctl", "delete", "-f", file) })
	out := l.MustExec(t, "h1", "podnetctl", "apply", "-f", file)
	mustContain(t, "apply", out, "service/front created")
	mustContain(t, "apply", out, "service/back created")
	out = l.MustExec(t, "h2", "podnetctl", "apply", "-f", file)
	mustContain(t, "apply again", out, "service/front unchanged")
	write(strings.Replace(spec, "targetPort: 8080", "targetPort: 9090", 1))
	out = l.MustExec(t, "h3", "podnetctl", "apply", "-f", file)
	mustContain(t, "apply changed", out, "service/front configured")
	mustContain(t, "apply changed", out, "service/back unchanged")
	yaml := l.MustExec(t, "h1", "podnetctl", "service", "get", "front", "-o", "yaml")
	write(yaml)
	out = l.MustExec(t, "h1", "podnetctl", "apply", "-f", file)
	mustContain(t, "get -o yaml applied back", out, "service/front unchanged")

	// Compose-labelled containers are the endpoints; the headless service
	// resolves to its ready endpoints' addresses.
	backend(t, l, "h2", "demo-front-1", "--network", svcNet, "-l", "com.docker.compose.project=demo",
		"-l", "com.docker.compose.service=front")
	ipf := ipOf(t, l, "h2", "demo-front-1", svcNet)
	endpointsAre(t, l, "front", "h2/demo-front-1/"+ipf+"/true")
	run(t, l, "h1", "back1", sleeper("--network", svcNet, "-l", "app=back")...)
	run(t, l, "h3", "back2", sleeper("--network", svcNet, "-l", "app=back")...)
	resolvesTo(t, l, "back.svc.podnet.local", ipOf(t, l, "h1", "back1", svcNet), ipOf(t, l, "h3", "back2", svcNet))

	write(spec)
	out = l.MustExec(t, "h1", "podnetctl", "delete", "-f", file)
	mustContain(t, "delete -f", out, "service/front deleted")
	mustContain(t, "delete -f", out, "service/back deleted")
	if k := svcKeys(t, l); len(k) != 0 {
		t.Fatalf("keys left after delete -f: %v", k)
	}
}

// TestServiceBadInput: each bad request is refused with an error naming
// the problem, and nothing is created.
func TestServiceBadInput(t *testing.T) {
	l := svcLab(t)
	taken := service(t, l, "h1", "taken", "--selector", "app=taken", "--port", "80", "--type", "NodePort")
	run(t, l, "h1", "podaddr", sleeper("--network", svcNet)...)
	pod := ipOf(t, l, "h1", "podaddr", svcNet)
	before := svcKeys(t, l)
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"--selector", "app", "--port", "80"}, `--selector term "app" has no '='`},
		{[]string{"--port", "80"}, "empty selector"},
		{[]string{"--selector", "a=b", "--port", "70000"}, "port 70000 is out of range"},
		{[]string{"--selector", "a=b", "--port", "80", "--port", "80/tcp"}, "duplicate port 80/TCP"},
		{[]string{"--selector", "a=b", "--port", "80/icmp"}, `unknown protocol "icmp"`},
		{[]string{"--selector", "a=b", "--port", "80", "--node-port", "8080"}, "outside the NodePort range 30000-32767"},
		{[]string{"--selector", "a=b", "--port", "80", "--node-port", fmt.Sprint(taken.Ports[0].NodePort)}, "is taken by service taken"},
		{[]string{"--selector", "a=b", "--port", "80", "--vip", "10.97.0.5"}, "outside the service CIDR 10.96.0.0/16"},
		{[]string{"--selector", "a=b", "--port", "80", "--vip", taken.ClusterIP}, "is taken by service taken"},
		// Outside the lab's --external-ip-cidrs; inside them it would be
		// refused as a pod address (registry's unit test).
		{[]string{"--selector", "a=b", "--port", "80", "--external-ip", pod}, "is outside the cluster's --external-ip-cidrs"},
		{[]string{"--selector", "a=b", "--port", "80", "--session-affinity", "ClientIP", "--affinity-timeout", "0s"}, "affinity timeout 0s: want 1s to 86400s"},
		{[]string{"--selector", "a=b", "--port", "80", "--type", "ClusterIP", "--node-port", "30999"}, "--node-port with --type ClusterIP"},
		{[]string{"--selector", strings.Repeat("k", 64) + "=v", "--port", "80"}, "the name part is 64 bytes, at most 63"},
	}
	for _, c := range cases {
		out, err := l.Exec("h2", append([]string{"podnetctl", "service", "create", "bad"}, c.args...)...)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("create %v: %v %s, want an error containing %q", c.args, err, out, c.want)
		}
	}
	out, err := l.Exec("h3", "podnetctl", "service", "create", "taken", "--selector", "a=b", "--port", "80")
	if err == nil || !strings.Contains(err.Error(), "service taken already exists") {
		t.Errorf("duplicate name: %v %s", err, out)
	}
	dir := filepath.Join(l.Dir, "apply")
	_ = os.MkdirAll(dir, 0o755)
	for file, want := range map[string]string{
		"unknown.yaml":  "line 4: unknown field \"prots\"",
		"bad.yaml":      "yaml: line",
		"selector.yaml": "the value is 3145728 bytes, at most 63",
	} {
		content := "name: x\nselector: {a: b}\nports: [{port: 80}]\nprots: []\n"
		switch file {
		case "bad.yaml":
			content = "name: x\nselector: {a: b\nports:\n"
		case "selector.yaml":
			content = "name: x\nselector: {a: " + strings.Repeat("v", 3<<20) + "}\nports: [{port: 80}]\n"
		}
		p := filepath.Join(dir, file)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		if out, err := l.Exec("h1", "podnetctl", "apply", "-f", p); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("apply %s: %v %s, want %q", file, err, out, want)
		}
	}
	// A 50 MB file: podnetctl refuses it by its size, without reading it
	// (its peak RSS stays small), and podnetd refuses one sent by a client
	// that does not check.
	big := filepath.Join(dir, "big.yaml")
	if err := os.WriteFile(big, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(big, 50<<20); err != nil {
		t.Fatal(err)
	}
	out, err = l.Exec("h1", "/usr/bin/time", "-f", "maxrss-kb=%M", "podnetctl", "apply", "-f", big)
	if err == nil || !strings.Contains(err.Error(), big+": service file too large: over 4 MiB") {
		t.Errorf("apply -f of a 50 MB file: %v %s", err, out)
	}
	var rss int
	if _, err := fmt.Sscanf(lastLine(errString(err)), "maxrss-kb=%d", &rss); err != nil || rss > 64<<10 {
		t.Errorf("podnetctl's peak RSS for a 50 MB file: %d KiB (%v), want well under 64 MiB", rss, err)
	}
	raw := fmt.Sprintf(`{"source":"raw.yaml","content":"%s"}`, base64.StdEncoding.EncodeToString(make([]byte, 4<<20+1)))
	rawFile := filepath.Join(dir, "raw.json")
	if err := os.WriteFile(rawFile, []byte(raw), 0o644); err != nil {
		t.Fatal(err)
	}
	out = l.MustExec(t, "h1", "curl", "-sS", "--unix-socket", l.AdminSocket("h1"), "-d", "@"+rawFile, "http://podnetd/v1/services/apply")
	mustContain(t, "podnetd's answer to a file of 4 MiB + 1 byte", out, "raw.yaml: service file too large: over 4 MiB")
	if after := svcKeys(t, l); !slices.Equal(after, before) {
		t.Fatalf("refused requests changed etcd:\nbefore %v\nafter  %v", before, after)
	}
}

// TestServiceCIDRRefused: a podnetd whose --service-cidr disagrees with
// the cluster's refuses to start; a network overlapping the service CIDR
// is refused.
func TestServiceCIDRRefused(t *testing.T) {
	l := svcLab(t)
	dir := filepath.Join(l.Dir, "x9")
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	// `timeout` bounds a podnetd that would not refuse.
	out, err := l.Exec("h1", append(append([]string{"timeout", "60", "podnetd", "--host-name", "x9"}, l.ClusterFlags()...),
		"--service-cidr", "10.97.0.0/16", "--dns-addr", "off", "--metrics-addr", "off",
		"--data-dir", filepath.Join(dir, "data"), "--plugin-socket", filepath.Join(dir, "x9.sock"),
		"--admin-socket", filepath.Join(dir, "admin.sock"), "--docker-host", "unix://"+filepath.Join(dir, "none.sock"))...)
	if err == nil || strings.Contains(err.Error(), "exit status 124") ||
		!strings.Contains(out+err.Error(), "--service-cidr 10.97.0.0/16 disagrees with the cluster's service CIDR 10.96.0.0/16") {
		t.Fatalf("a disagreeing podnetd: %v\n%s", err, out)
	}
	out, err = l.Exec("h2", "podnetctl", "network", "create", "clash", "--subnet", "10.96.128.0/24", "--wait", "5s")
	if err == nil || !strings.Contains(err.Error(), "10.96.0.0/16") {
		t.Fatalf("a network in the service CIDR: %v %s", err, out)
	}
	dockerFails(t, l, "h3", []string{"overlaps the service CIDR 10.96.0.0/16"},
		"network", "create", "-d", "podnet", "--ipam-driver", "podnet", "--subnet", "10.96.200.0/24", "clash2")
}

// TestServiceEndpointModes: health checks, --net host and --net
// container:X members, and a host that dies.
func TestServiceEndpointModes(t *testing.T) {
	l := svcLab(t)
	backend(t, l, "h1", "healthy", "--network", svcNet, "-l", "app=modes",
		"--health-cmd", "test -f /tmp/ok", "--health-interval", "1s", "--health-retries", "1")
	l.MustDocker(t, "h1", "exec", "healthy", "touch", "/tmp/ok")
	ipH := ipOf(t, l, "h1", "healthy", svcNet)
	backend(t, l, "h3", "hostmode", "--network", "host", "-l", "app=modes")
	run(t, l, "h1", "sidecar", sleeper("--network", "container:healthy", "-l", "app=modes")...)
	service(t, l, "h2", "modes", "--selector", "app=modes", "--port", "8080")
	endpointsAre(t, l, "modes", "h1/healthy/"+ipH+"/true", "h1/sidecar/"+ipH+"/true", "h3/hostmode/"+l.HostIP("h3")+"/true")

	// Unhealthy: the container leaves (its sidecar keeps the address), and returns.
	l.MustDocker(t, "h1", "exec", "healthy", "rm", "/tmp/ok")
	endpointsAre(t, l, "modes", "h1/healthy/"+ipH+"/false", "h1/sidecar/"+ipH+"/true", "h3/hostmode/"+l.HostIP("h3")+"/true")
	l.MustDocker(t, "h1", "exec", "healthy", "touch", "/tmp/ok")
	endpointsAre(t, l, "modes", "h1/healthy/"+ipH+"/true", "h1/sidecar/"+ipH+"/true", "h3/hostmode/"+l.HostIP("h3")+"/true")

	// h3's podnetd dies for good: its liveness lease expires and its
	// host-mode endpoint is not ready any more.
	if err := l.PodnetdStop("h3", true); err != nil {
		t.Fatal(err)
	}
	restarted := false
	t.Cleanup(func() {
		if !restarted {
			_ = l.PodnetdStart("h3")
		}
	})
	WaitFor(t, 90*time.Second, func() (bool, string) {
		v := svcGet(t, l, "h1", "modes")
		for _, e := range v.Status.Endpoints {
			if e.Host == "h3" {
				return !e.Ready && strings.Contains(e.Reason, "host h3 is down"), fmt.Sprintf("h3's endpoint: %+v", e)
			}
		}
		return false, "h3's endpoint missing"
	})
	if err := l.PodnetdStart("h3"); err != nil {
		t.Fatal(err)
	}
	restarted = true
	endpointsAre(t, l, "modes", "h1/healthy/"+ipH+"/true", "h1/sidecar/"+ipH+"/true", "h3/hostmode/"+l.HostIP("h3")+"/true")
}

// TestServiceEtcdOutage: without etcd, service create fails fast naming
// etcd, and the cluster DNS keeps answering service names.
func TestServiceEtcdOutage(t *testing.T) {
	l := svcLab(t)
	v := service(t, l, "h1", "steady", "--selector", "app=steady", "--port", "80")
	resolvesTo(t, l, "steady.svc.podnet.local", v.ClusterIP)
	run(t, l, "h3", "asker", sleeper("--network", svcNet)...)
	for m := 1; m <= 3; m++ {
		if err := l.EtcdStop(m, true); err != nil {
			t.Fatal(err)
		}
	}
	restored := false
	startAll := func() {
		errs := make(chan error, 3)
		for m := 1; m <= 3; m++ {
			go func() { errs <- l.EtcdStart(m) }()
		}
		for range 3 {
			if err := <-errs; err != nil {
				t.Error(err)
			}
		}
		restored = true
	}
	t.Cleanup(func() {
		if !restored {
			startAll()
		}
	})
	start := time.Now()
	out, err := l.Exec("h2", "podnetctl", "service", "create", "during", "--selector", "a=b", "--port", "80")
	took := time.Since(start)
	if err == nil || !strings.Contains(err.Error(), "etcd unavailable") {
		t.Fatalf("create without etcd: %v %s", err, out)
	}
	if took > 10*time.Second {
		t.Fatalf("failing took %v: must be fast", took)
	}
	t.Logf("service create failed after %v: %v", took.Round(100*time.Millisecond), err)
	if got, out := lookupIn(l, "h3", "asker", "steady.svc.podnet.local"); !slices.Equal(got, []string{v.ClusterIP}) {
		t.Fatalf("DNS lost the service during the outage: %v\n%s", got, out)
	}
	startAll()
	WaitFor(t, time.Minute, func() (bool, string) {
		out, err := l.Exec("h2", "podnetctl", "service", "create", "after", "--selector", "a=b", "--port", "80")
		return err == nil, fmt.Sprint(err, out)
	})
	l.MustExec(t, "h2", "podnetctl", "service", "rm", "after")
}

// TestServiceScale: 1000 services created and removed through apply -f
// and delete -f leave no etcd key (and, with the data plane, no rule or
// map element); every agent converges on each change.
func TestServiceScale(t *testing.T) {
	l := svcLab(t)
	const n = 1000
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "- name: scale-%d\n  selector: {app: scale-%d}\n  ports: [{port: 80, targetPort: 8080}]\n", i, i%10)
	}
	dir := filepath.Join(l.Dir, "apply")
	_ = os.MkdirAll(dir, 0o755)
	file := filepath.Join(dir, "scale.yaml")
	if err := os.WriteFile(file, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = l.Exec("h1", "podnetctl", "delete", "-f", file) })
	start := time.Now()
	out := l.MustExec(t, "h1", "podnetctl", "apply", "-f", file)
	t.Logf("apply of %d services took %v", n, time.Since(start).Round(time.Millisecond))
	if c := strings.Count(out, " created"); c != n {
		t.Fatalf("%d created, want %d", c, n)
	}
	for _, h := range l.Hosts() {
		WaitFor(t, time.Minute, func() (bool, string) {
			a := agent(t, l, h)
			return a.Services == n, fmt.Sprintf("%s's agent holds %d services", h, a.Services)
		})
	}
	// Ten backends spread over the hosts: each endpoint change reaches every agent.
	for i := range 3 {
		h := l.Hosts()[i]
		run(t, l, h, fmt.Sprint("scale-b", i), sleeper("--network", svcNet, "-l", fmt.Sprint("app=scale-", i))...)
	}
	var lags []string
	for _, h := range l.Hosts() {
		WaitFor(t, time.Minute, func() (bool, string) {
			a := agent(t, l, h)
			return a.LagCount >= n, fmt.Sprintf("%s: %d changes seen", h, a.LagCount)
		})
		a := agent(t, l, h)
		lags = append(lags, fmt.Sprintf("%s p50 %v p99 %v max %v (%d changes)", h, a.LagP50, a.LagP99, a.LagMax, a.LagCount))
	}
	t.Logf("etcd write -> agent done (no data plane when programmer=false): %s", strings.Join(lags, "; "))
	out = l.MustExec(t, "h2", "podnetctl", "delete", "-f", file)
	if c := strings.Count(out, " deleted"); c != n {
		t.Fatalf("%d deleted, want %d", c, n)
	}
	if k := svcKeys(t, l); len(k) != 0 {
		t.Fatalf("%d keys left after delete -f, e.g. %v", len(k), k[:min(5, len(k))])
	}
	for _, h := range l.Hosts() {
		WaitFor(t, time.Minute, func() (bool, string) {
			a := agent(t, l, h)
			return a.Services == 0, fmt.Sprintf("%s's agent still holds %d services", h, a.Services)
		})
	}
	for _, h := range l.Hosts() {
		rules := l.MustExec(t, h, "nft", "list", "table", "inet", "podnet")
		if left := serviceLeftovers(rules); len(left) > 0 {
			t.Errorf("%s: service rules or elements left: %v\n%s", h, left, rules)
		}
	}
}

// serviceLeftovers lists what a listing of table inet podnet holds for
// services beyond the empty service section: elements of the service
// maps and sets, and chains or maps of individual services (svc-*
// other than svc-reject). The guard's rules for the cluster DNS address
// (in the service CIDR) are not services', nor are the sums of svc-sums
// (the element sums of the others, empty or not).
func serviceLeftovers(rules string) []string {
	fixed := map[string]bool{"svc-ip4": true, "svc-ip6": true, "svc-np": true, "svc-reject": true,
		"svc-hairpin4": true, "svc-hairpin6": true, "svc-sums": true}
	var left []string
	obj := ""
	for _, line := range strings.Split(rules, "\n") {
		f := strings.Fields(line)
		if len(f) >= 3 && f[len(f)-1] == "{" && (f[0] == "chain" || f[0] == "map" || f[0] == "set") {
			obj = strings.Trim(f[1], `"`)
			if strings.HasPrefix(obj, "svc-") && !fixed[obj] {
				left = append(left, f[0]+" "+obj)
			}
			continue
		}
		if strings.HasPrefix(obj, "svc-") && obj != "svc-sums" && len(f) > 0 && f[0] == "elements" {
			left = append(left, "elements of "+obj)
		}
	}
	return left
}
