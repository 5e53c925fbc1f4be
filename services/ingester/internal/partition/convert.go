package partition

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Legacy is the unpartitioned events table of an earlier version, as sql/0004 renamed it.
const Legacy = "events_unpartitioned"

// progressTable records how far a conversion got, committed with each chunk.
const progressTable = "events_conversion"

// convertLock serialises conversions across replicas that start at once.
const convertLock = 0x65636f6e // "econ"

// DefaultChunkBlocks is how many 8 kB heap blocks of the old table one conversion
// transaction moves (about 50,000 rows).
const DefaultChunkBlocks = 1000

// ConvertReport is what Convert did.
type ConvertReport struct {
	Rows    int64 // rows taken from the old table in all runs of this conversion
	Blocks  int64 // heap blocks of the old table
	Resumed bool  // an earlier run had moved part of it
	Created int   // partitions made for the old rows' ranges
	// AlreadyThere counts old rows found in the new table already (the same event_id and
	// event_time, written there meanwhile): skipped as duplicates, included in Rows.
	AlreadyThere int64
}

// Convert moves the rows of an unpartitioned events table (renamed events_unpartitioned
// by sql/0004) into the partitioned one and drops it; it does nothing when there is none.
//
// The old table is no longer written, so its rows are moved in ranges of heap blocks
// (ctid ranges: sequential reads), one transaction per range, and the next block to move
// commits with each range in events_conversion. A run killed at any instant leaves every
// row in exactly one of the two tables, and the next run goes on from the committed
// block. Replicas that start at once wait on an advisory lock; the first converts, the
// others then find nothing to do. The old table is dropped only when the rows moved
// equal its row count.
func (m *Maintainer) Convert(ctx context.Context, chunkBlocks int) (ConvertReport, error) {
	var r ConvertReport
	if chunkBlocks < 1 {
		chunkBlocks = DefaultChunkBlocks
	}
	conn, err := m.Pool.Acquire(ctx)
	if err != nil {
		return r, fmt.Errorf("convert %s: %w", Legacy, err)
	}
	defer conn.Release()
	// The conversion's own statements are long by nature (waiting for another replica's
	// conversion, counting a large table): the session's statement timeout, meant for
	// batches, does not apply to them. Reset before the connection goes back to the pool.
	if _, err := conn.Exec(ctx, "SET statement_timeout = 0"); err != nil {
		return r, fmt.Errorf("convert %s: %w", Legacy, err)
	}
	defer conn.Exec(context.WithoutCancel(ctx), "RESET statement_timeout") //nolint:errcheck
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", convertLock); err != nil {
		return r, fmt.Errorf("convert %s: take lock: %w", Legacy, err)
	}
	defer conn.Exec(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock($1)", convertLock) //nolint:errcheck
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL", Legacy).Scan(&exists); err != nil || !exists {
		return r, err
	}
	// The block count is taken once, by the first run: the table no longer grows.
	setup := []string{
		`CREATE TABLE IF NOT EXISTS ` + progressTable + ` (
			id int PRIMARY KEY CHECK (id = 1), blocks bigint NOT NULL, next_block bigint NOT NULL,
			rows_moved bigint NOT NULL, started_at timestamptz NOT NULL DEFAULT now())`,
		`INSERT INTO ` + progressTable + ` (id, blocks, next_block, rows_moved)
			SELECT 1, pg_relation_size('` + Legacy + `') / current_setting('block_size')::int, 0, 0
			ON CONFLICT (id) DO NOTHING`,
	}
	for _, s := range setup {
		if _, err := conn.Exec(ctx, s); err != nil {
			return r, fmt.Errorf("convert %s: %w", Legacy, err)
		}
	}
	var next int64
	if err := conn.QueryRow(ctx, "SELECT blocks, next_block, rows_moved FROM "+progressTable).Scan(&r.Blocks, &next, &r.Rows); err != nil {
		return r, fmt.Errorf("convert %s: read progress: %w", Legacy, err)
	}
	r.Resumed = next > 0
	log := m.Log.With().Str("table", Legacy).Int64("blocks", r.Blocks).Logger()
	log.Info().Int64("next_block", next).Int64("rows_moved", r.Rows).Msg("converting events to the partitioned table")

	// Partitions for every range the old rows occupy (within retention), so they are
	// moved straight into place rather than through the default partition.
	parts, err := List(ctx, conn)
	if err != nil {
		return r, err
	}
	since := minTime
	if m.Opt.Retention > 0 {
		since = m.Now().UTC().Add(-m.Opt.Retention)
	}
	ranges, err := occupied(ctx, conn, Legacy, since, m.Opt.Width, parts, 100000)
	if err != nil {
		return r, err
	}
	var pr Report
	if err := m.createAll(ctx, conn, ranges, &pr); err != nil {
		return r, err
	}
	r.Created = len(pr.Created)

	start, lastLog := time.Now(), time.Now()
	for next < r.Blocks {
		end := next + int64(chunkBlocks)
		// A row already in the new table (the same event written there meanwhile, e.g.
		// by a replica of the old version during a rolling upgrade) is the same event:
		// it is skipped and counted, never a reason to stop. rows_moved counts every row
		// taken from the old table, so the final check compares like with like.
		var n, dup int64
		err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			var inserted int64
			err := tx.QueryRow(ctx, fmt.Sprintf(`WITH src AS (SELECT * FROM %s WHERE ctid >= '(%d,0)'::tid AND ctid < '(%d,0)'::tid),
				ins AS (INSERT INTO %s SELECT * FROM src ON CONFLICT DO NOTHING RETURNING 1)
				SELECT (SELECT count(*) FROM src), (SELECT count(*) FROM ins)`,
				Legacy, next, end, Table)).Scan(&n, &inserted)
			if err != nil {
				return err
			}
			dup = n - inserted
			_, err = tx.Exec(ctx, "UPDATE "+progressTable+" SET next_block = $1, rows_moved = rows_moved + $2", end, n)
			return err
		})
		if err != nil {
			return r, fmt.Errorf("convert %s: blocks %d to %d: %w", Legacy, next, end, err)
		}
		next, r.Rows = end, r.Rows+n
		if dup > 0 {
			r.AlreadyThere += dup
			log.Warn().Int64("rows", dup).Int64("from_block", end-int64(chunkBlocks)).Msg("rows of the old table already in the new one (same event_id and event_time): skipped as duplicates")
		}
		if time.Since(lastLog) > 10*time.Second {
			lastLog = time.Now()
			log.Info().Int64("next_block", next).Int64("rows_moved", r.Rows).
				Float64("percent", 100*float64(min(next, r.Blocks))/float64(max(r.Blocks, 1))).Msg("conversion progress")
		}
	}
	var left int64
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM "+Legacy).Scan(&left); err != nil {
		return r, fmt.Errorf("convert %s: count: %w", Legacy, err)
	}
	if left != r.Rows {
		return r, fmt.Errorf("convert %s: it holds %d rows but %d were moved; both tables kept for inspection", Legacy, left, r.Rows)
	}
	err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, "DROP TABLE "+Legacy+", "+progressTable)
		return err
	})
	if err != nil {
		return r, fmt.Errorf("convert %s: drop: %w", Legacy, err)
	}
	log.Info().Int64("rows_moved", r.Rows).Int("partitions_created", r.Created).Bool("resumed", r.Resumed).
		Dur("took", time.Since(start)).Msg("events converted to the partitioned table")
	return r, nil
}
