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

// The session bounds reach the server, and they do what they are for: a client that
// stops while it holds a session advisory lock (inside a transaction, or idle between
// transactions) loses the lock to the server's timeouts, so another client can take it.
func TestSessionBoundsReleaseTheLocksOfAStoppedClient(t *testing.T) {
	url := pgtest.DB(t)
	ctx := context.Background()
	o := db.Options{MaxConns: 2, MaxWait: 10 * time.Second, ConnectTimeout: 5 * time.Second,
		StatementTimeout: 2 * time.Second, IdleInTxTimeout: 500 * time.Millisecond, IdleSessionTimeout: 700 * time.Millisecond,
		KeepAlive: 10 * time.Second, TCPUserTimeout: 20 * time.Second, ApplicationName: "bounded-test"}
	pool, err := db.ConnectWith(ctx, zerolog.Nop(), url, o)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	for name, want := range map[string]string{"statement_timeout": "2s", "idle_in_transaction_session_timeout": "500ms",
		"idle_session_timeout": "700ms", "tcp_user_timeout": "20000", "application_name": "bounded-test"} {
		var got string
		if err := pool.QueryRow(ctx, "SELECT current_setting($1)", name).Scan(&got); err != nil || got != want {
			t.Errorf("%s = %q (%v), want %q", name, got, err, want)
		}
	}
	other, err := pgxpool.New(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	for _, inTx := range []bool{true, false} {
		conn, err := pool.Acquire(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock(42)"); err != nil {
			t.Fatal(err)
		}
		if inTx {
			if _, err := conn.Exec(ctx, "BEGIN"); err != nil {
				t.Fatal(err)
			}
		}
		// The client now does nothing, as a stopped process would.
		deadline := time.Now().Add(60 * time.Second)
		for {
			var got bool
			if err := other.QueryRow(ctx, "SELECT pg_try_advisory_lock(42)").Scan(&got); err != nil {
				t.Fatal(err)
			}
			if got {
				other.Exec(ctx, "SELECT pg_advisory_unlock_all()") //nolint:errcheck
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("in transaction %v: the stopped client's lock was never released", inTx)
			}
			time.Sleep(50 * time.Millisecond)
		}
		conn.Conn().Close(ctx) //nolint:errcheck
		conn.Release()
	}
}

// Warm opens the sessions asked for before any work needs them (a connected pool holds
// one), and no more than the pool may hold.
func TestWarmOpensTheSessionsAhead(t *testing.T) {
	url := pgtest.DB(t)
	ctx := context.Background()
	pool, err := db.ConnectWith(ctx, zerolog.Nop(), url, db.Options{MaxConns: 5})
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	if n := pool.Stat().TotalConns(); n != 1 {
		t.Fatalf("a connected pool holds %d sessions, want the 1 of its ping", n)
	}
	if n := db.Warm(ctx, pool, 4, nil); n != 4 {
		t.Fatalf("Warm(4): %d sessions", n)
	}
	if s := pool.Stat(); s.TotalConns() != 4 || s.IdleConns() != 4 {
		t.Fatalf("after Warm(4): %d sessions, %d idle; want 4 idle", s.TotalConns(), s.IdleConns())
	}
	var mu sync.Mutex
	primed := map[uint32]bool{}
	prime := func(_ context.Context, c *pgxpool.Conn) error {
		mu.Lock()
		defer mu.Unlock()
		primed[c.Conn().PgConn().PID()] = true
		return nil
	}
	if n := db.Warm(ctx, pool, 9, prime); n != 5 {
		t.Fatalf("Warm(9) with 5 at most: %d sessions", n)
	}
	// Every session is primed, those the pool held already too.
	if len(primed) != 5 {
		t.Fatalf("%d sessions primed, want the pool's 5", len(primed))
	}
	var backends int
	if err := pool.QueryRow(ctx, "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND backend_type = 'client backend'").Scan(&backends); err != nil {
		t.Fatal(err)
	}
	if backends < 5 {
		t.Fatalf("the server has %d sessions of this database, want the pool's 5", backends)
	}
}
