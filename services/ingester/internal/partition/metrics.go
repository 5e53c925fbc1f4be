package partition

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ecomstream/ecomstream/services/common/metrics"
)

// Metrics count what maintenance did. Every pass of every replica updates them; the
// gauges are the database's state as the last pass of this replica saw it.
type Metrics struct {
	passes      *prometheus.CounterVec
	created     prometheus.Counter
	dropped     prometheus.Counter
	moved       prometheus.Counter
	deleted     *prometheus.CounterVec
	defaultRows prometheus.Gauge
	coverage    prometheus.Gauge
}

// NewMetrics registers the maintenance metrics on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	opts := func(name, help string) prometheus.Opts {
		return prometheus.Opts{Namespace: metrics.Namespace, Subsystem: "ingester", Name: name, Help: help}
	}
	m := &Metrics{
		passes: prometheus.NewCounterVec(prometheus.CounterOpts(opts("partition_maintenance_total",
			"Partition maintenance passes, by outcome: done, skipped (another replica holds the maintenance lock), error.")), []string{"outcome"}),
		created: prometheus.NewCounter(prometheus.CounterOpts(opts("partitions_created_total",
			"events partitions this replica created."))),
		dropped: prometheus.NewCounter(prometheus.CounterOpts(opts("partitions_dropped_total",
			"events partitions this replica dropped because they were wholly older than INGESTER_EVENTS_RETENTION."))),
		moved: prometheus.NewCounter(prometheus.CounterOpts(opts("events_default_rows_moved_total",
			"Rows moved out of the default partition into a partition created for their range."))),
		deleted: prometheus.NewCounterVec(prometheus.CounterOpts(opts("retention_deleted_rows_total",
			"Rows removed by retention, by table; for dropped events partitions PostgreSQL's row estimate (pg_class.reltuples), counted exactly when there is none yet.")), []string{"table"}),
		defaultRows: prometheus.NewGauge(prometheus.GaugeOpts(opts("events_default_partition_rows",
			"Rows in events_default: events whose event_time no partition covered when they were stored, awaiting their partition (or older than retention)."))),
		coverage: prometheus.NewGauge(prometheus.GaugeOpts(opts("events_partition_coverage_seconds",
			"How far beyond now the newest events partition reaches; below one partition width, rows will soon land in the default partition."))),
	}
	for _, o := range []string{"done", "skipped", "error"} {
		m.passes.WithLabelValues(o)
	}
	for _, t := range []string{"events", "ingested_files", "rejected_records"} {
		m.deleted.WithLabelValues(t)
	}
	reg.MustRegister(m.passes, m.created, m.dropped, m.moved, m.deleted, m.defaultRows, m.coverage)
	return m
}

// record adds one pass's report (m may be nil: the migrate command has no registry).
func (m *Metrics) record(r Report, outcome string) {
	if m == nil {
		return
	}
	m.passes.WithLabelValues(outcome).Inc()
	m.created.Add(float64(len(r.Created)))
	m.dropped.Add(float64(len(r.Dropped)))
	m.moved.Add(float64(r.Moved))
	for t, n := range r.Deleted {
		m.deleted.WithLabelValues(t).Add(float64(n))
	}
	if outcome == "done" || r.measured {
		m.defaultRows.Set(float64(r.DefaultRows))
		m.coverage.Set(r.Coverage.Seconds())
	}
}
