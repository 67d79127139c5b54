package dockerwatch

import (
	"time"

	"github.com/docker/docker/api/types/events"
	"github.com/podnet/podnet/internal/metrics"
)

// observeLag records how long after Docker emitted m (the oldest event of
// a batch) the metadata it changed was written; a batch that failed is
// not up to date, so nothing is observed (its resync will be counted).
func observeLag(m events.Message, err error) {
	if err != nil || m.TimeNano == 0 {
		return
	}
	metrics.DockerWatcherLag.Observe(max(time.Since(time.Unix(0, m.TimeNano)), 0).Seconds())
}
