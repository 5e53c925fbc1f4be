package s3

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ecomstream/ecomstream/services/common/metrics"
)

// Operations of the errors counter: S3 requests by kind, and the notification stream.
const (
	opList   = "list"
	opGet    = "get"
	opCopy   = "copy"
	opDelete = "delete"
	opPut    = "put"
	opNotify = "notify"
)

// Metrics are the bucket source's (names in docs/metrics.md; the backlog gauges are the
// queue's, the same for every source).
type Metrics struct {
	listSeconds prometheus.Histogram
	listed      prometheus.Gauge
	lag         prometheus.Histogram
	errors      *prometheus.CounterVec
	// turnsLeft counts periodic listings left to another replica (Options.Turn).
	turnsLeft prometheus.Counter
}

// NewMetrics registers the source's metrics on reg (nil: unregistered), every error
// operation present from the start so dashboards show zeros rather than gaps.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	const ns, sub = metrics.Namespace, "ingester"
	m := &Metrics{
		listSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: ns, Subsystem: sub,
			Name: "source_list_duration_seconds", Help: "Duration of one full listing of the source.",
			Buckets: metrics.LatencyBuckets, NativeHistogramBucketFactor: metrics.NativeBucketFactor}),
		listed: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub,
			Name: "source_listed_items", Help: "Input items found by the last full listing (not yet finished by this instance)."}),
		lag: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: ns, Subsystem: sub,
			Name: "notification_lag_seconds", Help: "Receipt of a bucket notification minus the event time it carries (whole seconds at some servers).",
			Buckets: metrics.LatencyBuckets, NativeHistogramBucketFactor: metrics.NativeBucketFactor}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "source_errors_total", Help: "Failed requests to the source (each retried), by operation."}, []string{"operation"}),
		turnsLeft: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "source_listings_left_total", Help: "Periodic listings not made because another replica of the same source began one within the interval."}),
	}
	for _, op := range []string{opList, opGet, opCopy, opDelete, opPut, opNotify} {
		m.errors.WithLabelValues(op)
	}
	if reg != nil {
		reg.MustRegister(m.listSeconds, m.listed, m.lag, m.errors, m.turnsLeft)
	}
	return m
}
