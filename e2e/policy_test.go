//go:build e2e

package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Network policy on the 3-host lab, the way Kubernetes' netpol e2e suite
// tests it: six containers of two Compose projects spread over the
// hosts, each serving TCP on two ports, and after every policy change a
// reachability matrix (every container to every other, both ports)
// compared with the expected one until they agree. Probes run in
// parallel, one docker exec per source, with a short connect timeout.

const (
	npNet    = "np"
	npSubnet = "10.73.0.0/16"
	// npLateIP is the fixed address of the container started later.
	npLateIP = "10.73.99.7"
)

// npPod is one container of the fixture.
type npPod struct {
	name, host, project, service, ip string
}

var npPorts = []int{80, 81}

// npPods: shop and blog, web/api/db each, one of each project per host.
func npPods() []npPod {
	return []npPod{
		{name: "shop-web", host: "h1", project: "shop", service: "web"},
		{name: "shop-api", host: "h2", project: "shop", service: "api"},
		{name: "shop-db", host: "h3", project: "shop", service: "db"},
		{name: "blog-web", host: "h2", project: "blog", service: "web"},
		{name: "blog-api", host: "h3", project: "blog", service: "api"},
		{name: "blog-db", host: "h1", project: "blog", service: "db"},
	}
}

// npServe is the command of a fixture container: TCP on both ports.
func npServe() []string {
	return []string{"sh", "-c", "netcheck id-server 81 x & exec netcheck id-server 80 x"}
}

// npLab brings up the fixture (once per test) and removes it at the end.
func npLab(t *testing.T) (*Lab, []npPod) {
	t.Helper()
	l := multi(t)
	vxNet(t, l, npNet, npSubnet)
	pods := npPods()
	var wg sync.WaitGroup
	errs := make([]error, len(pods))
	for i := range pods {
		p := &pods[i]
		wg.Go(func() {
			_, errs[i] = l.Docker(p.host, append([]string{"run", "-d", "--name", p.name, "--network", npNet,
				"-l", "com.docker.compose.project=" + p.project, "-l", "com.docker.compose.service=" + p.service,
				TestImage}, npServe()...)...)
		})
	}
	wg.Wait()
	t.Cleanup(func() {
		for _, p := range pods {
			_, _ = l.Docker(p.host, "rm", "-f", p.name)
		}
	})
	for i, err := range errs {
		if err != nil {
			t.Fatalf("start %s: %v", pods[i].name, err)
		}
		pods[i].ip = ipOf(t, l, pods[i].host, pods[i].name, npNet)
	}
	return l, pods
}

// npApply applies YAML from host h1 and deletes it when the test ends.
func npApply(t *testing.T, l *Lab, name, yaml string) string {
	t.Helper()
	dir := filepath.Join(l.Dir, "policies")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, name+".yaml")
	if err := os.WriteFile(file, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	l.MustExec(t, "h1", "podnetctl", "apply", "-f", file)
	t.Cleanup(func() { _, _ = l.Exec("h1", "podnetctl", "delete", "-f", file) })
	return file
}

// npExpect says whether from may reach to on port.
type npExpect func(from, to npPod, port int) bool

// probeMatrix connects from every pod to every pod on both ports and
// returns "from->to:port" → reached.
func probeMatrix(l *Lab, pods []npPod) map[string]bool {
	var targets []string
	for _, to := range pods {
		for _, port := range npPorts {
			targets = append(targets, to.ip+":"+strconv.Itoa(port))
		}
	}
	var mu sync.Mutex
	got := map[string]bool{}
	var wg sync.WaitGroup
	for _, from := range pods {
		wg.Go(func() {
			out, _ := l.Docker(from.host, append([]string{"exec", from.name, "netcheck", "probe", "1500"}, targets...)...)
			res := map[string]bool{}
			for _, line := range strings.Split(out, "\n") {
				if f := strings.Fields(line); len(f) == 2 {
					res[f[0]] = f[1] == "ok"
				}
			}
			mu.Lock()
			defer mu.Unlock()
			for _, to := range pods {
				for _, port := range npPorts {
					got[cell(from, to, port)] = res[to.ip+":"+strconv.Itoa(port)]
				}
			}
		})
	}
	wg.Wait()
	return got
}

func cell(from, to npPod, port int) string { return fmt.Sprintf("%s->%s:%d", from.name, to.name, port) }

