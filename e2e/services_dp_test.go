//go:build e2e

package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// Services' traffic on the 3-host lab: backends on h1 and h2, clients on
// h3 (containers and the host itself).

// spreadFix is two backends (h1, h2), a client container on h3 and a
// service over the backends.
type spreadFix struct {
	l      *Lab
	svc    svcView
	ips    map[string]string // backend name -> address
	client string            // container on h3
}

func spreadSetup(t *testing.T, name string, svcArgs ...string) spreadFix {
	t.Helper()
	l := svcLab(t)
	f := spreadFix{l: l, ips: map[string]string{}, client: name + "-client"}
	for _, h := range []string{"h1", "h2"} {
		b := name + "-" + h
		backend(t, l, h, b, "--network", svcNet, "-l", "app="+name, "--hostname", b)
		f.ips[b] = ipOf(t, l, h, b, svcNet)
	}
	run(t, l, "h3", f.client, sleeper("--network", svcNet, "--dns", dnsAddr)...)
	f.svc = service(t, l, "h3", name, append([]string{"--selector", "app=" + name}, svcArgs...)...)
	endpointsAre(t, l, name, "h1/"+name+"-h1/"+f.ips[name+"-h1"]+"/true", "h2/"+name+"-h2/"+f.ips[name+"-h2"]+"/true")
	return f
}

// ids fetches url n times from the client container and counts answers.
func (f spreadFix) ids(t *testing.T, url string, n int) map[string]int {
	t.Helper()
	out := f.l.MustDocker(t, "h3", "exec", f.client, "sh", "-c",
		fmt.Sprintf("for i in $(seq %d); do timeout 3 wget -q -O - %s || echo FAIL; done", n, url))
	got := map[string]int{}
	for _, line := range strings.Fields(out) {
		got[line]++
	}
	return got
}

// chiSquare is Pearson's statistic of counts against equal probabilities.
func chiSquare(counts map[string]int, keys []string) float64 {
	total := 0
	for _, k := range keys {
		total += counts[k]
	}
	e := float64(total) / float64(len(keys))
	x := 0.0
	for _, k := range keys {
		d := float64(counts[k]) - e
		x += d * d / e
	}
	return x
}

// TestServiceVIPSpread: 300 connections through the VIP from a container
// on the third host spread over both backends within a chi-square bound;
// the name and the VIP answer from every host's own processes too.
func TestServiceVIPSpread(t *testing.T) {
	f := spreadSetup(t, "spread", "--port", "80:8080")
	got := f.ids(t, "http://"+f.svc.ClusterIP+"/id", 300)
	keys := []string{"spread-h1", "spread-h2"}
	if got["FAIL"] > 0 || got[keys[0]]+got[keys[1]] != 300 {
		t.Fatalf("answers %v: want 300 from the two backends", got)
	}
	// 1 degree of freedom, p = 0.001: 10.83.
	if x := chiSquare(got, keys); x > 10.83 {
		t.Fatalf("spread %v: chi-square %.2f > 10.83", got, x)
	}
	t.Logf("spread over 300 connections: %v", got)
	byName := f.ids(t, "http://spread.svc.podnet.local/id", 10)
	if byName["FAIL"] > 0 {
		t.Fatalf("by name: %v", byName)
	}
	for _, h := range f.l.Hosts() {
		out, err := curl(f.l, h, "http://"+f.svc.ClusterIP+"/id")
		if err != nil || !strings.HasPrefix(out, "spread-h") {
			t.Fatalf("%s's own processes through the VIP: %v %q", h, err, out)
		}
	}
}

// TestServiceAffinity: with ClientIP affinity one client keeps its backend.
func TestServiceAffinity(t *testing.T) {
	f := spreadSetup(t, "sticky", "--port", "80:8080", "--session-affinity", "ClientIP", "--affinity-timeout", "1m")
	got := f.ids(t, "http://"+f.svc.ClusterIP+"/id", 30)
	if len(got) != 1 || got["FAIL"] > 0 {
		t.Fatalf("affinity: one client reached %v", got)
	}
}

