package plugin

import (
	"time"

	"github.com/podnet/podnet/internal/metrics"
)

// observe records one answered request. method is a registered path (the
// mux routes nothing else here), so the label stays bounded.
func observe(method, outcome string, start time.Time) {
	metrics.PluginRequests.WithLabelValues(method, outcome).Inc()
	metrics.Since(metrics.PluginRequestDuration.WithLabelValues(method), start)
}
