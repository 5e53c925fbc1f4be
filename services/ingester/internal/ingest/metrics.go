package ingest

import (
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ecomstream/ecomstream/services/common/metrics"
	"github.com/ecomstream/ecomstream/services/ingester/internal/load"
	"github.com/ecomstream/ecomstream/services/ingester/internal/queue"
)

// Metrics are the ingester's own; names are documented in docs/metrics.md.
type Metrics struct {
	Records      *prometheus.CounterVec
	Files        *prometheus.CounterVec
	Bytes        prometheus.Counter
	Batches      *prometheus.CounterVec
	BatchSeconds prometheus.Histogram
	BatchRecords prometheus.Histogram
	Latency      prometheus.Histogram
	Errors       *prometheus.CounterVec
	// Aside counts entries moved aside unread (bad name, not a regular file).
	Aside *prometheus.CounterVec
	// Retries counts failed attempts of single files, by stage.
	Retries *prometheus.CounterVec
	// Reaped counts stalled sessions of frozen replicas that this one ended.
	Reaped prometheus.Counter
	// Skipped counts files taken but left to another replica or gone, by outcome.
	Skipped *prometheus.CounterVec
	// Elsewhere counts items forgotten because another replica committed them (elsewhere.go).
	Elsewhere prometheus.Counter
	// WorkerLimit is how many workers may hold a batch at once now (the runner's gate).
	WorkerLimit prometheus.Gauge
}

const subsystem = "ingester"

// NewMetrics registers the ingester's metrics on reg, with every label value present
// from the start so dashboards show zeros rather than gaps.
func NewMetrics(reg prometheus.Registerer, q *queue.Queue, pool *pgxpool.Pool) *Metrics {
	m := &Metrics{
		Records: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: metrics.Namespace, Subsystem: subsystem,
			Name: "records_total", Help: "Rows of committed files, by outcome."}, []string{"outcome"}),
		Files: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: metrics.Namespace, Subsystem: subsystem,
			Name: "files_total", Help: "Files whose outcome this instance committed or found committed, by outcome."}, []string{"outcome"}),
		Bytes: prometheus.NewCounter(prometheus.CounterOpts{Namespace: metrics.Namespace, Subsystem: subsystem,
			Name: "bytes_total", Help: "Bytes of committed files."}),
		Batches: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: metrics.Namespace, Subsystem: subsystem,
			Name: "batches_total", Help: "Transactions, by outcome."}, []string{"outcome"}),
		BatchSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: metrics.Namespace, Subsystem: subsystem,
			Name: "batch_duration_seconds", Help: "Duration of one committed batch transaction, claim to commit.",
			Buckets: metrics.LatencyBuckets, NativeHistogramBucketFactor: metrics.NativeBucketFactor}),
		BatchRecords: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: metrics.Namespace, Subsystem: subsystem,
			Name: "batch_records", Help: "Rows per committed batch.",
			Buckets: prometheus.ExponentialBuckets(10, 2.5, 12)}),
		Latency: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: metrics.Namespace, Subsystem: subsystem,
			Name: "end_to_end_latency_seconds", Help: "Commit time minus the file's modification time, one observation per inserted row.",
			Buckets: metrics.LatencyBuckets, NativeHistogramBucketFactor: metrics.NativeBucketFactor}),
		Errors: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: metrics.Namespace, Subsystem: subsystem,
			Name: "errors_total", Help: "Failures that were retried or moved aside, by stage."}, []string{"stage"}),
		Aside: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: metrics.Namespace, Subsystem: subsystem,
			Name: "files_aside_total", Help: "Entries named like input files moved to the failed directory without being committed, by reason."}, []string{"reason"}),
		Retries: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: metrics.Namespace, Subsystem: subsystem,
			Name: "file_retries_total", Help: "Failed attempts of single files (each retried with backoff), by stage."}, []string{"stage"}),
		Reaped: prometheus.NewCounter(prometheus.CounterOpts{Namespace: metrics.Namespace, Subsystem: subsystem,
			Name: "stalled_sessions_ended_total", Help: "Database sessions of frozen replicas (stalled mid-statement waiting for their client) that this instance ended."}),
		Skipped: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: metrics.Namespace, Subsystem: subsystem,
			Name: "files_skipped_total", Help: "Files taken but not loaded: another replica held them (locked; tried again later) or they were gone (another replica finished them)."}, []string{"outcome"}),
		Elsewhere: prometheus.NewCounter(prometheus.CounterOpts{Namespace: metrics.Namespace, Subsystem: subsystem,
			Name: "files_committed_elsewhere_total", Help: "Files dropped from this instance's queue because the ledger shows another replica committed them (no claim needed)."}),
		WorkerLimit: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: metrics.Namespace, Subsystem: subsystem,
			Name: "workers_limit", Help: "Workers allowed to hold a batch at once: the configured workers, fewer while batches find every load slot taken."}),
	}
	for _, o := range []string{load.OutcomeLocked, load.OutcomeGone} {
		m.Skipped.WithLabelValues(o)
	}
	for _, o := range []string{"inserted", "rejected", "duplicate"} {
		m.Records.WithLabelValues(o)
	}
	for _, o := range []string{"ingested", "failed", "already_committed"} {
		m.Files.WithLabelValues(o)
	}
	for _, o := range []string{"committed", "rolled_back"} {
		m.Batches.WithLabelValues(o)
	}
	for _, s := range []string{"read", "database", "archive"} {
		m.Errors.WithLabelValues(s)
	}
	// The reasons of the directory source's move-asides (source/dir) and the runner's own.
	for _, r := range []string{"bad_file_name", "not_regular_file", "unterminated", "retries_exhausted"} {
		m.Aside.WithLabelValues(r)
	}
	for _, s := range []string{"read", "database", "archive"} {
		m.Retries.WithLabelValues(s)
	}
	parked := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: metrics.Namespace, Subsystem: subsystem,
		Name: "files_parked", Help: "Files that kept failing and could not be moved aside; they wait in the input directory until they change."},
		func() float64 { return float64(q.Parked()) })
	reg.MustRegister(m.Records, m.Files, m.Bytes, m.Batches, m.BatchSeconds, m.BatchRecords, m.Latency, m.Errors, m.Aside, m.Retries, m.Reaped, m.Skipped, m.Elsewhere, m.WorkerLimit, parked)
	reg.MustRegister(&backlogCollector{stats: Backlog(q)}, &poolCollector{pool: pool})
	return m
}

