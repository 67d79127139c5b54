// Package metricstest reads podnet's series in tests of the instrumented
// packages: they compare a value before and after the code under test ran,
// since the collectors are process-wide.
package metricstest

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
)

// Value is the value of a counter or gauge (one child of a vector, or a
// plain one).
func Value(c prometheus.Collector) float64 { return testutil.ToFloat64(c) }

// SampleCount is how many observations a histogram (one child of a
// HistogramVec, or a plain Histogram) has seen.
func SampleCount(o prometheus.Observer) uint64 { return histogram(o).GetSampleCount() }

// SampleSum is the sum of a histogram's observations.
func SampleSum(o prometheus.Observer) float64 { return histogram(o).GetSampleSum() }

func histogram(o prometheus.Observer) *dto.Histogram {
	m, ok := o.(prometheus.Metric)
	if !ok {
		return nil
	}
	var d dto.Metric
	if err := m.Write(&d); err != nil {
		return nil
	}
	return d.GetHistogram()
}