// TestServiceNodePortAndExternalIP: the NodePort answers on every host's
// address but loopback (README: a packet from 127.0.0.1 cannot be routed
// to another host, as with kube-proxy's nftables mode) and an external IP
// routed to any host reaches the backends.
func TestServiceNodePortAndExternalIP(t *testing.T) {
	l := multi(t)
	ext := l.Net + ".250"
	f := spreadSetup(t, "edge", "--port", "80:8080", "--type", "NodePort", "--external-ip", ext)
	node := f.svc.Ports[0].NodePort
	if node < 30000 {
		t.Fatalf("no NodePort: %+v", f.svc)
	}
	for _, h := range l.Hosts() {
		out, err := curlClient(l, fmt.Sprintf("http://%s:%d/id", l.HostIP(h), node))
		if err != nil || !strings.HasPrefix(out, "edge-h") {
			t.Fatalf("NodePort on %s from outside: %v %q", h, err, out)
		}
		// From the host's own processes, on its own address (not on
		// 127.0.0.1: NodePorts skip loopback, as kube-proxy's nftables
		// mode does; dataplane's doc.go says why).
		out, err = curl(l, h, fmt.Sprintf("http://%s:%d/id", l.HostIP(h), node))
		if err != nil || !strings.HasPrefix(out, "edge-h") {
			t.Fatalf("NodePort on %s from the host itself: %v %q", h, err, out)
		}
		if out, err := curl(l, h, fmt.Sprintf("http://127.0.0.1:%d/id", node)); err == nil {
			t.Fatalf("NodePort on %s's loopback answered %q; NodePorts are not on loopback", h, out)
		}
		l.MustClient(t, "ip", "route", "replace", ext+"/32", "via", l.HostIP(h))
		out, err = curlClient(l, "http://"+ext+"/id")
		if err != nil || !strings.HasPrefix(out, "edge-h") {
			t.Fatalf("external IP routed to %s: %v %q", h, err, out)
		}
	}
	l.MustClient(t, "ip", "route", "del", ext+"/32")
}

// TestServiceLocalPolicy: externalTrafficPolicy Local sends NodePort
// traffic only to the receiving host's endpoints, with the client's own
// address; a host without one drops it. Its health-check NodePort tells
// an outside load balancer which: 200 with one local endpoint on h1, 503
// with none on h2.
func TestServiceLocalPolicy(t *testing.T) {
	l := svcLab(t)
	backend(t, l, "h1", "local1", "--network", svcNet, "-l", "app=local")
	v := service(t, l, "h2", "local", "--selector", "app=local", "--port", "9002", "--type", "NodePort",
		"--external-traffic-policy", "Local")
	endpointsAre(t, l, "local", "h1/local1/"+ipOf(t, l, "h1", "local1", svcNet)+"/true")
	node := v.Ports[0].NodePort
	out := l.MustClient(t, "sh", "-c", fmt.Sprintf("echo | timeout 3 busybox nc %s %d", l.HostIP("h1"), node))
	mustContain(t, "Local NodePort answer", out, "hello")
	mustContain(t, "the backend sees the client's own address", l.MustDocker(t, "h1", "logs", "local1"), "from "+l.ClientIP()+":")
	if out, err := l.Client("sh", "-c", fmt.Sprintf("echo | timeout 3 busybox nc %s %d", l.HostIP("h2"), node)); err == nil && strings.Contains(out, "hello") {
		t.Fatalf("h2 has no local endpoint but answered: %q", out)
	}
	hc := v.HealthCheckNodePort
	if hc < 30000 || hc == node {
		t.Fatalf("health-check NodePort %d (NodePort %d)", hc, node)
	}
	for h, want := range map[string]string{"h1": `"localEndpoints":1,"serviceProxyHealthy":true} 200`,
		"h2": `"localEndpoints":0,"serviceProxyHealthy":true} 503`} {
		WaitFor(t, shortWait, func() (bool, string) {
			// The body, then the status code.
			out, err := l.Client("curl", "-sS", "--max-time", "3", "-w", " %{http_code}", fmt.Sprintf("http://%s:%d/", l.HostIP(h), hc))
			out = strings.ReplaceAll(out, "\n", "")
			return strings.Contains(out, `"name":"local"}`) && strings.HasSuffix(out, want), fmt.Sprintf("%s's health check: %v %q", h, err, out)
		})
	}
}

// TestServiceScaleToZero: without endpoints the VIP rejects at once, and
// works again when one returns.
func TestServiceScaleToZero(t *testing.T) {
	f := spreadSetup(t, "zero", "--port", "80:8080")
	for _, b := range []string{"zero-h1", "zero-h2"} {
		h := "h" + b[len(b)-1:]
		f.l.MustDocker(t, h, "stop", "-t", "1", b)
	}
	endpointsAre(t, f.l, "zero")
	start := time.Now()
	out, err := f.l.Docker("h3", "exec", f.client, "timeout", "5", "wget", "-q", "-O", "-", "http://"+f.svc.ClusterIP+"/id")
	if err == nil || time.Since(start) > 2*time.Second || !strings.Contains(out+err.Error(), "refused") {
		t.Fatalf("no endpoint: %v %q after %v, want an immediate refusal", err, out, time.Since(start))
	}
	f.l.MustDocker(t, "h1", "start", "zero-h1")
	WaitFor(t, shortWait, func() (bool, string) {
		got := f.ids(t, "http://"+f.svc.ClusterIP+"/id", 1)
		return got["zero-h1"] == 1, fmt.Sprint(got)
	})
}

