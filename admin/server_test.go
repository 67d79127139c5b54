package admin

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/podnet/podnet/internal/testutil"
)

// A client that never finishes its request body is answered 408 and
// disconnected once the body deadline passes; the handler never runs, and
// other requests are served meanwhile.
func TestUnfinishedBodyIsCutOff(t *testing.T) {
	old := bodyTimeout
	bodyTimeout = 300 * time.Millisecond
	t.Cleanup(func() { bodyTimeout = old })
	sock := filepath.Join(t.TempDir(), "a.sock")
	called := make(chan struct{}, 1)
	routes := Routes{
		"POST /v1/x": func(context.Context, *http.Request) (any, error) { called <- struct{}{}; return "ok", nil },
		"GET /v1/y":  func(context.Context, *http.Request) (any, error) { return "y", nil },
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- Serve(ctx, sock, routes, slog.New(slog.DiscardHandler)) }()
	t.Cleanup(func() { cancel(); <-served })
	var c net.Conn
	testutil.Eventually(t, 5*time.Second, "the admin socket accepting", func() (err error) {
		c, err = net.Dial("unix", sock)
		return err
	})
	defer c.Close()
	fmt.Fprintf(c, "POST /v1/x HTTP/1.1\r\nHost: podnetd\r\nContent-Length: 100\r\n\r\n{\"half\":")
	var y string
	if err := NewClient(sock).Get(context.Background(), "/v1/y", &y); err != nil || y != "y" {
		t.Fatalf("another request while a body is pending: %q %v", y, err)
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("the connection was not closed after the body deadline: %v (read %q)", err, resp)
	}
	if !strings.HasPrefix(string(resp), "HTTP/1.1 408") {
		t.Fatalf("answer to an unfinished body: %q, want 408", resp)
	}
	select {
	case <-called:
		t.Fatal("the handler ran on a half-sent body")
	default:
	}
}

// A body over the limit is refused whole, 413 with its size in the
// message, whether it announces its length or comes chunked; the handler
// never runs on a cut-off body.
func TestOversizeBodyRefused(t *testing.T) {
	old := maxBody
	maxBody = 1000
	t.Cleanup(func() { maxBody = old })
	sock := filepath.Join(t.TempDir(), "a.sock")
	called := make(chan struct{}, 4)
	routes := Routes{"POST /v1/x": func(context.Context, *http.Request) (any, error) { called <- struct{}{}; return "ok", nil }}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- Serve(ctx, sock, routes, slog.New(slog.DiscardHandler)) }()
	t.Cleanup(func() { cancel(); <-served })
	cl := NewClient(sock)
	testutil.Eventually(t, 5*time.Second, "the admin socket accepting", func() error {
		var s string
		return cl.Post(context.Background(), "/v1/x", "small", &s)
	})
	<-called
	err := cl.Post(context.Background(), "/v1/x", strings.Repeat("x", 2000), nil)
	if err == nil || !strings.Contains(err.Error(), "request body too large") {
		t.Fatalf("a 2000-byte body against a 1000-byte limit: %v", err)
	}
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", sock)
	}}}
	// No Content-Length: chunked.
	resp, err := hc.Post("http://podnetd/v1/x", "application/json", io.MultiReader(strings.NewReader(`"`), strings.NewReader(strings.Repeat("x", 2000)+`"`)))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(string(body), "too large") {
		t.Fatalf("chunked oversize body: %d %s", resp.StatusCode, body)
	}
	select {
	case <-called:
		t.Fatal("the handler ran on an oversize body")
	default:
	}
}
