//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"
)

// Helpers shared by the podnet tests: etcd keys, podnetctl views, links.

// single returns the shared one-host lab with an embedded etcd, after
// checking podnetd is built. Tests remove what they create (t.Cleanup).
func single(t *testing.T) *Lab {
	t.Helper()
	RequirePodnetd(t)
	return Shared(t, 1, EtcdEmbedded)
}

// etcdKeys lists the keys under /podnet/v1/<prefix> as seen from host.
func etcdKeys(t *testing.T, l *Lab, host, prefix string) []string {
	t.Helper()
	out := l.MustExec(t, host, "sh", "-c",
		fmt.Sprintf(`etcdctl --endpoints "$LAB_ETCD_ENDPOINTS" get --prefix --keys-only /podnet/v1/%s`, prefix))
	var keys []string
	for _, k := range strings.Fields(out) {
		keys = append(keys, strings.TrimPrefix(k, "/podnet/v1/"))
	}
	return keys
}

func etcdGet(t *testing.T, l *Lab, host, key string, v any) bool {
	t.Helper()
	out := l.MustExec(t, host, "sh", "-c",
		fmt.Sprintf(`etcdctl --endpoints "$LAB_ETCD_ENDPOINTS" get --print-value-only /podnet/v1/%s`, key))
	if strings.TrimSpace(out) == "" {
		return false
	}
	if err := json.Unmarshal([]byte(out), v); err != nil {
		t.Fatalf("etcd %s: %v: %q", key, err, out)
	}
	return true
}

type endpointJSON struct {
	ID    string `json:"id"`
	IPv4  string `json:"ipv4"`
	IPv6  string `json:"ipv6"`
	Ports []struct {
		Proto         string `json:"proto"`
		HostIP        string `json:"hostIP"`
		HostPort      int    `json:"hostPort"`
		ContainerPort int    `json:"containerPort"`
	} `json:"ports"`
}

func endpoints(t *testing.T, l *Lab, host string) []endpointJSON {
	t.Helper()
	var eps []endpointJSON
	out := l.MustExec(t, host, "podnetctl", "endpoint", "ls", "-o", "json")
	if err := json.Unmarshal([]byte(out), &eps); err != nil {
		t.Fatalf("podnetctl endpoint ls: %v: %s", err, out)
	}
	return eps
}

// endpointOf finds the podnet endpoint of container name on network.
func endpointOf(t *testing.T, l *Lab, host, name, network string) endpointJSON {
	t.Helper()
	id := strings.TrimSpace(l.MustDocker(t, host, "inspect", "-f",
		fmt.Sprintf(`{{with index .NetworkSettings.Networks %q}}{{.EndpointID}}{{end}}`, network), name))
	for _, e := range endpoints(t, l, host) {
		if e.ID == id {
			return e
		}
	}
	t.Fatalf("podnetd knows no endpoint %s of container %s on %s", id, name, network)
	return endpointJSON{}
}

// links returns the names of the links on host whose name starts with
// prefix; filter narrows `ip link show` (e.g. "type", "macvlan").
func links(t *testing.T, l *Lab, host, prefix string, filter ...string) []string {
	t.Helper()
	out := l.MustExec(t, host, append([]string{"ip", "-o", "link", "show"}, filter...)...)
	var names []string
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		name := strings.SplitN(strings.TrimSuffix(f[1], ":"), "@", 2)[0]
		if strings.HasPrefix(name, prefix) {
			names = append(names, name)
		}
	}
	return names
}

// netID returns a Docker network's full ID.
func netID(t *testing.T, l *Lab, host, name string) string {
	t.Helper()
	return strings.TrimSpace(l.MustDocker(t, host, "network", "inspect", "-f", "{{.Id}}", name))
}

// podnetNet creates a podnet network and removes it (and its containers)
// when the test ends.
func podnetNet(t *testing.T, l *Lab, host, name string, args ...string) string {
	t.Helper()
	full := append([]string{"network", "create", "-d", "podnet", "--ipam-driver", "podnet"}, args...)
	l.MustDocker(t, host, append(full, name)...)
	t.Cleanup(func() { removeNetwork(l, host, name) })
	return netID(t, l, host, name)
}

// removeNetwork removes a network and every container attached to it.
func removeNetwork(l *Lab, host, name string) {
	out, _ := l.Docker(host, "ps", "-aq", "--filter", "network="+name)
	if ids := strings.Fields(out); len(ids) > 0 {
		_, _ = l.Docker(host, append([]string{"rm", "-f"}, ids...)...)
	}
	_, _ = l.Docker(host, "network", "rm", name)
}

// run starts a detached container (removed when the test ends) and
// returns its name.
func run(t *testing.T, l *Lab, host, name string, args ...string) string {
	t.Helper()
	full := append([]string{"run", "-d", "--name", name}, args...)
	l.MustDocker(t, host, full...)
	t.Cleanup(func() { _, _ = l.Docker(host, "rm", "-f", name) })
	return name
}

func sleeper(args ...string) []string {
	return append(args, TestImage, "sleep", "1d")
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func mustContain(t *testing.T, what, out, want string) {
	t.Helper()
	if !strings.Contains(out, want) {
		t.Fatalf("%s: want %q in:\n%s", what, want, out)
	}
}

// dockerFails runs docker and requires it to fail with a message holding
// every want.
func dockerFails(t *testing.T, l *Lab, host string, want []string, args ...string) {
	t.Helper()
	out, err := l.Docker(host, args...)
	if err == nil {
		t.Fatalf("docker %s succeeded, want an error containing %q:\n%s", strings.Join(args, " "), want, out)
	}
	for _, w := range want {
		if !strings.Contains(err.Error()+out, w) {
			t.Fatalf("docker %s: error %q does not contain %q", strings.Join(args, " "), err.Error()+out, w)
		}
	}
}

// ping reports whether container name reaches addr within a few seconds.
func ping(l *Lab, host, name, addr string) bool {
	_, err := l.Docker(host, "exec", name, "ping", "-c", "1", "-W", "2", addr)
	return err == nil
}

// fetch gets url from inside container name (busybox wget).
func fetch(l *Lab, host, name, url string) (string, error) {
	return l.Docker(host, "exec", name, "timeout", "5", "wget", "-q", "-O", "-", url)
}

// curl fetches url from host's namespace.
func curl(l *Lab, host, url string) (string, error) {
	return l.Exec(host, "curl", "-sS", "--max-time", "3", url)
}

// curlClient fetches url from the outside client's namespace.
func curlClient(l *Lab, url string) (string, error) {
	return l.Client("curl", "-sS", "--max-time", "3", url)
}

const shortWait = 20 * time.Second