// TestServiceUDPMoves: a UDP client that keeps its source port moves to
// the other endpoint when its endpoint goes (conntrack entry deleted).
func TestServiceUDPMoves(t *testing.T) {
	f := spreadSetup(t, "udpmove", "--port", "9001/udp")
	send := func(msg string) string {
		// One source port throughout: the client keeps its 5-tuple (and
		// conntrack entry), as a long-lived UDP client does. Debian's
		// busybox nc has no -u: netcheck sends.
		out, _ := f.l.Docker("h3", "exec", f.client, "netcheck", "udp-send", f.svc.ClusterIP+":9001", msg, "40000")
		return out
	}
	if out := send("first"); !strings.Contains(out, "first") {
		t.Fatalf("no UDP echo through the VIP: %q", out)
	}
	first := ""
	for _, b := range []string{"udpmove-h1", "udpmove-h2"} {
		if strings.Contains(f.l.MustDocker(t, "h"+b[len(b)-1:], "logs", b), "first") {
			first = b
		}
	}
	if first == "" {
		t.Fatal("no backend logged the datagram")
	}
	f.l.MustDocker(t, "h"+first[len(first)-1:], "stop", "-t", "1", first)
	WaitFor(t, shortWait, func() (bool, string) {
		out := send("second")
		return strings.Contains(out, "second"), "the client stuck to the stopped endpoint: " + out
	})
}

// TestServicePodnetdKill9: a TCP stream through the VIP survives podnetd
// being killed and restarted on the client's host and on a backend's.
func TestServicePodnetdKill9(t *testing.T) {
	f := spreadSetup(t, "kill", "--port", "9000")
	done := make(chan string, 1)
	go func() {
		out, err := f.l.Docker("h3", "exec", f.client, "netcheck", "stream", f.svc.ClusterIP+":9000", "8")
		done <- fmt.Sprint(out, err)
	}()
	time.Sleep(time.Second)
	for _, h := range []string{"h3", "h1"} {
		if err := f.l.PodnetdStop(h, true); err != nil {
			t.Fatal(err)
		}
		if err := f.l.PodnetdStart(h); err != nil {
			t.Fatal(err)
		}
	}
	if out := <-done; !strings.Contains(out, "stream ok") {
		t.Fatalf("the stream broke across podnetd restarts: %s", out)
	}
	if a := agent(t, f.l, "h3"); !a.Synced || a.Services < 1 {
		t.Fatalf("h3's agent after restart: %+v", a)
	}
}

// TestServiceModesTraffic: a --net host endpoint is reached at its host's
// address and a --net container:X one at X's.
func TestServiceModesTraffic(t *testing.T) {
	l := svcLab(t)
	run(t, l, "h2", "hostweb", append([]string{"--network", "host", "-l", "app=hostweb"}, TestImage, "sh", "-c",
		"mkdir -p /www && echo hostweb > /www/id && exec httpd -f -p 8080 -h /www")...)
	run(t, l, "h1", "pod", sleeper("--network", svcNet)...)
	run(t, l, "h1", "podweb", append([]string{"--network", "container:pod", "-l", "app=podweb"}, TestImage, "sh", "-c",
		"mkdir -p /www && echo podweb > /www/id && exec httpd -f -p 8080 -h /www")...)
	run(t, l, "h3", "modes-client", sleeper("--network", svcNet)...)
	hv := service(t, l, "h3", "hostweb", "--selector", "app=hostweb", "--port", "80:8080")
	pv := service(t, l, "h3", "podweb", "--selector", "app=podweb", "--port", "80:8080")
	endpointsAre(t, l, "hostweb", "h2/hostweb/"+l.HostIP("h2")+"/true")
	endpointsAre(t, l, "podweb", "h1/podweb/"+ipOf(t, l, "h1", "pod", svcNet)+"/true")
	for vip, want := range map[string]string{hv.ClusterIP: "hostweb", pv.ClusterIP: "podweb"} {
		out, err := fetch(l, "h3", "modes-client", "http://"+vip+"/id")
		if err != nil || !strings.Contains(out, want) {
			t.Fatalf("%s: %v %q, want %q", vip, err, out, want)
		}
	}
}

