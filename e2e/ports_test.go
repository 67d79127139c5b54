//go:build e2e

package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// webArgs runs busybox httpd serving the image's /etc on port 80.
func webArgs(args ...string) []string {
	return append(args, TestImage, "httpd", "-f", "-p", "80", "-h", "/etc")
}

// TestPublishedPorts: docker run -p on a podnet network, from every vantage
// point a user has: an outside client (which the container sees as
// itself), the host on its own address and on 127.0.0.1, another container
// (hairpin), TCP and UDP, a host IP, a range, an ephemeral port; and the
// rules are gone when the container stops.
func TestPublishedPorts(t *testing.T) {
	l := single(t)
	podnetNet(t, l, "h1", "pub", "--subnet", "10.60.0.0/24")
	host := l.HostIP("h1")
	run(t, l, "h1", "web", webArgs("--network", "pub", "-p", "8080:80", "-p", "127.0.0.1:8081:80")...)
	run(t, l, "h1", "peer", sleeper("--network", "pub")...)

	get := func(what string, f func() (string, error)) {
		t.Helper()
		WaitFor(t, shortWait, func() (bool, string) {
			out, err := f()
			return err == nil && strings.Contains(out, "root:"), fmt.Sprintf("%s: %v %s", what, err, out)
		})
	}
	get("outside client → host:8080", func() (string, error) { return curlClient(l, "http://"+host+":8080/passwd") })
	get("host → its own address:8080", func() (string, error) { return curl(l, "h1", "http://"+host+":8080/passwd") })
	get("host → 127.0.0.1:8080", func() (string, error) { return curl(l, "h1", "http://127.0.0.1:8080/passwd") })
	get("host → 127.0.0.1:8081", func() (string, error) { return curl(l, "h1", "http://127.0.0.1:8081/passwd") })
	get("hairpin: container → host:8080", func() (string, error) { return fetch(l, "h1", "peer", "http://"+host+":8080/passwd") })
	get("container → itself via host:8080", func() (string, error) { return fetch(l, "h1", "web", "http://"+host+":8080/passwd") })
	if out, err := curlClient(l, "http://"+host+":8081/passwd"); err == nil {
		t.Fatalf("port published on 127.0.0.1 answered on %s: %s", host, out)
	}

	// The container sees the outside client's own address (tcpsvd -v logs
	// the peer of every connection).
	run(t, l, "h1", "tcpsrv", append([]string{"--network", "pub", "-p", "9090:9000", TestImage}, "netcheck", "tcp-server", "9000")...)
	WaitFor(t, shortWait, func() (bool, string) {
		_, _ = l.Client("sh", "-c", fmt.Sprintf("timeout 2 busybox nc %s 9090 </dev/null", host))
		out, _ := l.Docker("h1", "logs", "tcpsrv")
		return strings.Contains(out, "from "+l.ClientIP()+":"), out
	})

	// UDP, from the client and from the host.
	run(t, l, "h1", "udpsrv", append([]string{"--network", "pub", "-p", "5353:53/udp", TestImage}, "netcheck", "udp-server", "53")...)
	WaitFor(t, shortWait, func() (bool, string) {
		_, _ = l.Client("bash", "-c", fmt.Sprintf("echo hello-udp >/dev/udp/%s/5353", host))
		out, _ := l.Docker("h1", "logs", "udpsrv")
		return strings.Contains(out, "from "+l.ClientIP()+":") && strings.Contains(out, "hello-udp"), out
	})
	if out, err := l.Exec("h1", "netcheck", "udp-send", "127.0.0.1:5353", "from-host"); err != nil || !strings.Contains(out, "echo from-host") {
		t.Fatalf("UDP from the host to 127.0.0.1:5353: %v %s", err, out)
	}

	// A busy host port is refused, naming it; nothing is left of the attempt.
	dockerFails(t, l, "h1", []string{"8080/tcp", "already published"}, webArgs("run", "--rm", "--network", "pub", "-p", "8080:80")...)

	// Ranges take the first free port; -p 80 takes an ephemeral one.
	run(t, l, "h1", "r1", webArgs("--network", "pub", "-p", "8090-8095:80")...)
	run(t, l, "h1", "r2", webArgs("--network", "pub", "-p", "8090-8095:80")...)
	run(t, l, "h1", "eph", webArgs("--network", "pub", "-p", "80")...)
	if p := endpointOf(t, l, "h1", "r1", "pub").Ports; len(p) != 1 || p[0].HostPort != 8090 {
		t.Fatalf("r1 ports: %+v", p)
	}
	if p := endpointOf(t, l, "h1", "r2", "pub").Ports; len(p) != 1 || p[0].HostPort != 8091 {
		t.Fatalf("r2 ports: %+v", p)
	}
	eph := endpointOf(t, l, "h1", "eph", "pub").Ports
	lo, hi := 0, 0
	fmt.Sscanf(l.MustExec(t, "h1", "cat", "/proc/sys/net/ipv4/ip_local_port_range"), "%d %d", &lo, &hi)
	if len(eph) != 1 || eph[0].HostPort < lo || eph[0].HostPort > hi {
		t.Fatalf("ephemeral port %+v outside %d-%d", eph, lo, hi)
	}
	get("ephemeral port", func() (string, error) {
		return curlClient(l, fmt.Sprintf("http://%s:%d/passwd", host, eph[0].HostPort))
	})
	get("range port", func() (string, error) { return curlClient(l, "http://"+host+":8091/passwd") })
	mustContain(t, "podnetd logs the ports it chose", l.MustExec(t, "h1", "cat", l.HostDir("h1")+"/podnetd.log"),
		fmt.Sprintf(":%d->", eph[0].HostPort))

	// Stopping the container removes its rules.
	l.MustDocker(t, "h1", "stop", "-t", "1", "web")
	if out, err := curlClient(l, "http://"+host+":8080/passwd"); err == nil {
		t.Fatalf("port still answers after the container stopped: %s", out)
	}
	maps := l.MustExec(t, "h1", "nft", "list", "table", "inet", "podnet")
	if strings.Contains(maps, ". 8080 ") || strings.Contains(maps, ". 8081 ") {
		t.Fatalf("map elements of the stopped container remain:\n%s", maps)
	}
	// And a new container can take the port at once.
	run(t, l, "h1", "web2", webArgs("--network", "pub", "-p", "8080:80")...)
	get("port re-published", func() (string, error) { return curlClient(l, "http://"+host+":8080/passwd") })
}

