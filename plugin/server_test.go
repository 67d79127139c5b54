package plugin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/docker/go-plugins-helpers/ipam"
	"github.com/docker/go-plugins-helpers/network"
	"github.com/podnet/podnet/netspec"
)

type fakeNet struct {
	err      error
	lastJoin *network.JoinRequest
	created  *network.CreateNetworkRequest
}

func (f *fakeNet) CreateNetwork(_ context.Context, r *network.CreateNetworkRequest) error {
	f.created = r
	return f.err
}
func (f *fakeNet) DeleteNetwork(context.Context, *network.DeleteNetworkRequest) error { return f.err }
func (f *fakeNet) CreateEndpoint(context.Context, *network.CreateEndpointRequest) (*network.CreateEndpointResponse, error) {
	return nil, f.err
}
func (f *fakeNet) DeleteEndpoint(context.Context, *network.DeleteEndpointRequest) error { return f.err }
func (f *fakeNet) EndpointInfo(context.Context, *network.InfoRequest) (*network.InfoResponse, error) {
	return nil, f.err
}
func (f *fakeNet) Join(_ context.Context, r *network.JoinRequest) (*network.JoinResponse, error) {
	f.lastJoin = r
	if f.err != nil {
		return nil, f.err
	}
	return &network.JoinResponse{InterfaceName: network.InterfaceName{SrcName: "pnc0", DstPrefix: "eth"}, Gateway: "10.1.0.1"}, nil
}
func (f *fakeNet) Leave(context.Context, *network.LeaveRequest) error { return f.err }
func (f *fakeNet) ProgramExternalConnectivity(context.Context, *network.ProgramExternalConnectivityRequest) error {
	return f.err
}
func (f *fakeNet) RevokeExternalConnectivity(context.Context, *network.RevokeExternalConnectivityRequest) error {
	return f.err
}

type fakeIPAM struct{ err error }

func (f *fakeIPAM) RequestPool(_ context.Context, r *ipam.RequestPoolRequest) (*ipam.RequestPoolResponse, error) {
	if f.err != nil {
		return nil, f.err
	}
	return &ipam.RequestPoolResponse{PoolID: r.Pool, Pool: r.Pool}, nil
}
func (f *fakeIPAM) ReleasePool(context.Context, *ipam.ReleasePoolRequest) error { return f.err }
func (f *fakeIPAM) RequestAddress(context.Context, *ipam.RequestAddressRequest) (*ipam.RequestAddressResponse, error) {
	return &ipam.RequestAddressResponse{Address: "10.1.0.2/16"}, f.err
}
func (f *fakeIPAM) ReleaseAddress(context.Context, *ipam.ReleaseAddressRequest) error { return f.err }

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func newTest(n NetworkDriver, i IPAMDriver) *httptest.Server {
	s := New(Options{Logger: quiet(), ReadyTimeout: 200 * time.Millisecond})
	if n != nil {
		s.SetDrivers(n, i)
	}
	return httptest.NewServer(s.Handler())
}

func post(t *testing.T, srv *httptest.Server, path, body string) (int, map[string]any) {
	t.Helper()
	resp, err := http.Post(srv.URL+path, contentType, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	b, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("%s: response %q is not a JSON object: %v", path, b, err)
	}
	return resp.StatusCode, out
}

func TestHandshakeAnswersBeforeDriversAreReady(t *testing.T) {
	srv := newTest(nil, nil)
	defer srv.Close()
	_, act := post(t, srv, "/Plugin.Activate", "")
	impl, _ := act["Implements"].([]any)
	if len(impl) != 2 || impl[0] != "NetworkDriver" || impl[1] != "IpamDriver" {
		t.Fatalf("Activate: %v", act)
	}
	_, caps := post(t, srv, "/NetworkDriver.GetCapabilities", "")
	if caps["Scope"] != "local" || caps["ConnectivityScope"] != "global" {
		t.Fatalf("capabilities: %v", caps)
	}
	_, spaces := post(t, srv, "/IpamDriver.GetDefaultAddressSpaces", "")
	if spaces["LocalDefaultAddressSpace"] != netspec.LocalAddressSpace {
		t.Fatalf("address spaces: %v", spaces)
	}
	_, icaps := post(t, srv, "/IpamDriver.GetCapabilities", "")
	if icaps["RequiresMACAddress"] != false {
		t.Fatalf("ipam capabilities: %v", icaps)
	}
}

