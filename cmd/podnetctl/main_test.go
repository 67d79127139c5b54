package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/podnet/podnet/admin"
	"github.com/podnet/podnet/internal/fault"
)

// fakePodnetd serves the admin API on a socket in a temporary directory,
// answering from canned values and recording what it was sent.
type fakePodnetd struct {
	socket string
	mu     sync.Mutex
	calls  []string
	specs  []admin.NetworkSpec
	gc     admin.GCReport
	hosts  []admin.HostStatus
}

func startFake(t *testing.T) *fakePodnetd {
	t.Helper()
	f := &fakePodnetd{socket: filepath.Join(t.TempDir(), "podnet.sock")}
	record := func(r *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.calls = append(f.calls, r.Method+" "+r.URL.Path)
	}
	routes := admin.Routes{
		"POST /v1/cluster/networks": func(_ context.Context, r *http.Request) (any, error) {
			record(r)
			var s admin.NetworkSpec
			if err := json.NewDecoder(r.Body).Decode(&s); err != nil {
				return nil, fault.Invalid(err)
			}
			f.mu.Lock()
			f.specs = append(f.specs, s)
			f.mu.Unlock()
			return nil, fault.Invalid(errors.New("refused by the fake podnetd"))
		},
		"GET /v1/cluster/hosts": func(_ context.Context, r *http.Request) (any, error) {
			record(r)
			return f.hosts, nil
		},
		"DELETE /v1/cluster/hosts/{name}": func(_ context.Context, r *http.Request) (any, error) {
			record(r)
			return struct{}{}, nil
		},
		"POST /v1/gc": func(_ context.Context, r *http.Request) (any, error) {
			record(r)
			return f.gc, nil
		},
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := admin.Serve(ctx, f.socket, routes, slog.New(slog.DiscardHandler)); err != nil {
			t.Error(err)
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := net.Dial("unix", f.socket)
		if err == nil {
			c.Close()
			return f
		}
		if time.Now().After(deadline) {
			t.Fatalf("fake podnetd did not come up: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (f *fakePodnetd) run(args ...string) (string, error) {
	var out bytes.Buffer
	cmd := newRootCmd(&out)
	cmd.SetArgs(append([]string{"--socket", f.socket}, args...))
	cmd.SetErr(&out)
	err := cmd.Execute()
	return out.String(), err
}

func (f *fakePodnetd) called() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.calls...)
}

// Docker's habit, -o KEY=VALUE, gives network create a driver option; the
// option reaches podnetd (which validates it) instead of being taken as an
// output format and dropped.
func TestNetworkCreateTakesDockerStyleOptions(t *testing.T) {
	f := startFake(t)
	_, err := f.run("network", "create", "typo", "--subnet", "10.71.0.0/16", "-o", "podnet.masqurade=false", "--opt", "mtu=1400")
	if err == nil || !strings.Contains(err.Error(), "refused by the fake podnetd") {
		t.Fatalf("got %v", err)
	}
	if len(f.specs) != 1 {
		t.Fatalf("podnetd got %d specs", len(f.specs))
	}
	s := f.specs[0]
	if s.Options["podnet.masqurade"] != "false" || s.Options["mtu"] != "1400" || s.Mode != "vxlan" {
		t.Fatalf("spec sent: %+v", s)
	}
	// -o mode=M alone decides the mode (the --mode default does not clash).
	_, _ = f.run("network", "create", "b", "--subnet", "10.72.0.0/16", "-o", "mode=bridge")
	if s := f.specs[1]; s.Mode != "" || s.Options["mode"] != "bridge" {
		t.Fatalf("spec sent: %+v", s)
	}
}

// An -o on network create that is no KEY=VALUE is refused before anything
// is sent, and names the habit it comes from.
func TestNetworkCreateRefusesOutputFormatAsOption(t *testing.T) {
	f := startFake(t)
	for _, args := range [][]string{
		{"network", "create", "n", "--subnet", "10.71.0.0/16", "-o", "json"},
		{"network", "create", "n", "--subnet", "10.71.0.0/16", "-o", "=x"},
		{"network", "create", "n", "--subnet", "10.71.0.0/16", "-o", "a=1", "-o", "a=2"},
	} {
		_, err := f.run(args...)
		if err == nil || !strings.Contains(err.Error(), "-o/--opt") {
			t.Errorf("%v: got %v", args, err)
		}
	}
	if calls := f.called(); len(calls) != 0 {
		t.Fatalf("refused commands reached podnetd: %v", calls)
	}
}

// An unknown output format is an error on every command, printing or not,
// before any request.
func TestUnknownOutputFormatIsAnError(t *testing.T) {
	f := startFake(t)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"host", "ls", "-o", "xml"}, `unknown output format "xml"`},
		{[]string{"gc", "--output", "wide"}, `unknown output format "wide"`},
		{[]string{"status", "-o", "podnet.masquerade=false"}, "network create -o/--opt"},
		{[]string{"pool", "ls", "-o", "jsn"}, `unknown output format "jsn"`},
		{[]string{"host", "rm", "h9", "-o", "json"}, "unknown shorthand flag: 'o'"},
		{[]string{"network", "rm", "n", "--output", "json"}, "unknown flag: --output"},
	} {
		_, err := f.run(c.args...)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: got %v, want an error containing %q", c.args, err, c.want)
		}
	}
	if calls := f.called(); len(calls) != 0 {
		t.Fatalf("refused commands reached podnetd: %v", calls)
	}
	out, err := f.run("host", "ls", "-o", "json")
	if err != nil || strings.TrimSpace(out) != "null" && !strings.HasPrefix(strings.TrimSpace(out), "[") {
		t.Fatalf("host ls -o json: %v %q", err, out)
	}
}

// podnetctl gc prints a count and a bounded list per kind, however much
// was collected; -o json still lists everything.
func TestGCOutputIsBounded(t *testing.T) {
	f := startFake(t)
	for i := range 5000 {
		f.gc.Addresses = append(f.gc.Addresses, netip.AddrFrom4([4]byte{10, 1, byte(i >> 8), byte(i)}))
		f.gc.Endpoints = append(f.gc.Endpoints, strings.Repeat("e", 64))
	}
	f.gc.Pools = []netip.Prefix{netip.MustParsePrefix("10.1.0.0/16")}
	out, err := f.run("gc")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 5 {
		t.Fatalf("%d lines:\n%s", len(lines), out)
	}
	for _, l := range lines {
		if len(l) > 400 {
			t.Errorf("line of %d bytes: %.120s…", len(l), l)
		}
	}
	words := strings.Join(strings.Fields(out), " ")
	for _, want := range []string{"addresses released: 5000 10.1.0.0, 10.1.0.1,", "10.1.0.9, … and 4990 more",
		"endpoints removed: 5000 eeeeeeeeeeee, ", "pools released: 1 10.1.0.0/16"} {
		if !strings.Contains(words, want) {
			t.Errorf("gc table lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, strings.Repeat("e", 13)) {
		t.Errorf("gc table shows endpoint IDs in full:\n%s", out)
	}
	out, err = f.run("gc", "-o", "json")
	var r admin.GCReport
	if err != nil || json.Unmarshal([]byte(out), &r) != nil || len(r.Addresses) != 5000 {
		t.Fatalf("gc -o json: %v, %d addresses", err, len(r.Addresses))
	}
}
