// Package measure reads what the database and the machine know about a run: the ledger
// (latency, counts), the events table (duplicates), the report's five queries timed with
// EXPLAIN ANALYZE, index statistics, and CPU and memory of the pipeline's processes.
// Every database read goes through Querier, so a local run (pgx) and a compose run (psql
// inside the postgres container) measure with the same SQL.
package measure

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/ecomstream/ecomstream/services/common/table"
	"github.com/ecomstream/ecomstream/services/loadtest/internal/report"
)

// Querier runs one SQL statement and returns its rows as text (NULL as "").
type Querier interface {
	Query(ctx context.Context, sql string) ([][]string, error)
}

// Window selects a run's files in the ledger: those created from Since on (a compose run
// shares its database with earlier runs), and, when Prefix is set, named with it.
type Window struct {
	Since  time.Time
	Until  time.Time // zero = open
	Prefix string
}

func (w Window) where() string {
	var c []string
	if !w.Since.IsZero() {
		c = append(c, "file_created_at >= "+ts(w.Since))
	}
	if !w.Until.IsZero() {
		c = append(c, "file_created_at < "+ts(w.Until))
	}
	if w.Prefix != "" {
		c = append(c, "file_name LIKE "+lit(w.Prefix+"%"))
	}
	if len(c) == 0 {
		return "true"
	}
	return strings.Join(c, " AND ")
}

func ts(t time.Time) string { return lit(t.UTC().Format(time.RFC3339Nano)) + "::timestamptz" }

