//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/podnet/podnet/internal/testutil"
)

// Etcd modes of Up.
const (
	EtcdEmbedded = "embedded" // each podnetd runs its own embedded etcd
	EtcdCluster  = "cluster"  // a 3-member etcd cluster shared by all hosts
)

// TestImage is the busybox image lab.sh imports into every host (also tagged "bb").
const TestImage = "podnet-test/busybox:latest"

const (
	upTimeout   = 5 * time.Minute
	downTimeout = 3 * time.Minute
)

// Options describe a lab. Up(t, n, etcd) is UpWith(t, Options{N: n, Etcd: etcd}).
type Options struct {
	N    int    // number of hosts, 1..5
	Etcd string // EtcdEmbedded or EtcdCluster
	// NoPodnetd brings the hosts up with dockerd only, whatever PODNET_BIN
	// holds (for tests of the lab itself).
	NoPodnetd bool
	// Bin is the directory of the podnetd and podnetctl the hosts start
	// with (default PodnetBin(); an upgrade test starts an older build).
	Bin string
}

// Lab is a running scripts/lab.sh lab. Its methods are safe for concurrent use.
type Lab struct {
	Options
	Dir  string // LAB_DIR
	Name string // LAB_NAME
	Net  string // LAB_NET, e.g. "10.250.0"
	// ExecTimeout bounds every command run through the lab (default 2m).
	ExecTimeout time.Duration

	script string
	env    []string
}

var (
	labMu  sync.Mutex // one lab at a time
	active *Lab       // the lab that is up, if any
	shared *Lab       // the lab Shared hands out
)

// RepoRoot is the directory holding go.mod, found upwards from the working
// directory (go test runs in the package directory).
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("go.mod not found above the working directory")
		}
		dir = parent
	}
}

// PodnetBin is the directory holding podnetd and podnetctl: $PODNET_BIN, else <repo>/bin.
func PodnetBin() string {
	if d := os.Getenv("PODNET_BIN"); d != "" {
		return d
	}
	root, err := RepoRoot()
	if err != nil {
		return "bin"
	}
	return filepath.Join(root, "bin")
}

// RequirePodnetd fails the test, with instructions, when the podnetd binary is missing.
func RequirePodnetd(t testing.TB) {
	t.Helper()
	p := filepath.Join(PodnetBin(), "podnetd")
	if st, err := os.Stat(p); err != nil || st.IsDir() || st.Mode()&0o111 == 0 {
		t.Fatalf("this test needs %s: run `make build` first (or set PODNET_BIN to the directory holding podnetd and podnetctl)", p)
	}
}

func requireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("e2e tests need root (network namespaces, dockerd, netfilter): run them with sudo")
	}
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

func newLab(opts Options) (*Lab, error) {
	if opts.N < 1 || opts.N > 5 {
		return nil, fmt.Errorf("lab: %d hosts: want 1..5", opts.N)
	}
	if opts.Etcd != EtcdEmbedded && opts.Etcd != EtcdCluster {
		return nil, fmt.Errorf("lab: etcd mode %q: want %q or %q", opts.Etcd, EtcdEmbedded, EtcdCluster)
	}
	root, err := RepoRoot()
	if err != nil {
		return nil, err
	}
	l := &Lab{
		Options:     opts,
		Dir:         strings.TrimRight(envOr("LAB_DIR", "/tmp/podnet-lab"), "/"),
		Name:        envOr("LAB_NAME", "lab"),
		Net:         envOr("LAB_NET", "10.250.0"),
		ExecTimeout: 2 * time.Minute,
		script:      envOr("PODNET_LAB_SH", filepath.Join(root, "scripts", "lab.sh")),
	}
	bin := PodnetBin()
	if opts.Bin != "" {
		bin = opts.Bin
	}
	if opts.NoPodnetd {
		// A directory without podnetd: lab.sh then starts none (and says so).
		bin = "/nonexistent/podnet-e2e-no-podnetd"
	}
	l.env = append(os.Environ(), "LAB_DIR="+l.Dir, "LAB_NAME="+l.Name, "LAB_NET="+l.Net, "PODNET_BIN="+bin)
	return l, nil
}

// Up brings up a fresh lab of n hosts (etcd: EtcdEmbedded or EtcdCluster) and
// takes it down when the test ends, unless PODNET_E2E_KEEP=1. A lab left up
// by an earlier test or run is taken down first.
func Up(t testing.TB, n int, etcd string) *Lab {
	t.Helper()
	return UpWith(t, Options{N: n, Etcd: etcd})
}

