package e2e

import (
	"context"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ecomstream/ecomstream/services/common/pgtest"
)

// heldClaims counts the file claims (session advisory locks other than the migration
// lock, key 0x65636f6d) an ingester instance's sessions hold, found by the
// application_name it connects with.
func heldClaims(t *testing.T, db *pgxpool.Pool, instance string) int {
	t.Helper()
	var n int
	err := db.QueryRow(context.Background(), `SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid)
		WHERE l.locktype = 'advisory' AND l.granted AND NOT (l.classid = 0 AND l.objid = 1701015405)
		AND a.application_name = $1`, "ecomstream-ingester/"+instance).Scan(&n)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestStoppedReplicaReleasesItsFiles: a replica frozen (SIGSTOP) while it holds claims,
// as a hung process or a host that stopped scheduling it would be. The server's session
// bounds end its sessions, so the other replicas take its files; when it wakes up
// (SIGCONT) it commits and moves nothing a second time.
func TestStoppedReplicaReleasesItsFiles(t *testing.T) {
	url := pgtest.DB(t)
	d := newDirs(t)
	db := pool(t, url)
	gen := start(t, "generator", nil, genArgs(d, t, 80, "gen-s",
		"--min-records", "2000", "--max-records", "4000", "--sleep", "0", "--bad-rate", "0.01", "--duplicate-rate", "0.01")...)
	if err := gen.wait(3 * time.Minute); err != nil {
		t.Fatalf("generator: %v", err)
	}
	counts := generatorCounts(t, gen)
	bounds := []string{"--db-statement-timeout", "3s", "--db-idle-in-tx-timeout", "2s", "--db-idle-session-timeout", "4s",
		"--db-keepalive", "5s", "--db-tcp-user-timeout", "10s"}
	frozen := startIngester(t, url, d, "ing-frozen", append([]string{"--workers", "2", "--max-batch-records", "8000"}, bounds...)...)
	// Wait until it holds claims (its first batches), then freeze it there.
	var held int
	for deadline := time.Now().Add(2 * time.Minute); ; {
		if held = heldClaims(t, db, "ing-frozen"); held > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the replica never held a claim")
		}
		time.Sleep(2 * time.Millisecond)
	}
	if err := frozen.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	stopped := time.Now()
	t.Cleanup(func() { _ = frozen.cmd.Process.Signal(syscall.SIGCONT) })
	held = heldClaims(t, db, "ing-frozen")
	t.Logf("replica frozen while its sessions hold %d claims", held)
	for _, name := range []string{"ing-a", "ing-b"} {
		startIngester(t, url, d, name, "--workers", "2")
	}
	// The others drain everything, the frozen replica's files included, while it is
	// still frozen. Generous deadline: this is not a speed test.
	var released time.Duration
	for deadline := time.Now().Add(3 * time.Minute); ; {
		if released == 0 && heldClaims(t, db, "ing-frozen") == 0 {
			released = time.Since(stopped)
		}
		var n int64
		_ = db.QueryRow(context.Background(), "SELECT count(*) FROM ingested_files").Scan(&n)
		left := pendingFiles(t, d)
		if n >= counts.Files && left == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("with a replica frozen: ledger %d of %d files, %d left in the input directory, frozen replica holds %d claims",
				n, counts.Files, left, heldClaims(t, db, "ing-frozen"))
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("the frozen replica's claims were released %s after SIGSTOP; everything drained %s after it",
		released.Round(100*time.Millisecond), time.Since(stopped).Round(100*time.Millisecond))
	// Wake it up; let it notice its dead sessions and try what it had in flight.
	before := len(frozen.log.all())
	if err := frozen.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(time.Minute); len(frozen.log.all()) == before && time.Now().Before(deadline); {
		time.Sleep(100 * time.Millisecond)
	}
	if err := frozen.stop(); err != nil {
		t.Fatalf("the woken replica: %v", err)
	}
	checkInvariant(t, db, d, &counts)
}

// pendingFiles counts the *.csv files left in the input directory.
func pendingFiles(t *testing.T, d dirs) int {
	t.Helper()
	left, err := filepath.Glob(filepath.Join(d.In, "*.csv"))
	if err != nil {
		t.Fatal(err)
	}
	return len(left)
}
