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

// The bulk baseline loads every row it sends into a scratch copy of events (whose
// primary key would refuse a repeated event_id), leaves events and the ledger untouched,
// and drops its table.
func TestBulkCopyLoadsEveryRowAndLeavesNoTrace(t *testing.T) {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, pgtest.DB(t))
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	if _, err := db.Migrate(ctx, pool); err != nil {
		t.Fatal(err)
	}
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