// UpWith is Up with every option.
func UpWith(t testing.TB, opts Options) *Lab {
	t.Helper()
	l := bringUp(t, opts)
	t.Cleanup(func() { l.finish(t) })
	return l
}

// Shared returns a lab of that shape shared by the tests of this binary:
// the one already up if it matches, else a new one (replacing it). Tests
// must leave it as they found it (remove their containers and networks;
// see CleanDocker). TestMain takes it down after the last test.
func Shared(t testing.TB, n int, etcd string) *Lab {
	t.Helper()
	labMu.Lock()
	s := shared
	labMu.Unlock()
	if s != nil && s.N == n && s.Etcd == etcd && !s.NoPodnetd {
		return s
	}
	l := bringUp(t, Options{N: n, Etcd: etcd})
	labMu.Lock()
	shared = l
	labMu.Unlock()
	return l
}

// TeardownShared takes down the lab Shared handed out (TestMain calls it).
func TeardownShared() error {
	labMu.Lock()
	l := shared
	shared = nil
	labMu.Unlock()
	if l == nil || keep() {
		return nil
	}
	return l.Down()
}

func keep() bool { return os.Getenv("PODNET_E2E_KEEP") == "1" }

func bringUp(t testing.TB, opts Options) *Lab {
	t.Helper()
	requireRoot(t)
	l, err := newLab(opts)
	if err != nil {
		t.Fatal(err)
	}
	labMu.Lock()
	prev := active
	if prev == shared {
		shared = nil
	}
	labMu.Unlock()
	// Whatever is up (ours, or left by a killed run) goes first.
	if _, err := os.Stat(filepath.Join(l.Dir, "lab.env")); err == nil || prev != nil {
		t.Logf("lab: taking down the lab already up in %s", l.Dir)
		if err := l.Down(); err != nil {
			t.Fatalf("lab: down before up: %v", err)
		}
	}
	start := time.Now()
	out, err := l.run(upTimeout, "up", strconv.Itoa(opts.N), "--etcd", opts.Etcd)
	if err != nil {
		t.Logf("lab.sh up output:\n%s", out)
		l.dumpLogs(t)
		if !keep() {
			if derr := l.Down(); derr != nil {
				t.Logf("lab: down after failed up: %v", derr)
			}
		}
		t.Fatalf("lab: up %d --etcd %s: %v", opts.N, opts.Etcd, err)
	}
	t.Logf("lab: %d host(s), etcd %s, up in %v", opts.N, opts.Etcd, time.Since(start).Round(100*time.Millisecond))
	labMu.Lock()
	active = l
	labMu.Unlock()
	return l
}

// finish is Up's cleanup: logs on failure, then down unless kept.
func (l *Lab) finish(t testing.TB) {
	if t.Failed() {
		l.dumpLogs(t)
	}
	if keep() {
		t.Logf("lab: PODNET_E2E_KEEP=1: leaving the lab up in %s (scripts/lab.sh down removes it)", l.Dir)
		return
	}
	if err := l.Down(); err != nil {
		t.Errorf("lab: down: %v", err)
	}
}

// Down takes the lab down (idempotent).
func (l *Lab) Down() error {
	out, err := l.run(downTimeout, "down")
	labMu.Lock()
	if active == l {
		active = nil
	}
	labMu.Unlock()
	if err != nil {
		return fmt.Errorf("%w\n%s", err, out)
	}
	return nil
}

// run runs lab.sh with args and returns its combined output.
func (l *Lab) run(timeout time.Duration, args ...string) (string, error) {
	return l.runEnv(timeout, nil, args...)
}

// runEnv is run with extra environment variables.
func (l *Lab) runEnv(timeout time.Duration, env []string, args ...string) (string, error) {
	var out bytes.Buffer
	err := l.command(timeout, env, &out, &out, args...)
	return out.String(), err
}

// command runs lab.sh in its own process group, killed as a whole on timeout.
func (l *Lab) command(timeout time.Duration, env []string, stdout, stderr *bytes.Buffer, args ...string) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, l.script, args...)
	cmd.Env = append(append([]string{}, l.env...), env...)
	cmd.Stdout, cmd.Stderr = stdout, stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	err := cmd.Run()
	if ctx.Err() == context.DeadlineExceeded {
		return fmt.Errorf("lab.sh %s: timed out after %v", strings.Join(args, " "), timeout)
	}
	if err != nil {
		return fmt.Errorf("lab.sh %s: %w", strings.Join(args, " "), err)
	}
	return nil
}