func TestCallsBeforeReadyFailWithAClearError(t *testing.T) {
	srv := newTest(nil, nil)
	defer srv.Close()
	start := time.Now()
	code, out := post(t, srv, "/NetworkDriver.CreateNetwork", `{"NetworkID":"abc"}`)
	if code != 200 || !strings.Contains(out["Err"].(string), "still starting") {
		t.Fatalf("got %d %v", code, out)
	}
	if time.Since(start) > 5*time.Second {
		t.Fatal("readiness gate did not time out")
	}
	_, out = post(t, srv, "/IpamDriver.RequestPool", `{"Pool":"10.1.0.0/16"}`)
	if !strings.Contains(out["Error"].(string), "still starting") {
		t.Fatalf("ipam error must use the Error key: %v", out)
	}
}

func TestErrorsUseTheKeyEachDriverTypeReads(t *testing.T) {
	boom := errors.New("boom")
	srv := newTest(&fakeNet{err: boom}, &fakeIPAM{err: boom})
	defer srv.Close()
	code, out := post(t, srv, "/NetworkDriver.CreateNetwork", `{"NetworkID":"abc","Options":{}}`)
	if code != 200 || out["Err"] != "podnet: boom" {
		t.Fatalf("network error: %d %v", code, out)
	}
	code, out = post(t, srv, "/IpamDriver.RequestPool", `{"Pool":"10.1.0.0/16"}`)
	if code != 200 || out["Error"] != "podnet: boom" {
		t.Fatalf("ipam error: %d %v", code, out)
	}
}

func TestMalformedJSONIsRejected(t *testing.T) {
	srv := newTest(&fakeNet{}, &fakeIPAM{})
	defer srv.Close()
	for _, path := range []string{"/NetworkDriver.CreateNetwork", "/NetworkDriver.Join", "/IpamDriver.RequestAddress"} {
		code, out := post(t, srv, path, `{"NetworkID": 12`)
		if code != http.StatusBadRequest {
			t.Fatalf("%s: status %d", path, code)
		}
		msg, _ := out["Err"].(string)
		if msg == "" {
			msg, _ = out["Error"].(string)
		}
		if !strings.Contains(msg, "malformed") {
			t.Fatalf("%s: %v", path, out)
		}
	}
}

func TestSuccessfulCallsEncodeResults(t *testing.T) {
	fn := &fakeNet{}
	srv := newTest(fn, &fakeIPAM{})
	defer srv.Close()
	_, out := post(t, srv, "/NetworkDriver.Join", `{"NetworkID":"n","EndpointID":"e","SandboxKey":"/x","Options":{"com.docker.network.portmap":[]}}`)
	iface, _ := out["InterfaceName"].(map[string]any)
	if iface["SrcName"] != "pnc0" || iface["DstPrefix"] != "eth" || out["Gateway"] != "10.1.0.1" {
		t.Fatalf("join: %v", out)
	}
	if fn.lastJoin.SandboxKey != "/x" {
		t.Fatalf("join request not decoded: %+v", fn.lastJoin)
	}
	// A nil result from the driver must be {} (CreateEndpoint) and
	// EndpointOperInfo must always carry a Value object.
	_, out = post(t, srv, "/NetworkDriver.CreateEndpoint", `{"NetworkID":"n","EndpointID":"e","Interface":{"Address":"10.1.0.2/16"}}`)
	if len(out) != 0 {
		t.Fatalf("create endpoint: %v", out)
	}
	_, out = post(t, srv, "/NetworkDriver.EndpointOperInfo", `{"NetworkID":"n","EndpointID":"e"}`)
	if _, ok := out["Value"].(map[string]any); !ok {
		t.Fatalf("EndpointOperInfo must return a Value object: %v", out)
	}
	_, out = post(t, srv, "/NetworkDriver.AllocateNetwork", `{"NetworkID":"n","Options":{"mode":"vxlan"}}`)
	if opts, _ := out["Options"].(map[string]any); opts["mode"] != "vxlan" {
		t.Fatalf("AllocateNetwork must echo options: %v", out)
	}
}

