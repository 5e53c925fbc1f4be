package collector

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/rs/zerolog"

	"github.com/ecomstream/ecomstream/services/common/db"
	"github.com/ecomstream/ecomstream/services/common/pgtest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// newDB returns a pool on a fresh, migrated database of the shared test server, with the
// collector's application name so tests can find its sessions.
func newDB(t *testing.T) *pgxpool.Pool {
	t.Helper()
	ctx := context.Background()
	url := pgtest.DB(t) + "&application_name=" + ApplicationName
	pool, err := db.Connect(ctx, zerolog.Nop(), url, 4, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	if _, err := db.Migrate(ctx, pool); err != nil {
		t.Fatal(err)
	}
	return pool
}

// file is one ledger row to insert: its latency, its age at commit and its counts.
type file struct {
	latency   float64 // seconds, committed_at - file_created_at
	age       float64 // seconds before now() it committed
	inserted  int64
	rejected  int64
	duplicate int64
	failed    bool
}

var fileSeq int

func insertFiles(t *testing.T, pool *pgxpool.Pool, files ...file) {
	t.Helper()
	for _, f := range files {
		fileSeq++
		outcome := "ingested"
		if f.failed {
			outcome = "failed"
		}
		_, err := pool.Exec(context.Background(), `
			INSERT INTO ingested_files (file_name, sha256, outcome, file_created_at, committed_at,
				records_total, records_inserted, records_rejected, records_duplicate, bytes, ingester_instance)
			VALUES ($1, 'x', $2, now() - make_interval(secs => $3::float8 + $4::float8), now() - make_interval(secs => $3::float8),
				$5::bigint + $6::bigint + $7::bigint, $5, $6, $7, 100, 'test')`,
			fmt.Sprintf("f%06d.csv", fileSeq), outcome, f.age, f.latency, f.inserted, f.rejected, f.duplicate)
		if err != nil {
			t.Fatal(err)
		}
	}
}

// collect runs m once and returns its metrics as name{labels} -> value.
func collect(t *testing.T, m Measurement) map[string]float64 {
	t.Helper()
	c := New(zerolog.Nop(), 30*time.Second, m)
	c.MeasureAll(context.Background())
	return flatten(t, c)
}