// waitMatrix probes until the matrix is the expected one (policies take
// effect within about a second on every host; the deadline leaves room
// for a loaded machine) and fails with both tables otherwise. A
// container always reaches itself.
func waitMatrix(t *testing.T, l *Lab, pods []npPod, what string, want npExpect) {
	t.Helper()
	expect := func(from, to npPod, port int) bool { return from.name == to.name || want(from, to, port) }
	var last map[string]bool
	WaitFor(t, 45*time.Second, func() (bool, string) {
		last = probeMatrix(l, pods)
		var wrong []string
		for _, from := range pods {
			for _, to := range pods {
				for _, port := range npPorts {
					if last[cell(from, to, port)] != expect(from, to, port) {
						wrong = append(wrong, cell(from, to, port))
					}
				}
			}
		}
		return len(wrong) == 0, fmt.Sprintf("%s: %d cells differ (%s)\n%s", what, len(wrong),
			strings.Join(wrong, ", "), matrixTable(pods, last, expect))
	})
}

// matrixTable is the matrix as Kubernetes' netpol tests print it: one
// row per source, a column per destination and port; "." reached, "X"
// not, "!" where that differs from the expectation.
func matrixTable(pods []npPod, got map[string]bool, expect npExpect) string {
	var b strings.Builder
	b.WriteString(fmt.Sprintf("%-10s", "from\\to"))
	for _, to := range pods {
		for _, port := range npPorts {
			b.WriteString(fmt.Sprintf(" %-11s", fmt.Sprintf("%s:%d", to.name, port)))
		}
	}
	b.WriteByte('\n')
	for _, from := range pods {
		b.WriteString(fmt.Sprintf("%-10s", from.name))
		for _, to := range pods {
			for _, port := range npPorts {
				mark := "X"
				if got[cell(from, to, port)] {
					mark = "."
				}
				if got[cell(from, to, port)] != expect(from, to, port) {
					mark += "!"
				}
				b.WriteString(fmt.Sprintf(" %-11s", mark))
			}
		}
		b.WriteByte('\n')
	}
	return b.String()
}

func allowAll(npPod, npPod, int) bool { return true }

