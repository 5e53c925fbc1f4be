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
	Rows    int64 // rows moved in all runs of this conversion
	Blocks  int64 // heap blocks of the old table
	Resumed bool  // an earlier run had moved part of it
	Created int   // partitions made for the old rows' ranges
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
		var n int64
		err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			tag, err := tx.Exec(ctx, fmt.Sprintf(`INSERT INTO %s SELECT * FROM %s WHERE ctid >= '(%d,0)'::tid AND ctid < '(%d,0)'::tid`,
				Table, Legacy, next, end))
			if err != nil {
				return err
			}
			n = tag.RowsAffected()
			_, err = tx.Exec(ctx, "UPDATE "+progressTable+" SET next_block = $1, rows_moved = rows_moved + $2", end, n)
			return err
		})
		if err != nil {
			return r, fmt.Errorf("convert %s: blocks %d to %d: %w", Legacy, next, end, err)
		}
		next, r.Rows = end, r.Rows+n
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
