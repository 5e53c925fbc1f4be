package load

import (
	"context"
	"fmt"
	"testing"
	"time"
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
	conn, err := pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
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
