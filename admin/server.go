package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/podnet/podnet/internal/fault"
	"github.com/podnet/podnet/internal/httpbody"
)

// Handler answers one admin call. The server has read r.Body already
// (bounded in size and time) and handed it back as an in-memory reader,
// so a handler decodes it without deadlines of its own.
type Handler func(ctx context.Context, r *http.Request) (any, error)

// Routes maps "METHOD /path" to handlers, e.g. "GET /v1/networks".
type Routes map[string]Handler

// bodyTimeout bounds how long a request body may take to arrive, and
// maxBody its size: service files for apply -f are the largest, and
// travel base64-encoded in JSON (4/3 of the file, plus the envelope).
var (
	bodyTimeout       = 10 * time.Second
	maxBody     int64 = MaxServiceFile*4/3 + 64<<10
)

// Serve listens on path (mode 0600) and serves routes until ctx ends.
func Serve(ctx context.Context, path string, routes Routes, log *slog.Logger) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("admin socket directory: %w", err)
	}
	if c, err := net.DialTimeout("unix", path, 300*time.Millisecond); err == nil {
		c.Close()
		return fmt.Errorf("another podnetd already serves the admin socket %s", path)
	}
	_ = os.Remove(path)
	l, err := net.Listen("unix", path)
	if err != nil {
		return fmt.Errorf("listen on admin socket %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		l.Close()
		return fmt.Errorf("chmod admin socket %s: %w", path, err)
	}
	mux := http.NewServeMux()
	for pattern, h := range routes {
		mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			body, err := httpbody.Read(w, r, bodyTimeout, maxBody)
			if err != nil {
				status := http.StatusBadRequest
				switch {
				case errors.Is(err, httpbody.ErrTimeout):
					status = http.StatusRequestTimeout
				case errors.Is(err, httpbody.ErrTooLarge):
					status = http.StatusRequestEntityTooLarge
				}
				log.Warn("admin request failed", "path", r.URL.Path, "err", err)
				w.WriteHeader(status)
				_ = json.NewEncoder(w).Encode(map[string]string{"error": err.Error()})
				return
			}
			r.Body = io.NopCloser(bytes.NewReader(body))
			ctx, cancel := context.WithTimeout(r.Context(), 60*time.Second)
			defer cancel()
			v, err := h(ctx, r)
			if err != nil {
				status := http.StatusInternalServerError
				if errors.Is(err, fault.ErrInvalid) {
					status = http.StatusBadRequest // the caller's fault (package fault)
				}
				log.Warn("admin request failed", "path", r.URL.Path, "err", err)
				w.WriteHeader(status)
				_ = json.NewEncoder(w).Encode(map[string]string{"error": err.Error()})
				return
			}
			_ = json.NewEncoder(w).Encode(v)
		})
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
		_ = os.Remove(path)
	}()
	if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
