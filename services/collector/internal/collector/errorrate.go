package collector

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
)

// ErrorRate is the report's "Error Rate: percentage of failed records": rows rejected in
// the window divided by all rows of the window's files (ledger), and the window's
// rejected_records by reason code (through the rejected_at index). Whole-file rejections
// are reason codes too (line_number 0).
type ErrorRate struct {
	DB     *pgxpool.Pool
	Window time.Duration
}

var (
	errorRatioDesc = Desc("error_ratio",
		"Rejected rows / all rows of files committed in the sliding window (0..1); absent while the window has no rows.")
	rejectedDesc = Desc("rejected_window_records",
		"Rows of rejected_records written in the sliding window, by reason code.", "reason")
)

// Name implements Measurement.
func (*ErrorRate) Name() string { return "error_rate" }

// Describe implements Measurement.
func (*ErrorRate) Describe(ch chan<- *prometheus.Desc) { ch <- errorRatioDesc; ch <- rejectedDesc }

const rejectedByReasonSQL = `
SELECT reason, count(*) FROM rejected_records
WHERE rejected_at >= now() - make_interval(secs => $1) GROUP BY reason ORDER BY reason`

// Measure implements Measurement.
func (e *ErrorRate) Measure(ctx context.Context, ch chan<- prometheus.Metric) error {
	w, err := windowCounts(ctx, e.DB, e.Window)
	if err != nil {
		return err
	}
	if w.Total > 0 {
		gauge(ch, errorRatioDesc, float64(w.Rejected)/float64(w.Total))
	}
	rows, err := e.DB.Query(ctx, rejectedByReasonSQL, e.Window.Seconds())
	if err != nil {
		return fmt.Errorf("rejected by reason: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var reason string
		var n int64
		if err := rows.Scan(&reason, &n); err != nil {
			return fmt.Errorf("rejected by reason: %w", err)
		}
		gauge(ch, rejectedDesc, float64(n), reason)
	}
	return rows.Err()
}
