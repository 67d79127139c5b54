package main

import (
	"log/slog"
	"os"
	"runtime/debug"
)

// gcPercent is podnetd's GOGC unless the environment sets one.
//
// Nearly all of podnetd's heap is long-lived views that grow with the
// cluster (the overlay's hosts and blocks, the service catalog, the
// feeds' copies of what they follow), and it allocates little once they
// are loaded: an idle agent, or one seeing a few changes a second. Go's
// default (100) lets the heap reach twice the live data before it
// collects, and most of that headroom is garbage from the initial
// listings that stays resident. At 50 the heap stays within 1.5 times the
// live data: at 5000 hosts with 1000 services the resident size drops
// by about a sixth (docs/scale.md) while the collector's extra work is
// spread over changes that are rare. GOGC in podnetd's environment
// (systemd's Environment=) overrides it, and GOMEMLIMIT works as Go
// documents.
const gcPercent = 50

// tuneGC applies gcPercent unless GOGC is set (empty counts as unset, as
// it does for Go's runtime).
func tuneGC(log *slog.Logger) {
	if v := os.Getenv("GOGC"); v != "" {
		log.Info("garbage collector tuned by the environment", "GOGC", v)
		return
	}
	debug.SetGCPercent(gcPercent)
}
