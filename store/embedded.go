package store

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
)

// EmbeddedConfig configures the single-member etcd podnetd runs when no
// external endpoints are given.
type EmbeddedConfig struct {
	// DataDir holds the member's data (made 0700).
	DataDir string
	// ClientURL is where the member serves clients: by default the unix
	// socket DataDir/etcd.sock, which only root can reach (the directory
	// is 0700). PeerURL is its peer listener, by default
	// https://127.0.0.1:23800 with client-certificate authentication
	// against a CA made in DataDir/pki (embedded_tls.go). A TCP ClientURL
	// or an http PeerURL lets any local user rewrite podnet's state, and
	// is logged as such.
	ClientURL, PeerURL string
	// Name of the member (default "podnet").
	Name   string
	Logger *slog.Logger
}

// Embedded is a running single-member etcd.
type Embedded struct {
	e   *embed.Etcd
	url string
}

// StartEmbedded starts the member and waits until it serves clients.
func StartEmbedded(ctx context.Context, cfg EmbeddedConfig) (*Embedded, error) {
	if cfg.Name == "" {
		cfg.Name = "podnet"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if err := privateDir(cfg.DataDir, cfg.Logger); err != nil {
		return nil, err
	}
	if cfg.ClientURL == "" {
		cfg.ClientURL = "unix://" + filepath.Join(cfg.DataDir, EmbeddedSocket)
	}
	if cfg.PeerURL == "" {
		cfg.PeerURL = DefaultEmbeddedPeerURL
	}
	cu, err := url.Parse(cfg.ClientURL)
	if err != nil {
		return nil, fmt.Errorf("embedded etcd client URL %q: %w", cfg.ClientURL, err)
	}
	pu, err := url.Parse(cfg.PeerURL)
	if err != nil {
		return nil, fmt.Errorf("embedded etcd peer URL %q: %w", cfg.PeerURL, err)
	}
	ec := embed.NewConfig()
	ec.Name = cfg.Name
	ec.Dir = filepath.Join(cfg.DataDir, "etcd")
	ec.ListenClientUrls = []url.URL{*cu}
	ec.AdvertiseClientUrls = []url.URL{*cu}
	if cu.Scheme == "unix" {
		// etcd wants host:port here; nobody dials what a single
		// member advertises for clients.
		ec.AdvertiseClientUrls = []url.URL{{Scheme: "unix", Host: "localhost:0"}}
	}
	ec.ListenPeerUrls = []url.URL{*pu}
	ec.AdvertisePeerUrls = []url.URL{*pu}
	ec.InitialCluster = fmt.Sprintf("%s=%s", cfg.Name, pu.String())
	if err := secureEmbedded(ec, cu, pu, cfg); err != nil {
		return nil, err
	}
	ec.ZapLoggerBuilder = embed.NewZapLoggerBuilder(newZapLogger(cfg.Logger))
	// NewConfig leaves this zero, which makes etcd log every request as slow.
	ec.WarningUnaryRequestDuration = embed.DefaultWarningUnaryRequestDuration
	// Keep the history short: podnet watches resume from recent revisions
	// and relist on compaction.
	ec.AutoCompactionMode = "revision"
	ec.AutoCompactionRetention = "10000"
	e, err := embed.StartEtcd(ec)
	if err != nil {
		return nil, fmt.Errorf("start embedded etcd in %s on %s: %w", ec.Dir, cfg.ClientURL, err)
	}
	select {
	case <-e.Server.ReadyNotify():
	case err := <-e.Err():
		e.Close()
		return nil, fmt.Errorf("embedded etcd on %s: %w", cfg.ClientURL, err)
	case <-time.After(60 * time.Second):
		e.Close()
		return nil, fmt.Errorf("embedded etcd in %s did not become ready within 60s", ec.Dir)
	case <-ctx.Done():
		e.Close()
		return nil, ctx.Err()
	}
	if cu.Scheme == "unix" {
		// etcd makes the socket as the umask says; the 0700 directory
		// already keeps others out, this says so on the socket too.
		_ = os.Chmod(cu.Host+cu.Path, 0o600)
	}
	cfg.Logger.Info("embedded etcd ready", "dir", ec.Dir, "client", cfg.ClientURL, "peer", cfg.PeerURL)
	return &Embedded{e: e, url: cu.String()}, nil
}

// Endpoints returns the client URLs of the member.
func (m *Embedded) Endpoints() []string { return []string{m.url} }

// Close stops the member.
func (m *Embedded) Close() { m.e.Close() }