// TestPortSpaceShared: NodePorts and docker run -p host ports are one
// space per host. -p on a NodePort is refused naming the service; a
// NodePort on a port a container publishes (on any host) is refused
// naming the container; a host process already listening on a NodePort's
// port keeps its traffic on that host, which reports the conflict, while
// the other hosts serve the NodePort.
func TestPortSpaceShared(t *testing.T) {
	l := svcLab(t)
	backend(t, l, "h1", "ports1", "--network", svcNet, "-l", "app=ports", "--hostname", "ports1")
	service(t, l, "h1", "portnp", "--selector", "app=ports", "--port", "80:8080", "--node-port", "30610")
	out, err := l.Docker("h2", "run", "-d", "--name", "pshadow", "--network", svcNet, "-p", "30610:80", TestImage, "sleep", "1d")
	t.Cleanup(func() { _, _ = l.Docker("h2", "rm", "-f", "pshadow") })
	if err == nil || !strings.Contains(out+err.Error(), "host port 30610/tcp is NodePort 30610 of service portnp") {
		t.Fatalf("docker run -p on a NodePort: %v %s", err, out)
	}
	run(t, l, "h2", "ppub", webArgs("--network", svcNet, "-p", "30620:80")...)
	WaitFor(t, shortWait, func() (bool, string) {
		out, err := l.Exec("h3", "podnetctl", "service", "create", "portpub", "--selector", "app=ports", "--port", "80:8080", "--node-port", "30620")
		if err == nil {
			_, _ = l.Exec("h3", "podnetctl", "service", "rm", "portpub")
		}
		return err != nil && strings.Contains(err.Error(), "nodePort 30620/TCP is published by container ppub on host h2"),
			fmt.Sprint("a NodePort on a published port: ", err, out)
	})

	// A web server of h3 itself on 30630, then a NodePort 30630.
	dir := filepath.Join(l.HostDir("h3"), "hostweb")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "id"), []byte("hostproc\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(l.MustExec(t, "h3", "sh", "-c", "busybox httpd -f -p 30630 -h "+dir+" >/dev/null 2>&1 </dev/null & echo $!"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGKILL) })
	WaitFor(t, shortWait, func() (bool, string) {
		out, err := curlClient(l, "http://"+l.HostIP("h3")+":30630/id")
		return err == nil && strings.Contains(out, "hostproc"), fmt.Sprint("h3's own web server: ", err, out)
	})
	service(t, l, "h1", "portlisten", "--selector", "app=ports", "--port", "80:8080", "--node-port", "30630")
	WaitFor(t, shortWait, func() (bool, string) {
		v := svcGet(t, l, "h1", "portlisten")
		for _, e := range v.Status.Errors {
			if e.Host == "h3" && strings.Contains(e.Error, "node port 30630/tcp is held by a process of this host") {
				return len(v.Status.Errors) == 1, fmt.Sprintf("errors %+v", v.Status.Errors)
			}
		}
		return false, fmt.Sprintf("portlisten's errors %+v, want h3's listener", v.Status.Errors)
	})
	for h, want := range map[string]string{"h3": "hostproc", "h1": "ports1", "h2": "ports1"} {
		out, err := curlClient(l, "http://"+l.HostIP(h)+":30630/id")
		if err != nil || !strings.Contains(out, want) {
			t.Errorf("NodePort 30630 on %s: %v %q, want %s", h, err, out, want)
		}
	}
}
