package producer

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ecomstream/ecomstream/services/common/metrics"
	"github.com/ecomstream/ecomstream/services/generator/internal/rows"
)

const subsystem = "generator"

// Metrics are the generator's own series (docs/metrics.md).
type Metrics struct {
	Files         prometheus.Counter
	Records       *prometheus.CounterVec
	Bytes         prometheus.Counter
	WriteDuration prometheus.Histogram
	Behind        prometheus.Gauge
}

// NewMetrics registers the generator's metrics on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Files: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: metrics.Namespace, Subsystem: subsystem, Name: "files_total",
			Help: "Files placed whole (renamed into the output directory, or one PUT to the bucket).",
		}),
		Records: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: metrics.Namespace, Subsystem: subsystem, Name: "records_total",
			Help: "Rows of placed files, by what the generator meant them to be.",
		}, []string{"kind"}),
		Bytes: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: metrics.Namespace, Subsystem: subsystem, Name: "bytes_total",
			Help: "Bytes of placed files.",
		}),
		WriteDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: metrics.Namespace, Subsystem: subsystem, Name: "file_write_duration_seconds",
			Help: "Time to generate, write, sync and rename one file.",
			// From 100 µs (a small file on tmpfs) to seconds (a huge file, a slow disk).
			Buckets:                     prometheus.ExponentialBuckets(0.0001, 2.5, 12),
			NativeHistogramBucketFactor: metrics.NativeBucketFactor,
		}),
		Behind: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: metrics.Namespace, Subsystem: subsystem, Name: "behind_schedule_seconds",
			Help: "How far the generator lags its --sleep pace (0 when keeping up).",
		}),
	}
	reg.MustRegister(m.Files, m.Records, m.Bytes, m.WriteDuration, m.Behind)
	for _, k := range []rows.Kind{rows.Valid, rows.Invalid, rows.Duplicate} {
		m.Records.WithLabelValues(k.String()) // every kind's series exists from the start
	}
	return m
}

func (m *Metrics) placed(c rows.Counts, bytes int64, seconds float64) {
	m.Files.Inc()
	m.Records.WithLabelValues(rows.Valid.String()).Add(float64(c.Valid))
	m.Records.WithLabelValues(rows.Invalid.String()).Add(float64(c.Invalid))
	m.Records.WithLabelValues(rows.Duplicate.String()).Add(float64(c.Duplicate))
	m.Bytes.Add(float64(bytes))
	m.WriteDuration.Observe(seconds)
}
