package collector

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
)

// Throughput is the report's throughput methodology ("count records over time"): the
// window's files and rows by outcome, and the window's length, so that rows per second is
// window_records / window_seconds in PromQL (no precomputed rate is exported). It reads the
// window's ledger rows through the committed_at index.
type Throughput struct {
	DB     *pgxpool.Pool
	Window time.Duration
}

var (
	windowRecordsDesc = Desc("window_records",
		"Rows of files committed in the sliding window, by outcome (inserted, rejected, duplicate).", "outcome")
	windowFilesDesc = Desc("window_files",
		"Files whose outcome was committed in the sliding window, by outcome (ingested, failed).", "outcome")
	windowSecondsDesc = Desc("window_seconds",
		"Length of the sliding window the window_* metrics, percentiles and bands are computed over.")
)

// Name implements Measurement.
func (*Throughput) Name() string { return "throughput" }

// Describe implements Measurement.
func (*Throughput) Describe(ch chan<- *prometheus.Desc) {
	ch <- windowRecordsDesc
	ch <- windowFilesDesc
	ch <- windowSecondsDesc
}

// WindowCounts are the sums over the window's ledger rows.
type WindowCounts struct {
	FilesIngested, FilesFailed           int64
	Inserted, Rejected, Duplicate, Total int64
}

const windowCountsSQL = `
SELECT count(*) FILTER (WHERE outcome = 'ingested'), count(*) FILTER (WHERE outcome = 'failed'),
       coalesce(sum(records_inserted), 0)::bigint, coalesce(sum(records_rejected), 0)::bigint,
       coalesce(sum(records_duplicate), 0)::bigint, coalesce(sum(records_total), 0)::bigint
FROM ingested_files WHERE committed_at >= now() - make_interval(secs => $1)`

// Counts sums the window's ledger rows.
func windowCounts(ctx context.Context, db *pgxpool.Pool, window time.Duration) (WindowCounts, error) {
	var w WindowCounts
	err := db.QueryRow(ctx, windowCountsSQL, window.Seconds()).Scan(
		&w.FilesIngested, &w.FilesFailed, &w.Inserted, &w.Rejected, &w.Duplicate, &w.Total)
	if err != nil {
		return w, fmt.Errorf("window counts: %w", err)
	}
	return w, nil
}

// Measure implements Measurement.
func (t *Throughput) Measure(ctx context.Context, ch chan<- prometheus.Metric) error {
	w, err := windowCounts(ctx, t.DB, t.Window)
	if err != nil {
		return err
	}
	gauge(ch, windowSecondsDesc, t.Window.Seconds())
	gauge(ch, windowRecordsDesc, float64(w.Inserted), "inserted")
	gauge(ch, windowRecordsDesc, float64(w.Rejected), "rejected")
	gauge(ch, windowRecordsDesc, float64(w.Duplicate), "duplicate")
	gauge(ch, windowFilesDesc, float64(w.FilesIngested), "ingested")
	gauge(ch, windowFilesDesc, float64(w.FilesFailed), "failed")
	return nil
}
