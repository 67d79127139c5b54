package store_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/podnet/podnet/internal/testutil"
	"github.com/podnet/podnet/store"
	"github.com/podnet/podnet/store/storetest"
)

// startEmbedded starts a member with podnetd's defaults (unix socket,
// TLS peer port) in dir.
func startEmbedded(t *testing.T, dir, peerURL string) *store.Embedded {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	emb, err := store.StartEmbedded(ctx, store.EmbeddedConfig{DataDir: dir, PeerURL: peerURL, Logger: storetest.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	return emb
}

// TestEmbeddedEtcdIsRootOnly: the default embedded member serves clients
// only on a unix socket in a 0700 directory, so a non-root etcdctl gets
// nothing, and its peer port answers only holders of its own client
// certificate. An existing member with a plain-HTTP peer URL (an older
// podnetd's) restarts into this setup.
func TestEmbeddedEtcdIsRootOnly(t *testing.T) {
	// A short directory: the socket path must fit 107 bytes.
	dir, err := os.MkdirTemp("", "pnemb")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	peer := fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t))

	// As an older podnetd ran it: plain HTTP peer port.
	old := startEmbedded(t, dir, "http://"+peer)
	old.Close()

	emb := startEmbedded(t, dir, "")
	defer emb.Close()
	sock := filepath.Join(dir, store.EmbeddedSocket)
	if eps := emb.Endpoints(); len(eps) != 1 || eps[0] != "unix://"+sock {
		t.Fatalf("endpoints %v, want the unix socket %s", eps, sock)
	}
	for path, want := range map[string]os.FileMode{dir: 0o700, sock: 0o600} {
		if st, err := os.Stat(path); err != nil || st.Mode().Perm() != want {
			t.Fatalf("%s: mode %v, %v; want %v", path, st.Mode().Perm(), err, want)
		}
	}
	s, err := store.Open(store.Config{Endpoints: emb.Endpoints(), Logger: storetest.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	if err := s.Put(ctx, "ipam/x", map[string]int{"n": 1}); err != nil {
		t.Fatalf("root client on the socket: %v", err)
	}

	// The peer port: no certificate, no conversation.
	cli := &http.Client{Timeout: 3 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	if resp, err := cli.Get("https://" + peer + "/members"); err == nil {
		resp.Body.Close()
		t.Fatalf("peer port answered %s without a client certificate", resp.Status)
	}
	if resp, err := (&http.Client{Timeout: 3 * time.Second}).Get("http://" + peer + "/members"); err == nil && resp.StatusCode == http.StatusOK {
		resp.Body.Close()
		t.Fatal("peer port answered plain HTTP")
	}

	// A non-root user (the reproduction).
	if os.Geteuid() != 0 {
		t.Skip("the non-root part needs root (setpriv)")
	}
	for _, tool := range []string{"setpriv", "etcdctl"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed (scripts/deps.sh)", tool)
		}
	}
	out, err := exec.Command("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "etcdctl",
		"--endpoints", "unix://"+sock, "--dial-timeout", "2s", "--command-timeout", "3s",
		"del", "--prefix", store.DefaultPrefix).CombinedOutput()
	if err == nil {
		t.Fatalf("a non-root etcdctl deleted podnet's keys: %s", out)
	}
	if !strings.Contains(string(out), "permission denied") {
		t.Logf("non-root etcdctl refused with: %s", out)
	}
	if _, err := s.Get(ctx, "ipam/x", nil); err != nil {
		t.Fatalf("the key is gone: %v", err)
	}
}
