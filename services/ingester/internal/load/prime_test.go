package load

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ecomstream/ecomstream/services/common/db"
)

// Prime's read of events is to open the partitions the first batches write to (the
// last day's), not the table's whole history: with no retention set (the default),
// daily partitions accumulate, and every session opened at start, primed at once,
// locking each of hundreds of partitions and their indexes would fill the shared lock
// table (max_locks_per_transaction × max_connections slots) that every other session
// of the database needs, and load all their descriptions into each backend.
func TestPrimeOpensOnlyTheLastDaysPartitions(t *testing.T) {
	pool := newPool(t)
	ctx := context.Background()
	day := time.Now().UTC().Truncate(24 * time.Hour)
	for d := -60; d <= 7; d++ {
		from := day.AddDate(0, 0, d)
		name := fmt.Sprintf("events_p%s", from.Format("20060102"))
		if _, err := pool.Exec(ctx, "SELECT ecomstream_create_partition($1, $2, $3)", name, from, from.AddDate(0, 0, 1)); err != nil {
			t.Fatal(err)
		}
	}
	conn := acquire(t, pool)
	// In a transaction of the test's, the locks Prime's statements take are still held
	// when it returns: each relation opened is one.
	if _, err := conn.Exec(ctx, "BEGIN"); err != nil {
		t.Fatal(err)
	}
	defer conn.Exec(ctx, "ROLLBACK")
	l := &Loader{Pool: pool, Instance: "primed", MaxRejected: 100}
	if err := l.Prime(ctx, conn); err != nil {
		t.Fatal(err)
	}
	var parts int64
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation
		WHERE l.pid = pg_backend_pid() AND c.relkind = 'r' AND c.relname LIKE 'events\_p%'`).Scan(&parts); err != nil {
		t.Fatal(err)
	}
	// Today's and yesterday's (and tomorrow's, within the hour of midnight).
	if parts == 0 || parts > 3 {
		t.Fatalf("priming opened %d events partitions of 68, want the last day's", parts)
	}
}

// Prime runs as the ingester's role (sql/0005_roles.sql) and leaves its session idle,
// outside any transaction, with nothing held: the rights its statements need are the
// ones a batch needs.
func TestPrimeRunsWithTheIngestersRightsAndLeavesTheSessionIdle(t *testing.T) {
	pool := newPool(t)
	ctx := context.Background()
	conn := acquire(t, pool)
	if _, err := conn.Exec(ctx, "SET ROLE ecomstream_ingester"); err != nil {
		t.Fatal(err)
	}
	defer conn.Exec(ctx, "RESET ROLE")
	l := &Loader{Pool: pool, Instance: "primed", MaxRejected: 100}
	if err := l.Prime(ctx, conn); err != nil {
		t.Fatal(err)
	}
	if s := conn.Conn().PgConn().TxStatus(); s != 'I' {
		t.Fatalf("session left in transaction status %c", s)
	}
	var locks int64
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM pg_locks WHERE pid = pg_backend_pid() AND locktype <> 'virtualxid' AND relation IS DISTINCT FROM 'pg_locks'::regclass").Scan(&locks); err != nil {
		t.Fatal(err)
	}
	if locks != 0 {
		t.Fatalf("priming left %d locks", locks)
	}
}

// A start that meets the ledger locked (a migration of another replica holding it)
// primes for as long as Warm's context allows, not until the lock is released, and
// leaves the pool usable and the ledger empty.
func TestWarmPrimingBehindALockedLedgerEndsWithItsContext(t *testing.T) {
	pool := newPool(t)
	ctx := context.Background()
	hold, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := hold.Exec(ctx, "LOCK TABLE ingested_files IN ACCESS EXCLUSIVE MODE"); err != nil {
		t.Fatal(err)
	}
	l := &Loader{Pool: pool, Instance: "primed", MaxRejected: 100}
	wctx, cancel := context.WithTimeout(ctx, time.Second)
	db.Warm(wctx, pool, 2, l.Prime) // returns: the test's lock is still held
	cancel()
	if err := hold.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if n := count(t, pool, "SELECT count(*) FROM ingested_files"); n != 0 {
		t.Fatalf("priming wrote %d ledger rows", n)
	}
}

// acquire holds one of pool's sessions until the test ends.
func acquire(t *testing.T, pool *pgxpool.Pool) *pgxpool.Conn {
	t.Helper()
	conn, err := pool.Acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(conn.Release)
	return conn
}
