package measure

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ecomstream/ecomstream/services/common/event"
	"github.com/ecomstream/ecomstream/services/common/table"
)

// bulkTable is the scratch copy of events the bulk baseline loads; dropped afterwards.
const bulkTable = "loadtest_bulk_copy"

// BulkCopy measures the no-bookkeeping bulk baseline on the run's own PostgreSQL: streams
// sessions in parallel, each sending filesPerStream CSV files of rowsPerFile rows with
// COPY ... FROM STDIN (FORMAT csv), one COPY per file, as `psql \copy` does, into a
// scratch table like events (its primary key and four indexes). No validation, no
// ledger. It returns rows per second over the whole load, wall clock.
func BulkCopy(ctx context.Context, pool *pgxpool.Pool, streams, filesPerStream, rowsPerFile int) (float64, error) {
	return BulkCopyAt(ctx, pool, 0, streams, filesPerStream, rowsPerFile)
}

// BulkCopyAt is BulkCopy into a scratch table filled first with rows of events' rows
// (0: empty), inserted through its key and indexes one by one as the ingester's were,
// so that its indexes have the size and the page splits of events' at that many rows,
// where an index built in one pass would be denser. It measures what the bulk loader
// reaches at a table size the run has passed, without touching events; the fill costs
// one PostgreSQL core ~25-30 µs a row and is not timed. The fill takes events' rows in
// scan order (roughly the order they came in).
func BulkCopyAt(ctx context.Context, pool *pgxpool.Pool, rows int64, streams, filesPerStream, rowsPerFile int) (float64, error) {
	setup := []string{
		"DROP TABLE IF EXISTS " + bulkTable,
		"CREATE TABLE " + bulkTable + " (LIKE " + table.Events.Name + " INCLUDING ALL)",
		"ALTER TABLE " + bulkTable + " ALTER COLUMN " + table.Events.Column(table.SourceFile) + " SET DEFAULT 'bulk'",
	}
	if rows > 0 {
		setup = append(setup, fmt.Sprintf("INSERT INTO %s SELECT * FROM %s LIMIT %d", bulkTable, table.Events.Name, rows))
	}
	// Dropped however the setup ends too: a fill of millions of rows that fails or is
	// cancelled half-way would otherwise keep its table, and its disk, until the next run.
	defer pool.Exec(context.WithoutCancel(ctx), "DROP TABLE IF EXISTS "+bulkTable) //nolint:errcheck // best effort
	for _, q := range setup {
		if _, err := pool.Exec(ctx, q); err != nil {
			return 0, fmt.Errorf("bulk copy: %s: %w", q, err)
		}
	}
	return bulkCopy(ctx, pool, bulkTable, false, streams, filesPerStream, rowsPerFile)
}

// BulkCopyRolledBack is BulkCopy into events itself, as large as the run has made it,
// each stream's files in one transaction that is rolled back: what the bulk loader
// would reach at that table size (indexes past shared_buffers cost PostgreSQL more per
// row than the empty table of BulkCopy), leaving no row behind (dead ones, for vacuum).
// The source_file column takes the synthetic name 'bulk'.
func BulkCopyRolledBack(ctx context.Context, pool *pgxpool.Pool, streams, filesPerStream, rowsPerFile int) (float64, error) {
	return bulkCopy(ctx, pool, table.Events.Name, true, streams, filesPerStream, rowsPerFile)
}

func bulkCopy(ctx context.Context, pool *pgxpool.Pool, target string, rollback bool, streams, filesPerStream, rowsPerFile int) (float64, error) {
	files := make([][][]byte, streams)
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 11))
	for s := range files {
		for range filesPerStream {
			f := event.AppendSyntheticCSV(event.HeaderLine(), rng, rowsPerFile, time.Now().UTC().Add(-time.Hour))
			if rollback { // into events, which has no default for source_file
				f = withSourceColumn(f)
			}
			files[s] = append(files[s], f)
		}
	}
	// Start from a clean checkpoint as the bench does; a role without the right only
	// measures with whatever dirty pages there are.
	_, _ = pool.Exec(ctx, "CHECKPOINT")
	cols := strings.Join(event.Columns, ", ")
	if rollback {
		cols += ", " + table.Events.Column(table.SourceFile)
	}
	copySQL := "COPY " + target + " (" + cols + ") FROM STDIN (FORMAT csv, HEADER true)"
	start := time.Now()
	errs := make([]error, streams)
	var wg sync.WaitGroup
	for s := range files {
		wg.Go(func() {
			conn, err := pool.Acquire(ctx)
			if err != nil {
				errs[s] = err
				return
			}
			defer conn.Release()
			if rollback {
				if _, err := conn.Exec(ctx, "BEGIN"); err != nil {
					errs[s] = fmt.Errorf("bulk copy: %w", err)
					return
				}
				defer conn.Exec(context.WithoutCancel(ctx), "ROLLBACK") //nolint:errcheck // a broken session rolls back too
			}
			for _, f := range files[s] {
				if _, err := conn.Conn().PgConn().CopyFrom(ctx, bytes.NewReader(f), copySQL); err != nil {
					errs[s] = fmt.Errorf("bulk copy into %s: %w", target, err)
					return
				}
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return 0, err
	}
	elapsed := time.Since(start).Seconds()
	return float64(streams*filesPerStream*rowsPerFile) / elapsed, nil
}

// withSourceColumn appends a source_file value ('bulk') to every line of a CSV file
// (the header gets the column's name).
func withSourceColumn(f []byte) []byte {
	out := make([]byte, 0, len(f)+len(f)/20)
	value := "," + table.Events.Column(table.SourceFile) + "\n" // the header's
	for line := range bytes.Lines(f) {
		out = append(append(out, bytes.TrimRight(line, "\r\n")...), value...)
		value = ",bulk\n"
	}
	return out
}
