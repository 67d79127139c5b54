package proxy

import (
	"time"

	"github.com/podnet/podnet/internal/metrics"
)

// Kinds of rounds, as labelled in podnet_proxy_*.
const (
	roundFull        = "full"
	roundIncremental = "incremental"
)

// observeRound counts a round and, when it succeeded, how long it took
// and when.
func observeRound(kind string, start time.Time, err error) {
	metrics.ProxySyncs.WithLabelValues(kind, metrics.Outcome(err)).Inc()
	if err != nil {
		return
	}
	metrics.Since(metrics.ProxySyncDuration.WithLabelValues(kind), start)
	metrics.ProxyLastSync.Set(float64(time.Now().UnixNano()) / 1e9)
}

// observeProgramming records one change's time from its etcd write to
// its rules being live.
func observeProgramming(d time.Duration) { metrics.ProxyProgrammingDuration.Observe(d.Seconds()) }

func setServiceGauges(programmed, failing int) {
	metrics.ProxyServices.Set(float64(programmed))
	metrics.ProxyServicesFailing.Set(float64(failing))
}