// TestNetworkPolicy runs the suite's scenarios one after the other on one
// fixture; each removes its policies, and the matrix is complete again
// after each.
func TestNetworkPolicy(t *testing.T) {
	l, pods := npLab(t)
	waitMatrix(t, l, pods, "no policy", allowAll)
	byName := map[string]npPod{}
	for _, p := range pods {
		byName[p.name] = p
	}
	step := func(name, yaml, what string, want npExpect, more func(t *testing.T)) {
		t.Run(name, func(t *testing.T) {
			file := npApply(t, l, name, yaml)
			waitMatrix(t, l, pods, what, want)
			if more != nil {
				more(t)
			}
			l.MustExec(t, "h2", "podnetctl", "delete", "-f", file)
			waitMatrix(t, l, pods, "after removing "+name+": full reachability", allowAll)
		})
	}

	step("deny-all-ingress", `kind: NetworkPolicy
name: deny-all
podSelector: {}
`, "deny-all ingress: nothing in", func(npPod, npPod, int) bool { return false }, func(t *testing.T) {
		out := l.MustExec(t, "h3", "podnetctl", "policy", "check", "--from", "shop-web", "--to", "blog-api", "--port", "80")
		if !strings.HasPrefix(out, "denied") || !strings.Contains(out, "deny-all") {
			t.Errorf("policy check shop-web -> blog-api:80:\n%s", out)
		}
		// Denied packets are counted per policy, on the destination's host.
		WaitFor(t, 20*time.Second, func() (bool, string) {
			out, _ := l.Exec("h3", "curl", "-s", "http://127.0.0.1:9477/metrics")
			for _, line := range strings.Split(out, "\n") {
				if strings.HasPrefix(line, `podnet_policy_denied_packets_total{direction="ingress",policy="deny-all"}`) &&
					!strings.HasSuffix(line, " 0") {
					return true, ""
				}
			}
			return false, "no denied ingress packets counted for deny-all on h3"
		})
		npKeepsEnforcing(t, l, pods, byName)
	})

	step("allow-from-label", `kind: NetworkPolicy
name: db-from-web
podSelector: {matchLabels: {com.docker.compose.service: db}}
ingress:
  - from: [{podSelector: {matchLabels: {com.docker.compose.service: web}}}]
`, "dbs accept web only", func(from, to npPod, _ int) bool {
		return to.service != "db" || from.service == "web"
	}, func(t *testing.T) {
		out := l.MustExec(t, "h2", "podnetctl", "policy", "check", "--from", "blog-web", "--to", "shop-db", "--port", "81")
		if !strings.HasPrefix(out, "allowed") || !strings.Contains(out, "db-from-web, ingress rule 1") {
			t.Errorf("policy check blog-web -> shop-db:81:\n%s", out)
		}
		// What policy get -o yaml prints applies back unchanged.
		file := filepath.Join(l.Dir, "policies", "db-from-web.get.yaml")
		if err := os.WriteFile(file, []byte(l.MustExec(t, "h3", "podnetctl", "policy", "get", "db-from-web", "-o", "yaml")), 0o644); err != nil {
			t.Fatal(err)
		}
		mustContain(t, "apply of policy get -o yaml", l.MustExec(t, "h1", "podnetctl", "apply", "-f", file), "networkpolicy/db-from-web unchanged")
	})

	step("allow-from-project-only", `kind: NetworkPolicy
name: shop-from-blog
podSelector: {matchLabels: {com.docker.compose.project: shop}}
ingress:
  - from: [{podSelector: {matchLabels: {com.docker.compose.project: blog}}}]
`, "shop accepts blog only, not even shop", func(from, to npPod, _ int) bool {
		return to.project != "shop" || from.project == "blog"
	}, nil)

	step("egress-only-dns", `kind: NetworkPolicy
name: blog-dns-only
podSelector: {matchLabels: {com.docker.compose.project: blog}}
policyTypes: [Egress]
egress:
  - to: [{ipBlock: {cidr: 10.96.0.10/32}}]
    ports: [{protocol: UDP, port: 53}, {protocol: TCP, port: 53}]
`, "blog reaches nothing but the cluster DNS", func(from, _ npPod, _ int) bool {
		return from.project != "blog"
	}, func(t *testing.T) {
		out := l.MustDocker(t, "h2", "exec", "blog-web", "netcheck", "dns", dnsAddr, "shop-db")
		if !strings.Contains(out, byName["shop-db"].ip) {
			t.Errorf("blog-web asking the cluster DNS for shop-db: %q, want its address", out)
		}
	})

	shopWeb := byName["shop-web"].ip
	step("ipblock-except", fmt.Sprintf(`kind: NetworkPolicy
name: db-block
podSelector: {matchLabels: {com.docker.compose.service: db}}
ingress:
  - from: [{ipBlock: {cidr: %s, except: [%s/32]}}]
`, npSubnet, shopWeb), "dbs accept the network but shop-web", func(from, to npPod, _ int) bool {
		return to.service != "db" || from.name != "shop-web"
	}, nil)

	step("port-range", `kind: NetworkPolicy
name: api-ports
podSelector: {matchLabels: {com.docker.compose.service: api}}
ingress:
  - ports: [{protocol: TCP, port: 81, endPort: 90}]
`, "apis accept 81-90 only", func(_, to npPod, port int) bool {
		return to.service != "api" || port == 81
	}, nil)

	step("two-policies-add-up", `- kind: NetworkPolicy
  name: db-web-80
  podSelector: {matchLabels: {com.docker.compose.service: db}}
  ingress: [{from: [{podSelector: {matchLabels: {com.docker.compose.service: web}}}], ports: [{port: 80}]}]
- kind: NetworkPolicy
  name: db-api-81
  podSelector: {matchLabels: {com.docker.compose.service: db}}
  ingress: [{from: [{podSelector: {matchLabels: {com.docker.compose.service: api}}}], ports: [{port: 81}]}]
`, "dbs: web on 80, api on 81", func(from, to npPod, port int) bool {
		return to.service != "db" || (from.service == "web" && port == 80) || (from.service == "api" && port == 81)
	}, nil)

	t.Run("service-vip", func(t *testing.T) { npServiceVIP(t, l, byName) })
	t.Run("started-later", func(t *testing.T) { npStartedLater(t, l, byName) })
	waitMatrix(t, l, pods, "every policy removed: full reachability", allowAll)
}