var (
	backlogFiles = prometheus.NewDesc(prometheus.BuildFQName(metrics.Namespace, subsystem, "backlog_files"),
		"Input files not yet committed (including those in flight).", nil, nil)
	backlogBytes = prometheus.NewDesc(prometheus.BuildFQName(metrics.Namespace, subsystem, "backlog_bytes"),
		"Bytes of the input files not yet committed.", nil, nil)
	backlogAge = prometheus.NewDesc(prometheus.BuildFQName(metrics.Namespace, subsystem, "backlog_oldest_age_seconds"),
		"Age (now minus modification time) of the oldest input file not yet committed; 0 when none.", nil, nil)
	dbConns = prometheus.NewDesc(prometheus.BuildFQName(metrics.Namespace, subsystem, "db_connections"),
		"Database pool connections by state (acquired, idle, constructing); the states are parts, their sum is the pool's size.", []string{"state"}, nil)
)

// backlogCollector reads the queue at scrape time.
type backlogCollector struct {
	stats func() (int, int64, float64)
}

func (c *backlogCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- backlogFiles
	ch <- backlogBytes
	ch <- backlogAge
}

func (c *backlogCollector) Collect(ch chan<- prometheus.Metric) {
	files, bytes, age := c.stats()
	ch <- prometheus.MustNewConstMetric(backlogFiles, prometheus.GaugeValue, float64(files))
	ch <- prometheus.MustNewConstMetric(backlogBytes, prometheus.GaugeValue, float64(bytes))
	ch <- prometheus.MustNewConstMetric(backlogAge, prometheus.GaugeValue, age)
}

// poolCollector exports pgxpool statistics.
type poolCollector struct{ pool *pgxpool.Pool }

func (c *poolCollector) Describe(ch chan<- *prometheus.Desc) { ch <- dbConns }

func (c *poolCollector) Collect(ch chan<- prometheus.Metric) {
	if c.pool == nil {
		return
	}
	s := c.pool.Stat()
	ch <- prometheus.MustNewConstMetric(dbConns, prometheus.GaugeValue, float64(s.AcquiredConns()), "acquired")
	ch <- prometheus.MustNewConstMetric(dbConns, prometheus.GaugeValue, float64(s.IdleConns()), "idle")
	ch <- prometheus.MustNewConstMetric(dbConns, prometheus.GaugeValue, float64(s.ConstructingConns()), "constructing")
}