// exec runs `lab.sh VERB args...`, returning trimmed stdout; errors carry stderr.
func (l *Lab) exec(verb string, args ...string) (string, error) {
	var stdout, stderr bytes.Buffer
	err := l.command(l.ExecTimeout, nil, &stdout, &stderr, append([]string{verb}, args...)...)
	out := strings.TrimSpace(stdout.String())
	if err != nil {
		msg := strings.TrimSpace(stderr.String())
		if msg == "" {
			msg = out
		}
		return out, fmt.Errorf("%w: %s", err, msg)
	}
	return out, nil
}

// Exec runs a command on host ("h1".."h5") in its network and mount
// namespaces, with DOCKER_HOST and PODNET_SOCKET set for that host and
// podnetd, podnetctl and docker on PATH. It returns the trimmed stdout.
func (l *Lab) Exec(host string, args ...string) (string, error) {
	return l.exec("exec", append([]string{host}, args...)...)
}

// MustExec is Exec that fails the test on error.
func (l *Lab) MustExec(t testing.TB, host string, args ...string) string {
	t.Helper()
	out, err := l.Exec(host, args...)
	if err != nil {
		t.Fatalf("%s: %s: %v", host, strings.Join(args, " "), err)
	}
	return out
}

// Docker runs the docker CLI against host's own dockerd.
func (l *Lab) Docker(host string, args ...string) (string, error) {
	return l.Exec(host, append([]string{"docker"}, args...)...)
}

// MustDocker is Docker that fails the test on error.
func (l *Lab) MustDocker(t testing.TB, host string, args ...string) string {
	t.Helper()
	return l.MustExec(t, host, append([]string{"docker"}, args...)...)
}

// Client runs a command in the "outside client" netns (an address on the
// underlay that is no Docker host).
func (l *Lab) Client(args ...string) (string, error) { return l.exec("client", args...) }

// MustClient is Client that fails the test on error.
func (l *Lab) MustClient(t testing.TB, args ...string) string {
	t.Helper()
	out, err := l.Client(args...)
	if err != nil {
		t.Fatalf("client: %s: %v", strings.Join(args, " "), err)
	}
	return out
}

func stopArgs(verb, target string, kill bool) []string {
	if kill {
		return []string{verb, target, "--kill"}
	}
	return []string{verb, target}
}

// PodnetdStop stops host's podnetd: SIGTERM, or SIGKILL if kill.
func (l *Lab) PodnetdStop(host string, kill bool) error {
	_, err := l.run(time.Minute, stopArgs("podnetd-stop", host, kill)...)
	return err
}

// PodnetdStart (re)starts host's podnetd with its original flags and waits
// until its plugin socket answers.
func (l *Lab) PodnetdStart(host string) error {
	out, err := l.run(2*time.Minute, "podnetd-start", host)
	if err != nil {
		return fmt.Errorf("%w\n%s", err, out)
	}
	return nil
}

// PodnetdStartBin (re)starts host's podnetd from another binary, with the
// host's flags (a rolling upgrade), and waits until it answers.
func (l *Lab) PodnetdStartBin(host, podnetd string) error {
	out, err := l.runEnv(2*time.Minute, []string{"PODNETD_BIN=" + podnetd}, "podnetd-start", host)
	if err != nil {
		return fmt.Errorf("%w\n%s", err, out)
	}
	return nil
}

// DockerdStop stops host's dockerd: SIGTERM (it stops its containers), or
// SIGKILL if kill (containerd, shims and containers keep running).
func (l *Lab) DockerdStop(host string, kill bool) error {
	_, err := l.run(2*time.Minute, stopArgs("dockerd-stop", host, kill)...)
	return err
}

// DockerdStart (re)starts host's dockerd and waits until `docker info` works.
func (l *Lab) DockerdStart(host string) error {
	out, err := l.run(2*time.Minute, "dockerd-start", host)
	if err != nil {
		return fmt.Errorf("%w\n%s", err, out)
	}
	return nil
}

// EtcdStop stops etcd member 1..3 (cluster mode): SIGTERM, or SIGKILL if kill.
func (l *Lab) EtcdStop(member int, kill bool) error {
	_, err := l.run(time.Minute, stopArgs("etcd-stop", strconv.Itoa(member), kill)...)
	return err
}

