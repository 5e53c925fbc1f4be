package db_test

import (
	"context"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/rs/zerolog"

	"github.com/ecomstream/ecomstream/services/common/db"
	"github.com/ecomstream/ecomstream/services/common/pgtest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// Eight replicas start at once against an empty database: each migration is applied
// exactly once, nobody fails, and running again changes nothing.
func TestMigrationsAreIdempotentAndSafeConcurrently(t *testing.T) {
	url := pgtest.DB(t)
	ctx := context.Background()
	var wg sync.WaitGroup
	applied := make([][]string, 8)
	errs := make([]error, 8)
	for i := range applied {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			pool, err := db.Connect(ctx, zerolog.Nop(), url, 2, 10*time.Second)
			if err != nil {
				errs[i] = err
				return
			}
			defer pool.Close()
			applied[i], errs[i] = db.Migrate(ctx, pool)
		}(i)
	}
	wg.Wait()
	total := 0
	for i, err := range errs {
		if err != nil {
			t.Fatalf("replica %d: %v", i, err)
		}
		total += len(applied[i])
	}
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	var n int
	if err := pool.QueryRow(ctx, "SELECT count(*) FROM schema_migrations").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if total != n || n < 2 {
		t.Fatalf("%d migrations recorded, %d applications reported across replicas: each must be applied once", n, total)
	}
	again, err := db.Migrate(ctx, pool)
	if err != nil || len(again) != 0 {
		t.Fatalf("second run applied %v (err %v), want nothing", again, err)
	}
	var idx int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM pg_indexes WHERE tablename = 'events'`).Scan(&idx); err != nil {
		t.Fatal(err)
	}
	if idx != 5 {
		t.Fatalf("events has %d indexes, want the primary key and the report's four", idx)
	}
}

func TestConnectGivesAClearErrorWhenNobodyListens(t *testing.T) {
	_, err := db.Connect(context.Background(), zerolog.Nop(), "postgres://x@127.0.0.1:1/none?sslmode=disable&connect_timeout=1", 1, 500*time.Millisecond)
	if err == nil {
		t.Fatal("connected to nothing")
	}
	if _, err := db.Connect(context.Background(), zerolog.Nop(), "", 1, time.Second); err == nil {
		t.Fatal("an empty URL must be an error")
	}
}
