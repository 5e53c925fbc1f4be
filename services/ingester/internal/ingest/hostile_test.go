package ingest

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/ecomstream/ecomstream/services/ingester/internal/load"
	"github.com/ecomstream/ecomstream/services/ingester/internal/retry"
	"github.com/ecomstream/ecomstream/services/ingester/internal/source"
	"github.com/ecomstream/ecomstream/services/ingester/internal/source/dir"
	"github.com/ecomstream/ecomstream/services/ingester/internal/source/memory"
)

// stuckLedger makes PostgreSQL answer every ledger row of one file name with a
// unique_violation (23505): neither a data error nor a duplicate event, the error that
// used to roll back and retry the whole batch forever.
func stuckLedger(name string) func(*pgxpool.Pool, dirOptions) {
	return func(pool *pgxpool.Pool, _ dirOptions) {
		_, err := pool.Exec(context.Background(), `
			CREATE FUNCTION refuse_stuck() RETURNS trigger LANGUAGE plpgsql AS $$
			BEGIN
				IF NEW.file_name = '`+name+`' THEN
					RAISE unique_violation USING MESSAGE = 'duplicate key value violates unique constraint "ingested_files_identity"';
				END IF;
				RETURN NEW;
			END $$;
			CREATE TRIGGER refuse_stuck BEFORE INSERT ON ingested_files FOR EACH ROW EXECUTE FUNCTION refuse_stuck();`)
		if err != nil {
			panic(err)
		}
	}
}

func fastRetries(o *dirOptions) {
	o.Workers = 1
	o.Retry.File = retry.Policy{Base: 10 * time.Millisecond, Max: 40 * time.Millisecond, Attempts: 4, Jitter: 0.5}
}

// A file that fails for a reason of its own never holds back the files batched with it
// or dropped after it; its attempts are counted, and after MaxAttempts it is moved aside
// with its reason.
func TestAFileThatKeepsFailingNeverHoldsBackTheOthers(t *testing.T) {
	r := startRunnerWith(t, func(pool *pgxpool.Pool, o dirOptions) {
		stuckLedger("stuck.csv")(pool, o)
		// Placed before the start: one batch of three, the stuck file oldest.
		place(t, o.InputDir, "stuck.csv", "books")
		place(t, o.InputDir, "a.csv", "toys")
		place(t, o.InputDir, "b.csv", "garden")
	}, fastRetries)
	waitLedger(t, r.pool, 2)
	waitFile(t, filepath.Join(r.opt.FailedDir, "stuck.csv.reason.txt"))
	reason, _ := os.ReadFile(filepath.Join(r.opt.FailedDir, "stuck.csv.reason.txt"))
	if !strings.HasPrefix(string(reason), "retries_exhausted: database:") {
		t.Fatalf("reason file: %q", reason)
	}
	// Dropped after the stuck file was set aside: lands as usual.
	place(t, r.opt.InputDir, "c.csv", "books")
	waitLedger(t, r.pool, 3)
	if got := testutil.ToFloat64(r.metrics.Retries.WithLabelValues("database")); got < 4 {
		t.Fatalf("file retries counted %v, want at least MaxAttempts (4)", got)
	}
	if got := testutil.ToFloat64(r.metrics.Aside.WithLabelValues("retries_exhausted")); got != 1 {
		t.Fatalf("set aside %v, want 1", got)
	}
}