// EtcdStart restarts etcd member 1..3 and waits until it serves clients.
func (l *Lab) EtcdStart(member int) error {
	out, err := l.run(2*time.Minute, "etcd-start", strconv.Itoa(member))
	if err != nil {
		return fmt.Errorf("%w\n%s", err, out)
	}
	return nil
}

// EtcdOutage kills every etcd member (-9) and returns the function that
// brings them all back; if the test ends first, cleanup does.
func (l *Lab) EtcdOutage(t testing.TB) (restore func() error) {
	t.Helper()
	for m := 1; m <= 3; m++ {
		if err := l.EtcdStop(m, true); err != nil {
			t.Fatal(err)
		}
	}
	var once sync.Once
	var err error
	restore = func() error {
		once.Do(func() { err = l.EtcdStartAll() })
		return err
	}
	t.Cleanup(func() { _ = restore() })
	return restore
}

// EtcdStartAll restarts every etcd member at once (a member alone has no
// quorum and never gets healthy) and returns the first error.
func (l *Lab) EtcdStartAll() error {
	errs := make(chan error, 3)
	for m := 1; m <= 3; m++ {
		go func() { errs <- l.EtcdStart(m) }()
	}
	var first error
	for range 3 {
		if err := <-errs; err != nil && first == nil {
			first = err
		}
	}
	return first
}

// Status is `lab.sh status`.
func (l *Lab) Status() (string, error) { return l.run(time.Minute, "status") }

// Hosts are the host names, h1..hN.
func (l *Lab) Hosts() []string {
	hs := make([]string, l.N)
	for i := range hs {
		hs[i] = fmt.Sprintf("h%d", i+1)
	}
	return hs
}

func hostIndex(host string) int {
	i, err := strconv.Atoi(strings.TrimPrefix(host, "h"))
	if err != nil {
		return 0
	}
	return i
}

// HostIP is host's underlay address (LAB_NET.10+i).
func (l *Lab) HostIP(host string) string { return fmt.Sprintf("%s.%d", l.Net, 10+hostIndex(host)) }

// ClientIP is the outside client's underlay address.
func (l *Lab) ClientIP() string { return l.Net + ".2" }

// EtcdEndpoints are the client URLs of the etcd the podnetds use: the TLS
// cluster's members, or h1's embedded etcd socket. etcdctl run through
// Exec or Client has the lab's admin certificate in its environment.
func (l *Lab) EtcdEndpoints() []string {
	if l.Etcd != EtcdCluster {
		return []string{"unix://" + filepath.Join(l.HostDir("h1"), "podnet", "etcd.sock")}
	}
	return []string{
		"https://" + l.Net + ".201:2379", "https://" + l.Net + ".202:2379", "https://" + l.Net + ".203:2379",
	}
}

// PKI is the directory of the lab's etcd certificates (ca.crt, etcdM,
// hI and admin .crt/.key).
func (l *Lab) PKI() string { return filepath.Join(l.Dir, "pki") }

// EtcdFlags are the flags an extra podnetd started by a test needs to
// reach the lab's etcd: the endpoints and, for the TLS cluster (which
// requires a client certificate), the admin certificate.
func (l *Lab) EtcdFlags() []string {
	f := []string{"--etcd-endpoints", strings.Join(l.EtcdEndpoints(), ",")}
	if l.Etcd == EtcdCluster {
		f = append(f, "--etcd-cacert", filepath.Join(l.PKI(), "ca.crt"),
			"--etcd-cert", filepath.Join(l.PKI(), "admin.crt"), "--etcd-key", filepath.Join(l.PKI(), "admin.key"))
	}
	return f
}

// ClusterFlags are EtcdFlags plus the cluster facts every podnetd of the
// lab must agree on besides the defaults (--external-ip-cidrs, as
// scripts/lab.sh gives it): for a podnetd a test starts by hand, which
// must get as far as the check it is about.
func (l *Lab) ClusterFlags() []string {
	return append(l.EtcdFlags(), "--external-ip-cidrs", l.ExternalIPCIDRs())
}

// ExternalIPCIDRs is the lab podnetds' --external-ip-cidrs.
func (l *Lab) ExternalIPCIDRs() string {
	if ext, ok := os.LookupEnv("LAB_EXTERNAL_IPS"); ok {
		return ext
	}
	return l.Net + ".0/24"
}

