package store

import (
	"fmt"
	"log/slog"
	"net/url"
	"path/filepath"

	"github.com/podnet/podnet/internal/fsutil"
	"go.etcd.io/etcd/server/v3/embed"
)

// EmbeddedSocket is the file name of the embedded member's client socket
// in the data directory.
const EmbeddedSocket = "etcd.sock"

// DefaultEmbeddedPeerURL is where the embedded member listens for peers
// (loopback, TLS with client certificates).
const DefaultEmbeddedPeerURL = "https://127.0.0.1:23800"

// maxSocketPath is what fits in sockaddr_un.sun_path on Linux.
const maxSocketPath = 107

// privateDir makes dir private (fsutil.PrivateDir): the embedded
// member's socket, data and keys live in it, and a directory others may
// enter would open the socket to them.
func privateDir(dir string, log *slog.Logger) error {
	was, err := fsutil.PrivateDir(dir)
	if err != nil {
		return fmt.Errorf("embedded etcd: %w", err)
	}
	if was != 0o700 {
		log.Warn("state directory was open to other users; made it 0700", "dir", dir, "was", was)
	}
	return nil
}

// secureEmbedded checks the client URL and sets up the peer listener's
// TLS. Insecure choices (a TCP client URL, an http peer URL) work, for
// operators who ask for them, but are logged as what they are.
func secureEmbedded(ec *embed.Config, cu, pu *url.URL, cfg EmbeddedConfig) error {
	switch cu.Scheme {
	case "unix":
		if p := cu.Host + cu.Path; len(p) > maxSocketPath {
			return fmt.Errorf("embedded etcd socket %s is longer than %d bytes: use a shorter --data-dir", p, maxSocketPath)
		}
	default:
		cfg.Logger.Warn("INSECURE: the embedded etcd serves clients on TCP without authentication: any local user can read and rewrite podnet's state (addresses, routes). Leave --embedded-etcd-client-url unset to use a root-only unix socket",
			"client", cu.String())
	}
	if pu.Scheme != "https" {
		cfg.Logger.Warn("INSECURE: the embedded etcd peer listener has no TLS: any local user can send it raft messages. Leave --embedded-etcd-peer-url unset (https with client certificates)",
			"peer", pu.String())
		return nil
	}
	info, err := peerTLS(filepath.Join(cfg.DataDir, "pki"), pu.Hostname())
	if err != nil {
		return err
	}
	ec.PeerTLSInfo = info
	return nil
}