// npKeepsEnforcing (under deny-all): with etcd down every host keeps
// its rules; a podnetd killed and restarted leaves no window in which a
// connection gets through.
func npKeepsEnforcing(t *testing.T, l *Lab, pods []npPod, byName map[string]npPod) {
	restore := l.EtcdOutage(t)
	got := probeMatrix(l, pods)
	for _, from := range pods {
		for _, to := range pods {
			if from.name != to.name && got[cell(from, to, 80)] {
				t.Errorf("etcd down: %s reached %s through deny-all", from.name, to.name)
			}
		}
	}
	if err := restore(); err != nil {
		t.Fatal(err)
	}
	prober, target := byName["blog-db"], byName["shop-db"] // h1 -> h3
	l.MustDocker(t, prober.host, "exec", "-d", prober.name, "sh", "-c", "netcheck keep-trying "+target.ip+":80 10 > /tmp/restart")
	if err := l.PodnetdStop(target.host, true); err != nil {
		t.Fatal(err)
	}
	if err := l.PodnetdStart(target.host); err != nil {
		t.Fatal(err)
	}
	var out string
	WaitFor(t, 40*time.Second, func() (bool, string) {
		out, _ = l.Docker(prober.host, "exec", prober.name, "cat", "/tmp/restart")
		return strings.HasPrefix(out, "connected"), "prober across the restart: " + out
	})
	if !strings.HasPrefix(out, "connected 0 of") {
		t.Errorf("a connection got through deny-all while podnetd restarted on %s: %s", target.host, out)
	}
}

// npServiceVIP: a connection through a service's VIP is judged by the
// backend's ingress policy, with the client's own address.
func npServiceVIP(t *testing.T, l *Lab, byName map[string]npPod) {
	npApply(t, l, "svc-vip", `- name: shop-db
  selector: {com.docker.compose.project: shop, com.docker.compose.service: db}
  ports: [{port: 5432, targetPort: 80}]
- kind: NetworkPolicy
  name: shop-db-from-api
  podSelector: {matchLabels: {com.docker.compose.project: shop, com.docker.compose.service: db}}
  ingress: [{from: [{podSelector: {matchLabels: {com.docker.compose.service: api}}}]}]
`)
	v := svcGet(t, l, "h1", "shop-db")
	vip := v.ClusterIP + ":5432"
	probe := func(from npPod) string {
		out, _ := l.Docker(from.host, "exec", from.name, "netcheck", "probe", "1500", vip)
		return strings.TrimSpace(strings.TrimPrefix(out, vip))
	}
	for _, c := range []struct {
		from string
		want string
	}{{"shop-api", "ok"}, {"blog-api", "ok"}, {"shop-web", "timeout"}, {"blog-db", "timeout"},
		// The backend itself through its own VIP (hairpin): traffic to
		// itself is not filtered.
		{"shop-db", "ok"}} {
		WaitFor(t, 30*time.Second, func() (bool, string) {
			got := probe(byName[c.from])
			return got == c.want, fmt.Sprintf("%s -> VIP %s (shop-db): %s, want %s", c.from, vip, got, c.want)
		})
	}
}

