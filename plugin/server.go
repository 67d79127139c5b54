package plugin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/docker/go-plugins-helpers/ipam"
	"github.com/docker/go-plugins-helpers/network"
	"github.com/podnet/podnet/internal/dockerid"
	"github.com/podnet/podnet/internal/metrics"
)

const (
	manifest    = `{"Implements": ["NetworkDriver", "IpamDriver"]}`
	contentType = "application/vnd.docker.plugins.v1.2+json"
	// maxBody bounds what one request may send; Docker's largest requests
	// (CreateEndpoint with many port bindings) are a few kB.
	maxBody = 4 << 20
)

// Options configures a Server.
type Options struct {
	Logger *slog.Logger
	// RequestTimeout bounds every call (default 20 s).
	RequestTimeout time.Duration
	// ReadyTimeout bounds how long a call waits for podnetd to finish
	// starting (default 20 s).
	ReadyTimeout time.Duration
	// BodyTimeout bounds how long a request's body may take to arrive
	// (default 10 s); dockerd sends its few kB at once.
	BodyTimeout time.Duration
}

// Server is the plugin's HTTP mux.
type Server struct {
	mux     *http.ServeMux
	log     *slog.Logger
	timeout time.Duration
	readyTO time.Duration
	bodyTO  time.Duration
	started time.Time

	mu    sync.RWMutex
	net   NetworkDriver
	ipam  IPAMDriver
	ready chan struct{}
	once  sync.Once
}

// New builds the mux. Drivers are attached later with SetDrivers, so the
// socket can answer the handshake before state is restored.
func New(opts Options) *Server {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.RequestTimeout == 0 {
		opts.RequestTimeout = 20 * time.Second
	}
	if opts.ReadyTimeout == 0 {
		opts.ReadyTimeout = 20 * time.Second
	}
	if opts.BodyTimeout == 0 {
		opts.BodyTimeout = 10 * time.Second
	}
	s := &Server{mux: http.NewServeMux(), log: opts.Logger, timeout: opts.RequestTimeout,
		readyTO: opts.ReadyTimeout, bodyTO: opts.BodyTimeout, started: time.Now(), ready: make(chan struct{})}
	s.routes()
	return s
}

// SetDrivers attaches the drivers and opens the readiness gate.
func (s *Server) SetDrivers(n NetworkDriver, i IPAMDriver) {
	s.mu.Lock()
	s.net, s.ipam = n, i
	s.mu.Unlock()
	s.once.Do(func() { close(s.ready) })
}

// Handler returns the HTTP handler (for tests).
func (s *Server) Handler() http.Handler { return s.mux }

// Listen opens the unix socket at path (mode 0660, parent created 0755),
// replacing a stale socket file left by a killed podnetd.
func Listen(path string) (net.Listener, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("plugin socket directory %s: %w", filepath.Dir(path), err)
	}
	if err := removeStaleSocket(path); err != nil {
		return nil, err
	}
	l, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("listen on plugin socket %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o660); err != nil {
		l.Close()
		return nil, fmt.Errorf("chmod plugin socket %s: %w", path, err)
	}
	return l, nil
}

// removeStaleSocket deletes path if it is a socket nobody answers on; if a
// live podnetd answers there, it refuses to take over.
func removeStaleSocket(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("plugin socket %s: %w", path, err)
	}
	if fi.Mode()&os.ModeSocket == 0 {
		return fmt.Errorf("plugin socket path %s exists and is not a socket; remove it", path)
	}
	if c, err := net.DialTimeout("unix", path, 500*time.Millisecond); err == nil {
		c.Close()
		return fmt.Errorf("another process already serves %s (is podnetd running?)", path)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove stale plugin socket %s: %w", path, err)
	}
	return nil
}

// Serve serves on l until ctx ends.
func (s *Server) Serve(ctx context.Context, l net.Listener) error {
	srv := &http.Server{Handler: s.mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	err := srv.Serve(l)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// drivers waits (bounded) for the readiness gate.
func (s *Server) drivers(ctx context.Context) (NetworkDriver, IPAMDriver, error) {
	t := time.NewTimer(s.readyTO)
	defer t.Stop()
	select {
	case <-s.ready:
	case <-t.C:
		return nil, nil, errors.New("podnetd is still starting (connecting to etcd, restoring state); retry shortly and see podnetd's log")
	case <-ctx.Done():
		return nil, nil, ctx.Err()
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.net, s.ipam, nil
}

// errKey is the JSON key dockerd reads an error from.
type errKey string

const (
	netErr  errKey = "Err"
	ipamErr errKey = "Error"
)

// handle registers one path. newReq returns a fresh request value (nil for
// calls whose body Docker sends empty); call does the work.
func handle[Req any](s *Server, path string, key errKey, decode bool, call func(ctx context.Context, req *Req) (any, error)) {
	s.mux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		req := new(Req)
		// Bodies Docker sends empty are read too, so that a client that
		// never finishes one cannot hold the connection.
		body, err := readBody(w, r, s.bodyTO)
		if !decode && errors.Is(err, errNoBody) {
			err = nil
		}
		if decode && err == nil {
			err = json.Unmarshal(body, req)
		}
		if err != nil {
			s.log.Warn("plugin request", "method", path[1:], "err", err)
			observe(path[1:], metrics.BadRequest, start)
			status, msg := s.bodyError(path[1:], err)
			writeJSON(w, status, map[string]string{string(key): msg})
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), s.timeout)
		defer cancel()
		res, err := call(ctx, req)
		observe(path[1:], metrics.Outcome(err), start)
		nw, ep := ids(req)
		attrs := []any{"method", path[1:], "dur", time.Since(start).Round(time.Microsecond)}
		if nw != "" {
			attrs = append(attrs, "network", dockerid.Short(nw))
		}
		if ep != "" {
			attrs = append(attrs, "endpoint", dockerid.Short(ep))
		}
		if err != nil {
			s.log.Error("plugin request failed", append(attrs, "err", err)...)
			writeJSON(w, http.StatusOK, map[string]string{string(key): "podnet: " + err.Error()})
			return
		}
		s.log.Info("plugin request", attrs...)
		if res == nil {
			res = struct{}{}
		}
		writeJSON(w, http.StatusOK, res)
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", contentType)
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// ids extracts the network and endpoint IDs of a request for logging.
func ids(req any) (string, string) {
	switch r := req.(type) {
	case *network.CreateNetworkRequest:
		return r.NetworkID, ""
	case *network.DeleteNetworkRequest:
		return r.NetworkID, ""
	case *network.CreateEndpointRequest:
		return r.NetworkID, r.EndpointID
	case *network.DeleteEndpointRequest:
		return r.NetworkID, r.EndpointID
	case *network.InfoRequest:
		return r.NetworkID, r.EndpointID
	case *network.JoinRequest:
		return r.NetworkID, r.EndpointID
	case *network.LeaveRequest:
		return r.NetworkID, r.EndpointID
	case *network.ProgramExternalConnectivityRequest:
		return r.NetworkID, r.EndpointID
	case *network.RevokeExternalConnectivityRequest:
		return r.NetworkID, r.EndpointID
	case *ipam.RequestPoolRequest:
		return r.Pool, ""
	case *ipam.ReleasePoolRequest:
		return r.PoolID, ""
	case *ipam.RequestAddressRequest:
		return r.PoolID, r.Address
	case *ipam.ReleaseAddressRequest:
		return r.PoolID, r.Address
	}
	return "", ""
}
