package metrics

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"net/netip"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// DefaultAddr is where podnetd serves metrics unless --metrics-addr says
// otherwise: this host's loopback only.
const DefaultAddr = "127.0.0.1:9477"

// Off disables the metrics listener.
const Off = "off"

// Path is where the metrics are served.
const Path = "/metrics"

// retryListen is how often Serve tries again to listen when the address
// is taken (a variable for tests).
var retryListen = 10 * time.Second

// CheckAddr validates a --metrics-addr value other than Off: host:port
// with a port of 1..65535 and a host that is an IP address, "localhost" or
// empty (every address). It reports whether only loopback can reach it.
func CheckAddr(addr string) (loopback bool, err error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return false, fmt.Errorf("--metrics-addr %q: want host:port (e.g. %s) or %s", addr, DefaultAddr, Off)
	}
	if p, err := strconv.ParseUint(port, 10, 16); err != nil || p == 0 {
		return false, fmt.Errorf("--metrics-addr %q: port %q is not a number from 1 to 65535", addr, port)
	}
	switch host {
	case "":
		return false, nil
	case "localhost":
		return true, nil
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return false, fmt.Errorf("--metrics-addr %q: %q is not an IP address (give an address of this host, or localhost)", addr, host)
	}
	return ip.IsLoopback(), nil
}

// HealthPath is where Handler answers health checks.
const HealthPath = "/healthz"

// HealthCheck lists what makes podnetd unhealthy now (none: healthy).
type HealthCheck func() []string

// healthReply is the body of HealthPath.
type healthReply struct {
	Healthy  bool      `json:"healthy"`
	Problems []string  `json:"problems,omitempty"`
	Time     time.Time `json:"time"`
}

// ProfilePath is where Handler serves Go's profiles when asked to.
const ProfilePath = "/debug/pprof/"

// Handler serves reg in Prometheus's text format (a collector that fails
// is logged and the rest is served) and, when health is set, HealthPath:
// 200 when it finds no problem, 503 with the problems otherwise, as JSON.
// With profiling it also serves net/http/pprof under ProfilePath, as
// kube-proxy does with enableProfiling: off by default, because a CPU
// profile costs CPU and a heap profile shows the data podnetd holds.
func Handler(reg *prometheus.Registry, log *slog.Logger, health HealthCheck, profiling bool) http.Handler {
	mux := http.NewServeMux()
	if profiling {
		mux.HandleFunc(ProfilePath, pprof.Index)
		mux.HandleFunc(ProfilePath+"cmdline", pprof.Cmdline)
		mux.HandleFunc(ProfilePath+"profile", pprof.Profile)
		mux.HandleFunc(ProfilePath+"symbol", pprof.Symbol)
		mux.HandleFunc(ProfilePath+"trace", pprof.Trace)
	}
	if health != nil {
		mux.HandleFunc(HealthPath, func(w http.ResponseWriter, _ *http.Request) {
			problems := health()
			w.Header().Set("Content-Type", "application/json")
			if len(problems) > 0 {
				w.WriteHeader(http.StatusServiceUnavailable)
			}
			_ = json.NewEncoder(w).Encode(healthReply{Healthy: len(problems) == 0, Problems: problems, Time: time.Now().UTC()})
		})
	}
	mux.Handle(Path, promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		ErrorLog:            slogPrinter{log},
		ErrorHandling:       promhttp.ContinueOnError,
		MaxRequestsInFlight: 4,
		Timeout:             20 * time.Second,
	}))
	return mux
}

// Serve serves h on addr until ctx ends. When the address cannot be
// bound (another process holds the port) it logs the error and tries
// again every 10 s: podnetd keeps running without metrics meanwhile.
func Serve(ctx context.Context, addr string, h http.Handler, log *slog.Logger) {
	var lc net.ListenConfig
	failing := false
	for {
		wait := time.Second
		if ln, err := lc.Listen(ctx, "tcp", addr); err != nil {
			if !failing && ctx.Err() == nil {
				log.Error("cannot serve metrics; retrying every 10s (use --metrics-addr to pick another address, or off)",
					"addr", addr, "err", err)
			}
			failing, wait = true, retryListen
		} else {
			log.Info("serving metrics", "url", "http://"+ln.Addr().String()+Path, "after_failures", failing)
			failing = false
			if err := serveOn(ctx, ln, h); err != nil {
				log.Error("metrics listener failed; restarting it", "addr", addr, "err", err)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

// serveOn serves h on ln until ctx ends (nil) or the server fails.
func serveOn(ctx context.Context, ln net.Listener, h http.Handler) error {
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       time.Minute,
		MaxHeaderBytes:    8 << 10,
	}
	stop := context.AfterFunc(ctx, func() {
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	})
	defer stop()
	err := srv.Serve(ln)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// slogPrinter lets promhttp log through slog.
type slogPrinter struct{ log *slog.Logger }

func (p slogPrinter) Println(v ...any) { p.log.Warn("metrics: " + fmt.Sprint(v...)) }