// npStartedLater: a container that policies select is isolated from its
// first packet, both ways: a neighbour on its own host (no routing delay
// to hide behind) and one on another host try to connect from before it
// starts, and it tries to connect out first thing; nothing gets through
// until the policy's own rules let the allowed traffic in. A container no
// policy selects, started the same way, is reached at once.
func npStartedLater(t *testing.T, l *Lab, byName map[string]npPod) {
	npApply(t, l, "late", `kind: NetworkPolicy
name: late
podSelector: {matchLabels: {role: late}}
policyTypes: [Ingress, Egress]
ingress: [{from: [{podSelector: {matchLabels: {com.docker.compose.service: web}}}]}]
`)
	target := npLateIP + ":80"
	start := func(name, role string) {
		t.Helper()
		for _, prober := range []string{"blog-api", "blog-db"} { // h3 (same host) and h1
			p := byName[prober]
			l.MustDocker(t, p.host, "exec", "-d", p.name, "sh", "-c", "netcheck keep-trying "+target+" 8 > /tmp/"+name)
		}
		out := "/tmp/out"
		l.MustDocker(t, "h3", "run", "-d", "--name", name, "--network", npNet, "--ip", npLateIP, "-l", "role="+role,
			TestImage, "sh", "-c", "netcheck id-server 80 x & netcheck keep-trying "+byName["shop-web"].ip+":80 3 > "+out+"; wait")
		t.Cleanup(func() { _, _ = l.Docker("h3", "rm", "-f", name) })
	}
	result := func(host, container, file string) string {
		var out string
		WaitFor(t, 30*time.Second, func() (bool, string) {
			out, _ = l.Docker(host, "exec", container, "cat", file)
			return strings.HasPrefix(out, "connected"), fmt.Sprintf("%s:%s: %q", container, file, out)
		})
		return strings.TrimSpace(out)
	}
	start("late", "late")
	for _, prober := range []string{"blog-api", "blog-db"} {
		p := byName[prober]
		if got := result(p.host, p.name, "/tmp/late"); !strings.HasPrefix(got, "connected 0 of") {
			t.Errorf("%s (%s) reached the isolated container: %s", prober, p.host, got)
		}
	}
	if got := result("h3", "late", "/tmp/out"); !strings.HasPrefix(got, "connected 0 of") {
		t.Errorf("the isolated container got out in its first seconds: %s", got)
	}
	// Its own rules are in place by now: web gets in.
	web := byName["shop-web"]
	WaitFor(t, 30*time.Second, func() (bool, string) {
		out, _ := l.Docker(web.host, "exec", web.name, "netcheck", "probe", "1500", target)
		return strings.Contains(out, " ok"), "shop-web -> late: " + out
	})
	l.MustDocker(t, "h3", "rm", "-f", "late")

	// The control: the same with a container no policy selects.
	start("free", "free")
	for _, prober := range []string{"blog-api", "blog-db"} {
		p := byName[prober]
		got := result(p.host, p.name, "/tmp/free")
		if strings.HasPrefix(got, "connected 0 of") {
			t.Errorf("%s never reached a container no policy selects: %s", prober, got)
		}
		t.Logf("%s -> a free container started meanwhile: %s", prober, got)
	}
	if got := result("h3", "free", "/tmp/out"); strings.HasPrefix(got, "connected 0 of") {
		t.Errorf("a container no policy selects could not get out: %s", got)
	} else {
		t.Logf("a free container's own first connections: %s", got)
	}
}

// TestNetworkPolicyBadInput: podnetctl apply refuses bad policies naming
// the problem (and the line), and stores nothing.
func TestNetworkPolicyBadInput(t *testing.T) {
	l := multi(t)
	dir := filepath.Join(l.Dir, "policies")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for i, c := range []struct{ yaml, want string }{
		{"kind: NetworkPolicy\nname: ok\npodSelector: {}\n---\nkind: NetworkPolicy\nname: bad\npodSelector: {}\ningres: []\n", `line 8: unknown field "ingres"`},
		{"kind: NetworkPolicy\nname: bad\npodSelector: {}\ningress: [{from: [{ipBlock: {cidr: 10.0.0.0/8, except: [11.0.0.0/16]}}]}]\n", "not inside cidr"},
		{"kind: NetworkPolicy\nname: bad\npodSelector: {}\ningress: [{ports: [{port: 90, endPort: 80}]}]\n", "endPort 80 is below port 90"},
		{"kind: NetworkPolicy\nname: bad\npodSelector: {}\negress: [{ports: [{protocol: ICMP}]}]\n", `unknown protocol "ICMP"`},
		{"kind: NetworkPolicy\nname: Bad\npodSelector: {}\n", `network policy name "Bad"`},
		{"kind: NetworkPolicy\nname: bad\npodSelector: {matchLabels: {'a b': c}}\n", "label key"},
	} {
		file := filepath.Join(dir, fmt.Sprintf("bad%d.yaml", i))
		if err := os.WriteFile(file, []byte(c.yaml), 0o644); err != nil {
			t.Fatal(err)
		}
		out, err := l.Exec("h1", "podnetctl", "apply", "-f", file)
		if err == nil || !strings.Contains(out+err.Error(), c.want) {
			t.Errorf("apply of bad file %d: err %v, output %q; want a refusal naming %q", i, err, out, c.want)
		}
	}
	if out := l.MustExec(t, "h2", "podnetctl", "policy", "ls", "-o", "json"); strings.Contains(out, `"name"`) {
		t.Fatalf("refused files stored policies:\n%s", out)
	}
}