// A file that keeps failing and cannot even be moved aside is parked: out of the way of
// the others, in the backlog, and visible in ecomstream_ingester_files_parked.
func TestAFileThatCannotBeMovedAsideIsParkedAndCounted(t *testing.T) {
	r := startRunnerWith(t, func(pool *pgxpool.Pool, o dirOptions) {
		stuckLedger("stuck.csv")(pool, o)
		place(t, o.InputDir, "stuck.csv", "books")
	}, func(o *dirOptions) {
		fastRetries(o)
		o.Retry.File.Base, o.Retry.File.Max = 300*time.Millisecond, 600*time.Millisecond
	})
	// Once the runner is past its start-up (a first attempt failed), the failed
	// "directory" becomes a file: nothing can be moved into it.
	for deadline := time.Now().Add(30 * time.Second); testutil.ToFloat64(r.metrics.Retries.WithLabelValues("database")) < 1; {
		if time.Now().After(deadline) {
			t.Fatal("no attempt of the stuck file")
		}
		time.Sleep(5 * time.Millisecond)
	}
	os.RemoveAll(r.opt.FailedDir)
	os.WriteFile(r.opt.FailedDir, []byte("x"), 0o644)
	deadline := time.Now().Add(30 * time.Second)
	for r.queue.Parked() != 1 {
		if time.Now().After(deadline) {
			t.Fatal("the stuck file was never parked")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if n, err := testutil.GatherAndCount(r.reg, "ecomstream_ingester_files_parked"); err != nil || n != 1 {
		t.Fatalf("files_parked series %d, %v", n, err)
	}
	place(t, r.opt.InputDir, "fine.csv", "toys")
	waitLedger(t, r.pool, 1)
	if _, err := os.Stat(filepath.Join(r.opt.InputDir, "stuck.csv")); err != nil {
		t.Fatalf("the parked file must stay in the input directory: %v", err)
	}
}

// The ledger decides where a file goes: a file committed as failed whose move never
// happened goes to the failed directory with its reason when it is found again, and
// delete mode does not delete it.
func TestACommittedFailureGoesToFailedEvenInDeleteMode(t *testing.T) {
	r := startRunnerWith(t, func(pool *pgxpool.Pool, o dirOptions) {
		p := filepath.Join(o.InputDir, "nocol.csv")
		os.WriteFile(p, []byte("event_id,event_time\nx,y\n"), 0o644)
		fi, _ := os.Lstat(p)
		// Committed as failed by an earlier run that died before moving it.
		l := &load.Loader{Pool: pool, Instance: "crashed", MaxRejected: 10}
		it := source.Item{Name: "nocol.csv", Path: p, Version: source.Version{Size: fi.Size(), ModTime: fi.ModTime()}}
		out := l.Load(context.Background(), dir.New(dir.Options{Input: o.InputDir}), []source.Item{it})
		if out.Verdict != load.Done || out.Batch.Files[0].Outcome != load.OutcomeFailed {
			t.Fatalf("setup: %v", out.Err)
		}
		out.Claim.Release()
	}, func(o *dirOptions) { o.DeleteOnSuccess = true })
	// The reason is renamed into place after the file is linked there: wait for it.
	waitFile(t, filepath.Join(r.opt.FailedDir, "nocol.csv.reason.txt"))
	waitFile(t, filepath.Join(r.opt.FailedDir, "nocol.csv"))
	reason, _ := os.ReadFile(filepath.Join(r.opt.FailedDir, "nocol.csv.reason.txt"))
	if !strings.HasPrefix(string(reason), "missing_columns:") {
		t.Fatalf("reason file %q, want the committed reason", reason)
	}
}

// A symlink dropped into the input directory is never followed: it is moved aside
// unread and counted, and nothing of its target reaches the database.
func TestSymlinkIsMovedAsideUnread(t *testing.T) {
	r := startRunner(t, nil)
	secret := filepath.Join(t.TempDir(), "environ")
	os.WriteFile(secret, []byte("DATABASE_URL=postgres://u:hunter2@h/db\n"), 0o600)
	os.Symlink(secret, filepath.Join(r.opt.InputDir, ".l.tmp"))
	os.Rename(filepath.Join(r.opt.InputDir, ".l.tmp"), filepath.Join(r.opt.InputDir, "link.csv"))
	waitFile(t, filepath.Join(r.opt.FailedDir, "link.csv.reason.txt"))
	if fi, err := os.Lstat(filepath.Join(r.opt.FailedDir, "link.csv")); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Fatalf("the symlink itself should be in failed/: %v", err)
	}
	// Counted once the move has returned, a moment after its reason file appears.
	aside := func() float64 { return testutil.ToFloat64(r.metrics.Aside.WithLabelValues(dir.ReasonNotRegularFile)) }
	for deadline := time.Now().Add(10 * time.Second); aside() == 0 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	if got := aside(); got != 1 {
		t.Fatalf("not_regular_file counted %v", got)
	}
	var n int
	r.pool.QueryRow(context.Background(), "SELECT (SELECT count(*) FROM rejected_records) + (SELECT count(*) FROM ingested_files)").Scan(&n)
	if n != 0 {
		t.Fatalf("%d rows written for a symlink", n)
	}
}

// /healthz's check fails while a worker has held a claim without progress for longer
// than StuckAfter (here: its claim waits on a lock another session holds), and passes
// again once it moves.
func TestHealthFailsWhileAWorkerIsStuckOnAClaim(t *testing.T) {
	c := memory.NewClock()
	r := startRunner(t, func(o *dirOptions) { o.StuckAfter, o.Now = time.Minute, c.Now })
	ctx := context.Background()
	tx, err := r.pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, "LOCK TABLE ingested_files IN ACCESS EXCLUSIVE MODE"); err != nil {
		t.Fatal(err)
	}
	place(t, r.opt.InputDir, "h.csv", "books")
	deadline := time.Now().Add(30 * time.Second)
	for {
		var waiting int
		r.pool.QueryRow(ctx, "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%ingested_files%'").Scan(&waiting)
		if waiting > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the worker never blocked on the lock")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := r.runner.Healthy(); err != nil {
		t.Fatalf("healthy right after the claim: %v", err)
	}
	c.Advance(2 * time.Minute)
	if err := r.runner.Healthy(); err == nil || !strings.Contains(err.Error(), "no progress") {
		t.Fatalf("a worker stuck for 2m with a 1m bound: %v", err)
	}
	tx.Rollback(ctx)
	waitLedger(t, r.pool, 1)
	deadline = time.Now().Add(30 * time.Second)
	for r.runner.Healthy() != nil {
		if time.Now().After(deadline) {
			t.Fatal("still unhealthy after the worker moved on")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A file whose batch always runs past the statement timeout (57014) does not bring its
// batch back whole forever: the batch is split, the other files land, and the slow one
// counts attempts and is moved aside with the timeout as its reason (after raising
// INGESTER_DB_STATEMENT_TIMEOUT, `ingester retry` puts it back).
func TestABatchPastTheStatementTimeoutIsSplitAndTheSlowFileSetAside(t *testing.T) {
	r := startRunnerWith(t, func(pool *pgxpool.Pool, o dirOptions) {
		ctx := context.Background()
		if _, err := pool.Exec(ctx, `
			CREATE FUNCTION slow_file() RETURNS trigger LANGUAGE plpgsql AS $$
			BEGIN
				IF NEW.file_name = 'slow.csv' THEN PERFORM pg_sleep(5); END IF;
				RETURN NEW;
			END $$;
			CREATE TRIGGER slow_file BEFORE INSERT ON ingested_files FOR EACH ROW EXECUTE FUNCTION slow_file();
			DO $$ BEGIN EXECUTE format('ALTER DATABASE %I SET statement_timeout = %L', current_database(), '300ms'); END $$`); err != nil {
			t.Fatal(err)
		}
		pool.Reset() // new sessions take the database's statement_timeout
		// Placed before the start: one batch of three, the slow file oldest.
		place(t, o.InputDir, "slow.csv", "books")
		place(t, o.InputDir, "a.csv", "toys")
		place(t, o.InputDir, "b.csv", "garden")
	}, fastRetries)
	reasonFile := filepath.Join(r.opt.FailedDir, "slow.csv.reason.txt")
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(50 * time.Millisecond) {
		var n int
		_ = r.pool.QueryRow(context.Background(), "SELECT count(*) FROM ingested_files WHERE file_name IN ('a.csv', 'b.csv')").Scan(&n)
		_, err := os.Stat(reasonFile)
		if n == 2 && err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a.csv and b.csv committed: %d of 2; slow.csv set aside: %v", n, err)
		}
	}
	reason, _ := os.ReadFile(reasonFile)
	if !strings.HasPrefix(string(reason), "retries_exhausted: database:") || !strings.Contains(string(reason), "statement timeout") {
		t.Fatalf("reason file: %q", reason)
	}
	var slow int
	_ = r.pool.QueryRow(context.Background(), "SELECT count(*) FROM ingested_files WHERE file_name = 'slow.csv'").Scan(&slow)
	if slow != 0 {
		t.Fatalf("a timed-out file has %d ledger rows", slow)
	}
}
