package proxy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Health-check NodePorts (kube-proxy's healthCheckNodePort): every
// externalTrafficPolicy Local service has a port, the same on every host,
// where each host answers HTTP for it: 200 with the number of the
// service's endpoints on this host, 503 when it has none (or this host's
// service rules are not current). An outside load balancer sending to the
// NodePorts checks it and sends only to hosts with endpoints, which Local
// traffic needs (a host without one drops it).

// hcWant is what one health-check port answers for.
type hcWant struct {
	service string
	local   int
}

// hcReply is kube-proxy's answer.
type hcReply struct {
	Service struct {
		Namespace string `json:"namespace"`
		Name      string `json:"name"`
	} `json:"service"`
	LocalEndpoints      int  `json:"localEndpoints"`
	ServiceProxyHealthy bool `json:"serviceProxyHealthy"`
}

// healthChecks runs one HTTP server per health-check port.
type healthChecks struct {
	host    string // listen host: "" = every address of the host
	healthy func() bool
	log     *slog.Logger

	mu      sync.Mutex
	servers map[uint16]*hcServer
}

type hcServer struct {
	port  uint16
	want  atomic.Pointer[hcWant]
	srv   *http.Server
	close func()
}

func newHealthChecks(host string, healthy func() bool, log *slog.Logger) *healthChecks {
	return &healthChecks{host: host, healthy: healthy, log: log, servers: map[uint16]*hcServer{}}
}

// sync makes the servers answer want (by port): new ports are listened
// on, gone ones closed, the others get their new endpoint count. It
// returns, by service, the ports that could not be listened on.
func (h *healthChecks) sync(want map[uint16]hcWant) map[string]error {
	h.mu.Lock()
	defer h.mu.Unlock()
	for port, s := range h.servers {
		if _, ok := want[port]; !ok {
			s.close()
			delete(h.servers, port)
		}
	}
	failed := map[string]error{}
	for port, w := range want {
		s := h.servers[port]
		if s == nil {
			var err error
			if s, err = h.listen(port); err != nil {
				failed[w.service] = err
				continue
			}
			h.servers[port] = s
		}
		s.want.Store(&w)
	}
	return failed
}

// listen starts the server of port.
func (h *healthChecks) listen(port uint16) (*hcServer, error) {
	addr := net.JoinHostPort(h.host, strconv.Itoa(int(port)))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("health-check NodePort %d: %w", port, err)
	}
	s := &hcServer{port: port}
	s.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { h.answer(s, w) }),
		ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 5 * time.Second, WriteTimeout: 5 * time.Second,
		MaxHeaderBytes: 8 << 10}
	go func() {
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			h.log.Warn("health-check NodePort stopped serving", "port", port, "err", err)
		}
	}()
	s.close = func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = s.srv.Shutdown(ctx)
	}
	h.log.Debug("health-check NodePort open", "port", port)
	return s, nil
}

func (h *healthChecks) answer(s *hcServer, w http.ResponseWriter) {
	want := s.want.Load()
	var r hcReply
	if want != nil {
		r.Service.Name, r.LocalEndpoints = want.service, want.local
	}
	r.ServiceProxyHealthy = h.healthy()
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	if r.LocalEndpoints == 0 || !r.ServiceProxyHealthy {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	_ = json.NewEncoder(w).Encode(r)
}

// closeAll stops every server.
func (h *healthChecks) closeAll() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for port, s := range h.servers {
		s.close()
		delete(h.servers, port)
	}
}