func TestOptionsKeepDockerShapes(t *testing.T) {
	fn := &fakeNet{}
	srv := newTest(fn, &fakeIPAM{})
	defer srv.Close()
	body := `{"NetworkID":"n","Options":{"com.docker.network.generic":{"mode":"bridge"},"com.docker.network.enable_ipv6":false,"com.docker.network.internal":true},"IPv4Data":[{"AddressSpace":"podnet-local","Pool":"10.1.0.0/16","Gateway":"10.1.0.1/16","AuxAddresses":{"a":"10.1.0.5/16"}}]}`
	if code, out := post(t, srv, "/NetworkDriver.CreateNetwork", body); code != 200 || len(out) != 0 {
		t.Fatalf("%d %v", code, out)
	}
	if fn.created.IPv4Data[0].Gateway != "10.1.0.1/16" || fn.created.Options["com.docker.network.internal"] != true {
		t.Fatalf("decoded: %+v", fn.created)
	}
}

func TestListenReplacesStaleSocketButNotALiveOne(t *testing.T) {
	path := filepath.Join(t.TempDir(), "podnet.sock")
	l, err := Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := New(Options{Logger: quiet()})
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, l) }()
	if _, err := Listen(path); err == nil || !strings.Contains(err.Error(), "already serves") {
		t.Fatalf("second listener on a live socket: %v", err)
	}
	cancel()
	<-done
	// The socket file may linger after a crash: Listen must take it over.
	l2, err := Listen(path)
	if err != nil {
		t.Fatalf("stale socket not replaced: %v", err)
	}
	l2.Close()
}

// FuzzDecoders feeds arbitrary bodies to every path: no panic, and the
// answer is always a JSON object.
func FuzzDecoders(f *testing.F) {
	seeds := []string{
		`{"NetworkID":"n","Options":{"com.docker.network.generic":{"mode":"bridge"}},"IPv4Data":[{"Pool":"10.1.0.0/16"}]}`,
		`{"NetworkID":"n","EndpointID":"e","Interface":{"Address":"10.1.0.2/16","MacAddress":""},"Options":{"com.docker.network.portmap":[{"Proto":6,"Port":80,"HostPort":8080,"HostPortEnd":8080}]}}`,
		`{"PoolID":"10.1.0.0/16","Address":"10.1.0.9","Options":{"RequestAddressType":"com.docker.network.gateway"}}`,
		`{"Pool":"","SubPool":"","V6":true}`,
		`null`, `[]`, `{"IPv4Data":null}`, `{"Options":{"com.docker.network.portmap":"x"}}`, "\x00",
	}
	for _, s := range seeds {
		f.Add(s)
	}
	srv := New(Options{Logger: quiet(), ReadyTimeout: time.Millisecond})
	srv.SetDrivers(&fakeNet{}, &fakeIPAM{})
	paths := []string{"/NetworkDriver.CreateNetwork", "/NetworkDriver.CreateEndpoint", "/NetworkDriver.Join",
		"/NetworkDriver.ProgramExternalConnectivity", "/IpamDriver.RequestPool", "/IpamDriver.RequestAddress",
		"/IpamDriver.ReleaseAddress", "/NetworkDriver.AllocateNetwork", "/NetworkDriver.DiscoverNew"}
	f.Fuzz(func(t *testing.T, body string) {
		for _, p := range paths {
			rec := httptest.NewRecorder()
			srv.Handler().ServeHTTP(rec, httptest.NewRequest("POST", p, bytes.NewBufferString(body)))
			var v map[string]any
			if err := json.Unmarshal(rec.Body.Bytes(), &v); err != nil && rec.Body.String() != "null\n" {
				t.Fatalf("%s: non-JSON answer %q", p, rec.Body.String())
			}
		}
	})
}
