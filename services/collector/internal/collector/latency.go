package collector

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
)

// Percentiles are the report's (P50, P75, P90, P95, P99).
var Percentiles = []float64{0.50, 0.75, 0.90, 0.95, 0.99}

// Latency is the end-to-end latency of rows committed in the window, with the report's
// methodology: for each row, the time it appeared in the database minus its CSV file's
// creation time.
//
// It is computed from the ledger, not from events: a file's ledger row commits in the
// same transaction as its events, so committed_at is every one of its rows' ingested_at,
// and committed_at − file_created_at weighted by records_inserted is exactly the per-row
// latency. This reads one row per file through the committed_at index instead of every
// event, so it stays cheap at any rate. The result equals percentile_cont over the
// expanded rows (one per inserted record); the expansion is done arithmetically with a
// running sum, which the test proves against the plain SQL.
type Latency struct {
	DB     *pgxpool.Pool
	Window time.Duration
}

var (
	latencyDesc = Desc("end_to_end_latency_seconds",
		"End-to-end latency (commit time - file creation time) of rows committed in the sliding window, by quantile (0.5 ... 0.99), computed in SQL from the ledger.",
		"quantile")
	latencyRowsDesc = Desc("end_to_end_latency_window_records",
		"Rows the latency percentiles of the sliding window are computed over.")
)

// Name implements Measurement.
func (*Latency) Name() string { return "latency" }

// Describe implements Measurement.
func (*Latency) Describe(ch chan<- *prometheus.Desc) { ch <- latencyDesc; ch <- latencyRowsDesc }

// windowFiles is the window's ledger rows with their latency in seconds; $1 is the window
// in seconds. Files whose rows were all rejected or duplicates inserted nothing and
// carry no weight.
const windowFiles = `
	SELECT extract(epoch FROM committed_at - file_created_at)::float8 AS lat,
	       records_inserted AS n
	FROM ingested_files
	WHERE committed_at >= now() - make_interval(secs => $1) AND records_inserted > 0`

// latencySQL is percentile_cont over the expanded rows without expanding them: for the
// 0-based row positions floor(h) and ceil(h), h = p·(N−1), it finds the file whose
// running row count passes that position, and interpolates as percentile_cont does.
const latencySQL = `
WITH f AS (` + windowFiles + `),
c AS (SELECT lat, sum(n) OVER (ORDER BY lat ROWS UNBOUNDED PRECEDING) AS cum FROM f),
t AS (SELECT coalesce(sum(n), 0)::float8 AS total FROM f),
q AS (SELECT p, p * (t.total - 1) AS h, t.total FROM t, unnest($2::float8[]) AS u(p) WHERE t.total > 0)
SELECT q.p, q.total,
       (SELECT lat FROM c WHERE cum > floor(q.h) ORDER BY cum LIMIT 1) AS lo,
       (SELECT lat FROM c WHERE cum > ceil(q.h) ORDER BY cum LIMIT 1) AS hi,
       q.h - floor(q.h) AS frac
FROM q ORDER BY q.p`

// Percentile is one computed percentile.
type Percentile struct {
	P       float64
	Seconds float64
}

// Compute returns the window's percentiles and the number of rows; no rows, no
// percentiles.
func (l *Latency) Compute(ctx context.Context) ([]Percentile, int64, error) {
	rows, err := l.DB.Query(ctx, latencySQL, l.Window.Seconds(), Percentiles)
	if err != nil {
		return nil, 0, fmt.Errorf("latency percentiles: %w", err)
	}
	defer rows.Close()
	var out []Percentile
	var total float64
	for rows.Next() {
		var p, lo, hi, frac float64
		if err := rows.Scan(&p, &total, &lo, &hi, &frac); err != nil {
			return nil, 0, fmt.Errorf("latency percentiles: %w", err)
		}
		out = append(out, Percentile{P: p, Seconds: lo + frac*(hi-lo)})
	}
	if err := rows.Err(); err != nil {
		return nil, 0, fmt.Errorf("latency percentiles: %w", err)
	}
	return out, int64(total), nil
}

// Measure implements Measurement.
func (l *Latency) Measure(ctx context.Context, ch chan<- prometheus.Metric) error {
	ps, n, err := l.Compute(ctx)
	if err != nil {
		return err
	}
	gauge(ch, latencyRowsDesc, float64(n))
	for _, p := range ps {
		gauge(ch, latencyDesc, p.Seconds, QuantileLabel(p.P))
	}
	return nil
}

// QuantileLabel names a percentile as Prometheus' summaries and our recording rules do:
// 0.95 -> "0.95", 0.5 -> "0.5".
func QuantileLabel(p float64) string {
	return strconv.FormatFloat(p, 'f', -1, 64)
}
