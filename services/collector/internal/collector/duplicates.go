package collector

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ecomstream/ecomstream/services/common/table"
)

// Duplicates is the report's "Duplicates detected": event_ids stored more than once. The
// primary key (event_id, event_time) stores a true duplicate (same id, same time) once,
// so a non-zero answer is the one case partitioning allows: a producer reusing an
// event_id with another event_time (stored twice, reported here and alerted on, never
// lost silently). It counts over events whose event_time lies in
// the window (an index range scan on idx_events_event_time), so its cost follows the
// window, not the table's history. Beside it, the duplicates the ingester skipped
// (rows whose event_id was already stored) in the window's files, from the ledger.
type Duplicates struct {
	DB     *pgxpool.Pool
	Window time.Duration
}

var (
	duplicateIDsDesc = Desc("duplicate_event_ids",
		"event_id values stored more than once among events whose event_time is in the sliding window: count(*) - count(DISTINCT event_id). Must be 0.")
	duplicatesSkippedDesc = Desc("duplicates_skipped_records",
		"Rows of files committed in the sliding window that repeated an already stored event_id and were skipped (ledger records_duplicate).")
)

// Name implements Measurement.
func (*Duplicates) Name() string { return "duplicates" }

// Describe implements Measurement.
func (*Duplicates) Describe(ch chan<- *prometheus.Desc) {
	ch <- duplicateIDsDesc
	ch <- duplicatesSkippedDesc
}

var duplicateIDsSQL = `
SELECT count(*) - count(DISTINCT ` + table.Events.Column(table.EventID) + `) FROM ` + table.Events.Name + `
WHERE ` + table.Events.Column(table.EventTime) + ` >= now() - make_interval(secs => $1)`

// Measure implements Measurement.
func (d *Duplicates) Measure(ctx context.Context, ch chan<- prometheus.Metric) error {
	var dup int64
	if err := d.DB.QueryRow(ctx, duplicateIDsSQL, d.Window.Seconds()).Scan(&dup); err != nil {
		return fmt.Errorf("duplicate event ids: %w", err)
	}
	gauge(ch, duplicateIDsDesc, float64(dup))
	w, err := windowCounts(ctx, d.DB, d.Window)
	if err != nil {
		return err
	}
	gauge(ch, duplicatesSkippedDesc, float64(w.Duplicate))
	return nil
}