// TestServiceAffinityFlood: 70,000 SYNs from forged sources (more than an
// affinity set holds) at a ClientIP-affinity NodePort of h1 do not lock
// new clients out: the outside client and h3's own processes, arriving
// after the flood, are served. The forged sources' replies never leave
// the machine: they are routed to the lab's bridge, whose root-namespace
// FORWARD rules reject anything leaving the lab (scripts/lab.sh).
func TestServiceAffinityFlood(t *testing.T) {
	l := svcLab(t)
	backend(t, l, "h1", "flood1", "--network", svcNet, "-l", "app=flood")
	v := service(t, l, "h1", "flood", "--selector", "app=flood", "--port", "9002", "--type", "NodePort",
		"--session-affinity", "ClientIP")
	endpointsAre(t, l, "flood", "h1/flood1/"+ipOf(t, l, "h1", "flood1", svcNet)+"/true")
	target := fmt.Sprintf("%s:%d", l.HostIP("h1"), v.Ports[0].NodePort)
	out := l.MustClient(t, "netcheck", "syn-flood", target, "70000", "198.18.0.0/15")
	t.Log(out)
	// The flood filled the endpoint's affinity set.
	WaitFor(t, shortWait, func() (bool, string) {
		set := l.MustExec(t, "h1", "sh", "-c", `nft list table inet podnet | grep -o "set svc-aff/flood/[^ ]*" | head -1`)
		list := l.MustExec(t, "h1", "nft", "list", "set", "inet", "podnet", strings.TrimPrefix(set, "set "))
		n := strings.Count(list, "198.1")
		return n >= 65535, fmt.Sprintf("affinity set %s holds %d forged clients", set, n)
	})
	for _, from := range []string{"", "h3"} {
		cmd := []string{"sh", "-c", "echo | timeout 3 busybox nc " + strings.Replace(target, ":", " ", 1)}
		var out string
		var err error
		if from == "" {
			out, err = l.Client(cmd...)
		} else {
			out, err = l.Exec(from, cmd...)
		}
		if err != nil || !strings.Contains(out, "hello") {
			t.Errorf("a new client (%s) after the flood: %v %q, want served", or(from, "outside"), err, out)
		}
	}
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// TestServiceReachableEndpoints: a NodePort whose only endpoint sits on
// h1's single-host bridge network answers on h1, and on the hosts that
// cannot reach that network it is refused at once instead of timing out;
// service get says from where the endpoint is reachable (and that an
// --internal network's endpoint is reachable from its own host only).
func TestServiceReachableEndpoints(t *testing.T) {
	l := svcLab(t)
	podnetNet(t, l, "h1", "reachbr", "--subnet", "10.95.0.0/24")
	podnetNet(t, l, "h2", "reachint", "--subnet", "10.95.1.0/24", "--internal")
	backend(t, l, "h1", "reach1", "--network", "reachbr", "-l", "app=reach", "--hostname", "reach1")
	backend(t, l, "h2", "reach2", "--network", "reachint", "-l", "app=reachint")
	v := service(t, l, "h1", "reach", "--selector", "app=reach", "--port", "80:8080", "--type", "NodePort")
	service(t, l, "h1", "reachint", "--selector", "app=reachint", "--port", "80:8080")
	for name, want := range map[string]string{
		"reach":    "only from host h1: a single-host (bridge) network",
		"reachint": "only from host h2: an --internal single-host network",
	} {
		WaitFor(t, shortWait, func() (bool, string) {
			eps := svcGet(t, l, "h3", name).Status.Endpoints
			return len(eps) == 1 && eps[0].Ready && eps[0].Reach == want, fmt.Sprintf("%s's endpoints %+v, want reach %q", name, eps, want)
		})
	}
	node := fmt.Sprintf(":%d/id", v.Ports[0].NodePort)
	WaitFor(t, shortWait, func() (bool, string) {
		out, err := curlClient(l, "http://"+l.HostIP("h1")+node)
		return err == nil && strings.Contains(out, "reach1"), fmt.Sprint("h1's NodePort: ", err, out)
	})
	for _, h := range []string{"h2", "h3"} {
		start := time.Now()
		out, err := curlClient(l, "http://"+l.HostIP(h)+node)
		// curl says "Connection refused" or, newer, "Couldn't connect to
		// server" (exit 7) for a reset; a timeout is exit 28.
		if took := time.Since(start); err == nil || !strings.Contains(err.Error(), "exit status 7") || took > 2*time.Second {
			t.Errorf("%s's NodePort with no endpoint it can reach: %v %q after %v, want refused at once", h, err, out, took.Round(time.Millisecond))
		}
	}
}
