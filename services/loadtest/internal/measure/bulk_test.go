package measure

import (
	"context"
	"os"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ecomstream/ecomstream/services/common/db"
	"github.com/ecomstream/ecomstream/services/common/pgtest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// migratedPool is a pool on a fresh database with the schema, closed with the test.
func migratedPool(t *testing.T) *pgxpool.Pool {
	t.Helper()
	pool, err := pgxpool.New(context.Background(), pgtest.DB(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	if _, err := db.Migrate(context.Background(), pool); err != nil {
		t.Fatal(err)
	}
	return pool
}

// The bulk baseline loads every row it sends into a scratch copy of events (whose
// primary key would refuse a repeated event_id), leaves events and the ledger untouched,
// and drops its table.
func TestBulkCopyLoadsEveryRowAndLeavesNoTrace(t *testing.T) {
	ctx := context.Background()
	pool := migratedPool(t)
	// Keep the scratch table: a row count needs it after the load.
	if _, err := pool.Exec(ctx, `CREATE FUNCTION keep() RETURNS event_trigger LANGUAGE plpgsql AS $$
		BEGIN RAISE EXCEPTION 'kept'; END $$`); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `CREATE EVENT TRIGGER keep ON sql_drop EXECUTE FUNCTION keep()`); err != nil {
		t.Fatal(err)
	}
	rate, err := BulkCopy(ctx, pool, 2, 3, 500)
	if err != nil {
		t.Fatal(err)
	}
	if rate <= 0 {
		t.Errorf("rate %v", rate)
	}
	var copied, events, ledger int
	if err := pool.QueryRow(ctx, `SELECT (SELECT count(DISTINCT event_id) FROM `+bulkTable+`),
		(SELECT count(*) FROM events), (SELECT count(*) FROM ingested_files)`).Scan(&copied, &events, &ledger); err != nil {
		t.Fatal(err)
	}
	if copied != 2*3*500 || events != 0 || ledger != 0 {
		t.Errorf("bulk table %d distinct rows (want 3000), events %d, ledger %d (want 0)", copied, events, ledger)
	}
	if _, err := pool.Exec(ctx, `DROP EVENT TRIGGER keep`); err != nil {
		t.Fatal(err)
	}
	if _, err := BulkCopy(ctx, pool, 1, 1, 10); err != nil {
		t.Fatal(err)
	}
	var left bool
	if err := pool.QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL`, bulkTable).Scan(&left); err != nil || left {
		t.Errorf("scratch table left behind: %v %v", left, err)
	}
}

// The bulk load at the table's size inserts into events itself, yet leaves no row: its
// transactions are rolled back (the indexes it grew show it did the work).
func TestBulkCopyRolledBackLoadsIntoEventsAndLeavesNoRow(t *testing.T) {
	ctx := context.Background()
	pool := migratedPool(t)
	size := func() (n int64) {
		t.Helper()
		if err := pool.QueryRow(ctx, `SELECT sum(pg_total_relation_size(relid)) FROM pg_partition_tree('events')`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	before := size()
	rate, err := BulkCopyRolledBack(ctx, pool, 2, 3, 500)
	if err != nil {
		t.Fatal(err)
	}
	if rate <= 0 {
		t.Errorf("rate %v", rate)
	}
	var events, ledger int
	if err := pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM events), (SELECT count(*) FROM ingested_files)`).Scan(&events, &ledger); err != nil {
		t.Fatal(err)
	}
	if events != 0 || ledger != 0 {
		t.Errorf("events %d, ledger %d: want 0", events, ledger)
	}
	if after := size(); after < before+100<<10 {
		t.Errorf("events and its indexes grew from %d to %d bytes: 3,000 rows were not inserted", before, after)
	}
}

// The bulk load at a table size fills its scratch table with that many of events' rows
// first, loads every row it sends on top, and leaves events as it was.
func TestBulkCopyAtFillsTheScratchTableFromEvents(t *testing.T) {
	ctx := context.Background()
	pool := migratedPool(t)
	insertEvents(t, pool, 1000)
	if _, err := pool.Exec(ctx, `CREATE FUNCTION keep() RETURNS event_trigger LANGUAGE plpgsql AS $$
		BEGIN RAISE EXCEPTION 'kept'; END $$`); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `CREATE EVENT TRIGGER keep ON sql_drop EXECUTE FUNCTION keep()`); err != nil {
		t.Fatal(err)
	}
	if _, err := BulkCopyAt(ctx, pool, 700, 2, 3, 500); err != nil {
		t.Fatal(err)
	}
	var filled, copied, events int
	if err := pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM `+bulkTable+` WHERE source_file = 'f.csv'),
		(SELECT count(*) FROM `+bulkTable+` WHERE source_file = 'bulk'), (SELECT count(*) FROM events)`).Scan(&filled, &copied, &events); err != nil {
		t.Fatal(err)
	}
	if filled != 700 || copied != 3000 || events != 1000 {
		t.Errorf("scratch table: %d rows of events (want 700) and %d loaded (want 3000); events %d (want 1000)", filled, copied, events)
	}
}

// A fill that fails (here: events' rows break a constraint the scratch table copies)
// leaves no scratch table behind: a fill of millions of rows cancelled half-way would
// otherwise keep its table, and the disk it took, until the next run.
func TestBulkCopyAtDropsTheScratchTableWhenTheFillFails(t *testing.T) {
	ctx := context.Background()
	pool := migratedPool(t)
	insertEvents(t, pool, 100)
	// Not checked on events' own rows (NOT VALID), but on the copy's.
	if _, err := pool.Exec(ctx, `ALTER TABLE events ADD CONSTRAINT no_rows CHECK (quantity < 0) NOT VALID`); err != nil {
		t.Fatal(err)
	}
	if _, err := BulkCopyAt(ctx, pool, 50, 2, 1, 10); err == nil {
		t.Fatal("the fill broke the copied constraint, yet no error")
	}
	var left bool
	if err := pool.QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL`, bulkTable).Scan(&left); err != nil {
		t.Fatal(err)
	}
	if left {
		t.Errorf("%s is left behind after a failed fill", bulkTable)
	}
}

// insertEvents stores n rows in events, from the file 'f.csv'.
func insertEvents(t *testing.T, pool *pgxpool.Pool, n int) {
	t.Helper()
	if _, err := pool.Exec(context.Background(), `INSERT INTO events (event_id, event_time, event_type, user_id, session_id, product_id,
		category, price, quantity, source_file)
		SELECT gen_random_uuid(), now(), 'view', i, gen_random_uuid(), i, 'books', 1.50, 1, 'f.csv'
		FROM generate_series(1, $1::int) i`, n); err != nil {
		t.Fatal(err)
	}
}