// HostDir is host's state directory (logs, sockets, pid files).
func (l *Lab) HostDir(host string) string { return filepath.Join(l.Dir, host) }

// PluginSocket, AdminSocket and DockerSocket are host's podnetd and dockerd sockets.
func (l *Lab) PluginSocket(host string) string {
	return filepath.Join(l.HostDir(host), "plugins", "podnet.sock")
}
func (l *Lab) AdminSocket(host string) string { return filepath.Join(l.HostDir(host), "podnet.sock") }
func (l *Lab) DockerSocket(host string) string {
	return filepath.Join(l.HostDir(host), "docker.sock")
}

// PIDs are the daemons' PIDs from their pid files, keyed "h1/podnetd",
// "h1/dockerd", "h1/containerd", "etcd1"...; missing files are left out.
func (l *Lab) PIDs() map[string]int {
	files := map[string]string{}
	for _, h := range l.Hosts() {
		files[h+"/podnetd"] = filepath.Join(l.HostDir(h), "podnetd.pid")
		files[h+"/dockerd"] = filepath.Join(l.HostDir(h), "dockerd.pid")
		files[h+"/containerd"] = filepath.Join(l.HostDir(h), "exec", "containerd", "containerd.pid")
	}
	if l.Etcd == EtcdCluster {
		for m := 1; m <= 3; m++ {
			files[fmt.Sprintf("etcd%d", m)] = filepath.Join(l.Dir, fmt.Sprintf("etcd%d", m), "etcd.pid")
		}
	}
	pids := map[string]int{}
	for k, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && pid > 0 {
			pids[k] = pid
		}
	}
	return pids
}

// ProcessAlive reports whether pid runs (zombies count as dead: PID 1 here
// may reap late).
func ProcessAlive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}

// ContainerIP is the address of container name on host in network (the
// first network's address when network is "").
func (l *Lab) ContainerIP(host, name, network string) (string, error) {
	format := `{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}`
	if network != "" {
		format = fmt.Sprintf(`{{with index .NetworkSettings.Networks %q}}{{.IPAddress}}{{end}}`, network)
	}
	out, err := l.Docker(host, "inspect", "-f", format, name)
	if err != nil {
		return "", err
	}
	fields := strings.Fields(out)
	if len(fields) == 0 {
		return "", fmt.Errorf("%s: container %s has no address in network %q", host, name, network)
	}
	return fields[0], nil
}

// CleanDocker removes every container and every user-defined network on
// every host (for tests sharing a lab).
func (l *Lab) CleanDocker() error {
	var errs []error
	for _, h := range l.Hosts() {
		if ids, err := l.Docker(h, "ps", "-aq"); err == nil && ids != "" {
			if _, err := l.Docker(h, append([]string{"rm", "-f"}, strings.Fields(ids)...)...); err != nil {
				errs = append(errs, err)
			}
		}
		nets, err := l.Docker(h, "network", "ls", "-q", "--filter", "type=custom")
		if err == nil && nets != "" {
			if _, err := l.Docker(h, append([]string{"network", "rm"}, strings.Fields(nets)...)...); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// dumpLogs logs the tail of every host's podnetd and dockerd logs.
func (l *Lab) dumpLogs(t testing.TB) {
	t.Helper()
	for _, h := range l.Hosts() {
		for _, name := range []string{"podnetd.log", "dockerd.log"} {
			if tail := tailFile(filepath.Join(l.HostDir(h), name), 40); tail != "" {
				t.Logf("--- %s/%s (last lines):\n%s", h, name, tail)
			}
		}
	}
}

func tailFile(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	return tailLines(string(b), n)
}

// tailLines is the last n lines of s.
func tailLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// Poll is the shared polling loop (testutil.Poll) for e2e's conditions,
// which answer whether they hold and, when not, what they saw.
func Poll(timeout time.Duration, cond func() (bool, string)) error {
	_, err := testutil.Poll(timeout, "condition", func() error {
		if ok, msg := cond(); !ok {
			return errors.New(msg)
		}
		return nil
	})
	return err
}

// WaitFor is Poll that fails the test, reporting cond's last message.
func WaitFor(t testing.TB, timeout time.Duration, cond func() (bool, string)) {
	t.Helper()
	if err := Poll(timeout, cond); err != nil {
		t.Fatal(err)
	}
}