func lit(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

func i64(s string) int64 {
	n, _ := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	return n
}

func f64(s string) float64 {
	x, _ := strconv.ParseFloat(strings.TrimSpace(s), 64)
	return x
}

// Files returns the window's committed files with their latency origin and commit time.
func Files(ctx context.Context, q Querier, w Window) ([]report.FileLatency, error) {
	rows, err := q.Query(ctx, `SELECT extract(epoch FROM file_created_at)::float8, extract(epoch FROM committed_at)::float8, records_total
FROM ingested_files WHERE `+w.where())
	if err != nil {
		return nil, fmt.Errorf("ledger files: %w", err)
	}
	out := make([]report.FileLatency, 0, len(rows))
	for _, r := range rows {
		out = append(out, report.FileLatency{Created: f64(r[0]), Committed: f64(r[1]), Rows: i64(r[2])})
	}
	return out, nil
}

// Progress is the live view: committed rows and files, and the P95 of the rows committed
// in the last Recent.
type Progress struct {
	Files, Rows int64
	RecentP95   float64
	RecentRows  int64
}

// Live reads the ledger for the progress line.
func Live(ctx context.Context, q Querier, w Window, recent time.Duration) (Progress, error) {
	var p Progress
	rows, err := q.Query(ctx, `SELECT count(*), coalesce(sum(records_total),0) FROM ingested_files WHERE `+w.where())
	if err != nil {
		return p, err
	}
	p.Files, p.Rows = i64(rows[0][0]), i64(rows[0][1])
	rw := w
	rows, err = q.Query(ctx, fmt.Sprintf(`SELECT extract(epoch FROM file_created_at)::float8, extract(epoch FROM committed_at)::float8, records_total
FROM ingested_files WHERE committed_at > now() - interval '%d milliseconds' AND %s`, recent.Milliseconds(), rw.where()))
	if err != nil {
		return p, err
	}
	fs := make([]report.FileLatency, 0, len(rows))
	for _, r := range rows {
		f := report.FileLatency{Created: f64(r[0]), Committed: f64(r[1]), Rows: i64(r[2])}
		fs = append(fs, f)
		p.RecentRows += f.Rows
	}
	p.RecentP95 = report.Percentiles(fs, 0.95)[0]
	return p, nil
}

// Account fills the database side of the loss equation for the window.
func Account(ctx context.Context, q Querier, w Window) (report.Accounted, error) {
	var a report.Accounted
	rows, err := q.Query(ctx, `SELECT count(*), count(*) FILTER (WHERE outcome = 'failed'),
  coalesce(sum(records_total),0), coalesce(sum(records_inserted),0), coalesce(sum(records_rejected),0),
  coalesce(sum(records_duplicate),0)
FROM ingested_files WHERE `+w.where())
	if err != nil {
		return a, fmt.Errorf("ledger totals: %w", err)
	}
	r := rows[0]
	a.Files, a.FailedFiles, a.Rows, a.Inserted, a.Rejected, a.Duplicate = i64(r[0]), i64(r[1]), i64(r[2]), i64(r[3]), i64(r[4]), i64(r[5])
	// A file committed twice would be two ledger rows of one name (its identity includes
	// the checksum, so the constraint alone would not stop a rewritten file).
	rows, err = q.Query(ctx, `SELECT coalesce(sum(n - 1), 0) FROM (SELECT count(*) AS n FROM ingested_files WHERE `+w.where()+
		` GROUP BY file_name HAVING count(*) > 1) d`)
	if err != nil {
		return a, fmt.Errorf("ledger duplicates: %w", err)
	}
	a.FilesCommittedTwice = i64(rows[0][0])
	ev := table.Events
	rows, err = q.Query(ctx, `SELECT count(*), count(*) - count(DISTINCT `+ev.Column(table.EventID)+`) FROM `+ev.Name+`
WHERE `+ev.Column(table.SourceFile)+` IN (SELECT file_name FROM ingested_files WHERE `+w.where()+`)`)
	if err != nil {
		return a, fmt.Errorf("events: %w", err)
	}
	a.EventsRows, a.DuplicateInDB = i64(rows[0][0]), i64(rows[0][1])
	rows, err = q.Query(ctx, `SELECT count(*) FROM rejected_records WHERE line_number > 0
AND source_file IN (SELECT file_name FROM ingested_files WHERE `+w.where()+`)`)
	if err != nil {
		return a, fmt.Errorf("rejected records: %w", err)
	}
	a.RejectedRows = i64(rows[0][0])
	return a, nil
}

// reportQuery is one of the seed report's five queries ("Query Performance").
type reportQuery struct {
	name, label, sql string
}

// The same statements the collector times (services/collector/internal/collector/queries.go),
// with the parameters of the newest event inlined so EXPLAIN can run them.
func reportQueries(user, product int64, newest string) []reportQuery {
	return []reportQuery{
		{"count", "SELECT COUNT(*)", `SELECT count(*) FROM events`},
		{"by_user_id", "SELECT by user_id", fmt.Sprintf(`SELECT event_id, event_time, event_type, product_id, price, quantity FROM events WHERE user_id = %d`, user)},
		{"by_product_id", "SELECT by product_id", fmt.Sprintf(`SELECT event_id, event_time, event_type, user_id, price, quantity FROM events WHERE product_id = %d`, product)},
		{"by_time_range", "SELECT by timestamp range", fmt.Sprintf(`SELECT count(*) FROM events WHERE event_time > %s::timestamptz - interval '1 minute' AND event_time <= %s::timestamptz`, lit(newest), lit(newest))},
		{"group_by_event_type", "GROUP BY event_type", `SELECT event_type, count(*) FROM events GROUP BY event_type`},
	}
}

// Queries times the report's five queries with EXPLAIN (ANALYZE, BUFFERS), runs times each
// (the first warms the cache as the report's repeated runs did), and keeps each one's plan.
func Queries(ctx context.Context, q Querier, runs int) ([]report.Query, error) {
	var user, product int64 = 1, 1
	newest := time.Now().UTC().Format(time.RFC3339Nano)
	rows, err := q.Query(ctx, `SELECT user_id, product_id, event_time FROM events ORDER BY event_time DESC LIMIT 1`)
	if err != nil {
		return nil, fmt.Errorf("query parameters: %w", err)
	}
	if len(rows) == 1 {
		user, product, newest = i64(rows[0][0]), i64(rows[0][1]), rows[0][2]
	}
	var out []report.Query
	for _, rq := range reportQueries(user, product, newest) {
		res := report.Query{Name: rq.name, Label: rq.label, SQL: rq.sql, Spark: report.SparkQueryTimes[rq.name]}
		var times []float64
		for i := 0; i < runs; i++ {
			rows, err := q.Query(ctx, `EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) `+rq.sql)
			if err != nil {
				return nil, fmt.Errorf("query %s: %w", rq.name, err)
			}
			var plans []struct {
				Plan          planNode `json:"Plan"`
				ExecutionTime float64  `json:"Execution Time"`
				PlanningTime  float64  `json:"Planning Time"`
			}
			var text strings.Builder
			for _, r := range rows {
				text.WriteString(r[0])
			}
			if err := json.Unmarshal([]byte(text.String()), &plans); err != nil || len(plans) == 0 {
				return nil, fmt.Errorf("query %s: EXPLAIN output: %v", rq.name, err)
			}
			times = append(times, plans[0].ExecutionTime+plans[0].PlanningTime)
			res.Plan = plans[0].Plan.describe()
			res.Rows = plans[0].Plan.resultRows(rq.name)
		}
		sort.Float64s(times)
		res.Runs = len(times)
		res.MinMs, res.MaxMs, res.MedianMs = times[0], times[len(times)-1], times[len(times)/2]
		out = append(out, res)
	}
	return out, nil
}

type planNode struct {
	NodeType   string     `json:"Node Type"`
	IndexName  string     `json:"Index Name"`
	Relation   string     `json:"Relation Name"`
	ActualRows float64    `json:"Actual Rows"`
	Loops      float64    `json:"Actual Loops"`
	Plans      []planNode `json:"Plans"`
}

// describe names the scan the plan rests on: "Index Only Scan using events_pkey".
func (p planNode) describe() string {
	var scans []string
	var walk func(n planNode)
	walk = func(n planNode) {
		if strings.Contains(n.NodeType, "Scan") {
			s := n.NodeType
			if n.IndexName != "" {
				s += " using " + parentIndex(n.IndexName)
			} else if n.Relation != "" {
				s += " on " + partitionRE.ReplaceAllString(n.Relation, "events")
			}
			scans = append(scans, s)
		}
		for _, c := range n.Plans {
			walk(c)
		}
	}
	walk(p)
	if len(scans) == 0 {
		return p.NodeType
	}
	if strings.Contains(p.NodeType, "Scan") {
		return strings.Join(dedupe(scans), " ← ")
	}
	return p.NodeType + " ← " + strings.Join(dedupe(scans), ", ")
}

// events is partitioned (sql/0004): a plan scans each partition with its own copy of
// an index (events_p20261201_user_id_idx, events_default_pkey). The report names the
// parent's (idx_events_user_id, events_pkey), so a plan reads the same at any number of
// partitions.
var (
	partitionRE      = regexp.MustCompile(`^events_(p[0-9_]+|default)$`)
	partitionIndexRE = regexp.MustCompile(`^events_(?:p[0-9_]+|default)_(?:(pkey)|(.+)_idx)$`)
)

func parentIndex(name string) string {
	m := partitionIndexRE.FindStringSubmatch(name)
	switch {
	case m == nil:
		return name
	case m[1] != "":
		return "events_pkey"
	}
	return "idx_events_" + m[2]
}

// resultRows is what the query returned (for count queries: the rows it counted, the
// sum over the plan's leaves: one per partition scanned).
func (p planNode) resultRows(name string) int64 {
	if name == "count" || name == "by_time_range" {
		var sum float64
		var walk func(n planNode)
		walk = func(n planNode) {
			if len(n.Plans) == 0 {
				sum += n.ActualRows * max(n.Loops, 1)
			}
			for _, c := range n.Plans {
				walk(c)
			}
		}
		walk(p)
		return int64(sum + 0.5)
	}
	return int64(p.ActualRows + 0.5)
}

func dedupe(s []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, x := range s {
		if !seen[x] {
			seen[x] = true
			out = append(out, x)
		}
	}
	return out
}

// Indexes reads pg_stat_user_indexes and pg_statio_user_indexes for the product's tables.
func Indexes(ctx context.Context, q Querier) ([]report.Index, error) {
	// events is partitioned: its indexes are summed over the partitions under the parent's
	// names, as the collector reports them.
	rows, err := q.Query(ctx, `SELECT t.relname, i.relname, sum(pg_relation_size(s.indexrelid)), sum(s.idx_scan), sum(s.idx_tup_read),
  sum(coalesce(io.idx_blks_hit, 0)), sum(coalesce(io.idx_blks_read, 0))
FROM pg_stat_user_indexes s JOIN pg_statio_user_indexes io USING (indexrelid)
JOIN pg_class t ON t.oid = coalesce(pg_partition_root(s.relid), s.relid) JOIN pg_class i ON i.oid = coalesce(pg_partition_root(s.indexrelid), s.indexrelid)
WHERE t.relname IN ('events', 'ingested_files', 'rejected_records')
GROUP BY t.relname, i.relname ORDER BY t.relname = 'events' DESC, t.relname, i.relname`)
	if err != nil {
		return nil, fmt.Errorf("index statistics: %w", err)
	}
	var out []report.Index
	for _, r := range rows {
		ix := report.Index{Table: r[0], Name: r[1], SizeBytes: i64(r[2]), Scans: i64(r[3]), TupRead: i64(r[4]),
			BlksHit: i64(r[5]), BlksRead: i64(r[6]), HitRate: -1}
		if ix.BlksHit+ix.BlksRead > 0 {
			ix.HitRate = float64(ix.BlksHit) / float64(ix.BlksHit+ix.BlksRead)
		}
		out = append(out, ix)
	}
	return out, nil
}

// DatabaseStats reads the cache hit ratio and sizes.
func DatabaseStats(ctx context.Context, q Querier) (report.Database, string, error) {
	var d report.Database
	rows, err := q.Query(ctx, `SELECT coalesce(blks_hit::float8 / nullif(blks_hit + blks_read, 0), 0),
  (SELECT sum(pg_table_size(relid)) FROM pg_partition_tree('events')),
  (SELECT sum(pg_indexes_size(relid)) FROM pg_partition_tree('events')), pg_database_size(current_database()),
  current_setting('server_version')
FROM pg_stat_database WHERE datname = current_database()`)
	if err != nil {
		return d, "", fmt.Errorf("database statistics: %w", err)
	}
	r := rows[0]
	d.CacheHitRatio, d.EventsTableBytes, d.EventsIndexBytes, d.TotalBytes = f64(r[0]), i64(r[1]), i64(r[2]), i64(r[3])
	return d, r[4], nil
}
