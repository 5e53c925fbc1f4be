package collector

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
)

// Queries times the report's five queries ("Database Performance Analysis / Query
// Performance") against the live table, each a single statement (its own short
// transaction) under the pool's statement_timeout. The rows of the user_id and
// product_id lookups are fetched, as an application would; the time range and
// GROUP BY are aggregates. The lookups use the user and product of the newest event and
// the range is the newest minute of event_time, so they find real rows at any size.
//
// They read the whole table (count, GROUP BY), so they run every Every, not every interval.
type Queries struct {
	DB    *pgxpool.Pool
	Every time.Duration
}

var (
	queryDurationDesc = Desc("query_duration_seconds",
		"Wall time of the last run of one of the report's five queries, rows fetched.", "query")
	queryRowsDesc = Desc("query_rows",
		"Rows the last run of the query returned (for count and time range: the count).", "query")
)

// QueryNames are the report's five queries, in its order.
var QueryNames = []string{"count", "by_user_id", "by_product_id", "by_time_range", "group_by_event_type"} // order of reportQueries

// Name implements Measurement.
func (*Queries) Name() string { return "queries" }

// Period implements Periodic.
func (q *Queries) Period() time.Duration { return q.Every }

// Describe implements Measurement.
func (*Queries) Describe(ch chan<- *prometheus.Desc) { ch <- queryDurationDesc; ch <- queryRowsDesc }

type query struct {
	name  string
	sql   string
	args  func(p params) []any
	count bool // the query returns one count instead of rows
}

// params are taken from the newest event so every lookup finds real rows.
type params struct {
	user, product int64
	newest        time.Time
}

func none(params) []any { return nil }

var reportQueries = []query{
	{"count", `SELECT count(*) FROM events`, none, true},
	{"by_user_id", `SELECT event_id, event_time, event_type, product_id, price, quantity FROM events WHERE user_id = $1`,
		func(p params) []any { return []any{p.user} }, false},
	{"by_product_id", `SELECT event_id, event_time, event_type, user_id, price, quantity FROM events WHERE product_id = $1`,
		func(p params) []any { return []any{p.product} }, false},
	{"by_time_range", `SELECT count(*) FROM events WHERE event_time > $1::timestamptz - interval '1 minute' AND event_time <= $1::timestamptz`,
		func(p params) []any { return []any{p.newest} }, true},
	{"group_by_event_type", `SELECT event_type, count(*) FROM events GROUP BY event_type`, none, false},
}

// Measure implements Measurement.
func (q *Queries) Measure(ctx context.Context, ch chan<- prometheus.Metric) error {
	p := params{user: 1, product: 1, newest: time.Now()}
	err := q.DB.QueryRow(ctx, `SELECT user_id, product_id, event_time FROM events ORDER BY event_time DESC LIMIT 1`).
		Scan(&p.user, &p.product, &p.newest)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("query parameters: %w", err)
	}
	var errs []error
	for _, rq := range reportQueries {
		d, n, err := q.run(ctx, rq, p)
		if err != nil {
			errs = append(errs, fmt.Errorf("query %s: %w", rq.name, err))
			continue
		}
		gauge(ch, queryDurationDesc, d.Seconds(), rq.name)
		gauge(ch, queryRowsDesc, float64(n), rq.name)
	}
	return errors.Join(errs...)
}

// run executes one query and reads all its rows; the time includes the fetch.
func (q *Queries) run(ctx context.Context, rq query, p params) (time.Duration, int64, error) {
	start := time.Now()
	rows, err := q.DB.Query(ctx, rq.sql, rq.args(p)...)
	if err != nil {
		return 0, 0, err
	}
	defer rows.Close()
	var n int64
	for rows.Next() {
		if rq.count {
			if err := rows.Scan(&n); err != nil {
				return 0, 0, err
			}
			continue
		}
		n++
	}
	if err := rows.Err(); err != nil {
		return 0, 0, err
	}
	return time.Since(start), n, nil
}
