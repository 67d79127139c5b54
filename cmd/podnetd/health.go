package main

import (
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/podnet/podnet/feed"
	"github.com/podnet/podnet/proxy"
)

// health answers /healthz on the metrics address (kube-proxy's healthz):
// unhealthy while the service proxy's rules are not current (never
// programmed since start, changes waiting longer than the bound, no round
// in the resync interval plus the bound) or while a prefix of the etcd
// view heard nothing from etcd for longer than the bound (the view then
// keeps serving its last state).
type health struct {
	feeds *feed.Hub
	bound time.Duration
	agent atomic.Pointer[proxy.Agent]
}

// maxStaleNamed bounds the stale prefixes /healthz names.
const maxStaleNamed = 8

func (h *health) problems() []string {
	var out []string
	if a := h.agent.Load(); a == nil {
		out = append(out, "the service proxy has not started")
	} else if err := a.Health(); err != nil {
		out = append(out, err.Error())
	}
	if stale := h.feeds.Stale(h.bound); len(stale) > 0 {
		more := ""
		if len(stale) > maxStaleNamed { // one prefix per name the DNS was asked for
			stale, more = stale[:maxStaleNamed], fmt.Sprintf(" and %d more", len(stale)-maxStaleNamed)
		}
		out = append(out, fmt.Sprintf("the etcd view is stale: no word from etcd for over %v on %s%s", h.bound, strings.Join(stale, ", "), more))
	}
	return out
}
