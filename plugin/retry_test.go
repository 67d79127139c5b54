package plugin

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/docker/docker/pkg/plugins"
	"github.com/docker/go-plugins-helpers/ipam"
)

// TestEmptyBodyIsAnsweredAsDockerdsRetry: a call that needs a body and has
// none is dockerd's retry after podnetd stopped mid-call, and the answer
// says so, not "malformed request".
func TestEmptyBodyIsAnsweredAsDockerdsRetry(t *testing.T) {
	srv := newTest(&fakeNet{}, &fakeIPAM{})
	defer srv.Close()
	for _, path := range []string{"/NetworkDriver.CreateEndpoint", "/NetworkDriver.Leave", "/IpamDriver.RequestAddress", "/IpamDriver.ReleaseAddress"} {
		code, out := post(t, srv, path, "")
		msg, _ := out["Err"].(string)
		if msg == "" {
			msg, _ = out["Error"].(string)
		}
		if code != http.StatusOK || strings.Contains(msg, "malformed") || !strings.Contains(msg, "podnetd stopped") ||
			!strings.Contains(msg, "run the docker command again") {
			t.Fatalf("%s with an empty body: %d %q", path, code, msg)
		}
	}
	// Calls Docker always sends without a body still work.
	if code, out := post(t, srv, "/NetworkDriver.GetCapabilities", ""); code != 200 || out["Scope"] != "local" {
		t.Fatalf("GetCapabilities: %d %v", code, out)
	}
}

// TestDockerdRetryAfterPodnetdDiedMidCall drives moby's own plugin client
// (what dockerd uses) against a socket whose first server reads a whole
// call and dies without answering, as a killed podnetd does; the client's
// retry reaches the next server. It checks what dockerd really re-sends
// (a POST with Content-Length 0) and that the user gets podnet's
// explanation.
func TestDockerdRetryAfterPodnetdDiedMidCall(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "podnet.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	s := New(Options{Logger: quiet()})
	s.SetDrivers(&fakeNet{}, &fakeIPAM{})
	var lengths []string
	var mu sync.Mutex
	go func() {
		// The first connection: read the call, then vanish.
		c, err := l.Accept()
		if err != nil {
			return
		}
		req, err := http.ReadRequest(bufio.NewReader(c))
		if err == nil {
			body, _ := io.ReadAll(req.Body)
			mu.Lock()
			lengths = append(lengths, fmt.Sprint(len(body)))
			mu.Unlock()
		}
		c.Close()
		// Then a fresh podnetd serves the socket.
		h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			lengths = append(lengths, fmt.Sprint(r.ContentLength))
			mu.Unlock()
			s.Handler().ServeHTTP(w, r)
		})
		_ = (&http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}).Serve(l)
	}()
	cli, err := plugins.NewClient("unix://"+sock, nil)
	if err != nil {
		t.Fatal(err)
	}
	// libnetwork's ipams/remote response: Error set means the call failed.
	var resp struct{ Address, Error string }
	err = cli.Call("IpamDriver.RequestAddress", &ipam.RequestAddressRequest{PoolID: "10.1.0.0/16"}, &resp)
	if err != nil {
		t.Fatalf("call: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(lengths) != 2 || lengths[0] == "0" || lengths[1] != "0" {
		t.Fatalf("body lengths seen by the two servers: %v, want the full call then 0", lengths)
	}
	// dockerd decodes {"Error": ...} from a 200 and fails the call with it.
	if !strings.Contains(resp.Error, "podnetd stopped") || strings.Contains(resp.Error, "malformed") {
		t.Fatalf("retry answered %+v", resp)
	}
}

// TestUnfinishedBodiesDoNotHoldConnections: 2000 clients that send
// headers and half a body are answered (408) and disconnected once the
// body deadline passes, instead of holding a connection each forever.
func TestUnfinishedBodiesDoNotHoldConnections(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "podnet.sock")
	l, err := Listen(sock)
	if err != nil {
		t.Fatal(err)
	}
	s := New(Options{Logger: quiet(), BodyTimeout: 300 * time.Millisecond})
	s.SetDrivers(&fakeNet{}, &fakeIPAM{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = s.Serve(ctx, l) }()

	const n = 2000
	var closed, timedOut atomic.Int32
	var wg sync.WaitGroup
	start := time.Now()
	for i := range n {
		wg.Go(func() {
			c, err := net.Dial("unix", sock)
			if err != nil {
				t.Errorf("dial %d: %v", i, err)
				return
			}
			defer c.Close()
			path := []string{"/NetworkDriver.CreateEndpoint", "/NetworkDriver.GetCapabilities"}[i%2]
			fmt.Fprintf(c, "POST %s HTTP/1.1\r\nHost: podnet\r\nContent-Length: 100\r\n\r\n{\"NetworkID\":", path)
			_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
			b, err := io.ReadAll(c)
			if errors.Is(err, io.EOF) || err == nil {
				closed.Add(1)
				if strings.HasPrefix(string(b), "HTTP/1.1 408") {
					timedOut.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if closed.Load() != n || timedOut.Load() != n {
		t.Fatalf("of %d half-sent requests, %d were disconnected and %d answered 408 (want all) in %v",
			n, closed.Load(), timedOut.Load(), time.Since(start))
	}
	t.Logf("%d half-sent requests answered and disconnected in %v", n, time.Since(start).Round(time.Millisecond))
}
