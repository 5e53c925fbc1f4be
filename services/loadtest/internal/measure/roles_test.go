package measure

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ecomstream/ecomstream/services/common/db"
	"github.com/ecomstream/ecomstream/services/common/pgtest"
)

// Every read of a load test's report (ledger, accounting, the five timed queries with
// EXPLAIN ANALYZE, index and database statistics) works as the collector's read-only
// role of sql/0005, so a report can be made without the administrator.
func TestReportReadsNeedNoMoreThanTheCollectorRole(t *testing.T) {
	ctx := context.Background()
	url := pgtest.DB(t)
	admin, err := pgxpool.New(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	if _, err := db.Migrate(ctx, admin); err != nil {
		t.Fatal(err)
	}
	start := time.Now().Add(-time.Minute)
	for _, s := range []string{
		`INSERT INTO events (event_id, event_time, event_type, user_id, session_id, product_id, category, price, quantity, source_file)
			SELECT gen_random_uuid(), now(), 'view', i, gen_random_uuid(), i, 'c', 1, 1, 'run-1.csv' FROM generate_series(1, 50) i`,
		`INSERT INTO ingested_files (file_name, sha256, file_created_at, records_total, records_inserted, records_rejected,
			records_duplicate, bytes, ingester_instance) VALUES ('run-1.csv', 'x', now(), 51, 50, 1, 0, 100, 'i')`,
		`INSERT INTO rejected_records (source_file, line_number, raw_line, reason, message) VALUES ('run-1.csv', 3, 'x', 'bad_event_id', 'm')`,
		`ANALYZE`,
	} {
		if _, err := admin.Exec(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	pool, err := pgxpool.New(ctx, pgtest.AsRole(t, url, "ecomstream_collector"))
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	q := PGX{Pool: pool}
	w := Window{Since: start, Prefix: "run-"}
	files, err := Files(ctx, q, w)
	if err != nil || len(files) != 1 {
		t.Fatalf("files %v: %v", files, err)
	}
	if _, err := Live(ctx, q, w, time.Hour); err != nil {
		t.Fatal(err)
	}
	a, err := Account(ctx, q, w)
	if err != nil || a.EventsRows != 50 || a.RejectedRows != 1 || a.Inserted != 50 {
		t.Fatalf("accounted %+v: %v", a, err)
	}
	qs, err := Queries(ctx, q, 1)
	if err != nil || len(qs) != 5 {
		t.Fatalf("timed queries %v: %v", qs, err)
	}
	if _, err := Indexes(ctx, q); err != nil {
		t.Fatal(err)
	}
	if _, _, err := DatabaseStats(ctx, q); err != nil {
		t.Fatal(err)
	}
}
