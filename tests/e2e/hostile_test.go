package e2e

import (
	"context"
	"io"
	"net/http"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
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

// copying tells whether a session of the instance is in the middle of a COPY.
func copying(t *testing.T, db *pgxpool.Pool, instance string) bool {
	t.Helper()
	var n int
	err := db.QueryRow(context.Background(), `SELECT count(*) FROM pg_stat_activity
		WHERE application_name = $1 AND state = 'active' AND query ILIKE 'copy%'`, "ecomstream-ingester/"+instance).Scan(&n)
	if err != nil {
		t.Fatal(err)
	}
	return n > 0
}

// TestStoppedReplicaReleasesItsFiles: a replica frozen (SIGSTOP) while it holds claims,
// as a hung process or a host that stopped scheduling it would be. The server's session
// bounds (idle, idle in transaction) and, for a session frozen mid-COPY, the other
// replicas' reaper end its sessions, so the others take its files; when it wakes up
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
	// Wait until it holds claims and is in the middle of a COPY (the hardest case: its
	// session is "active", which no idle timeout ends), then freeze it there.
	var held int
	for deadline := time.Now().Add(2 * time.Minute); ; {
		if held = heldClaims(t, db, "ing-frozen"); held > 0 && copying(t, db, "ing-frozen") {
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
	t.Logf("replica frozen while its sessions hold %d claims, one of them in the middle of a COPY: %v", held, copying(t, db, "ing-frozen"))
	for _, name := range []string{"ing-a", "ing-b"} {
		startIngester(t, url, d, name, append([]string{"--workers", "2"}, bounds...)...)
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
			var sessions []string
			rows, _ := db.Query(context.Background(), `SELECT format('%s %s %s/%s %s ago: %s', application_name, state,
				wait_event_type, wait_event, now() - query_start, left(query, 40)) FROM pg_stat_activity WHERE application_name LIKE 'ecomstream%'`)
			for rows.Next() {
				var l string
				_ = rows.Scan(&l)
				sessions = append(sessions, l)
			}
			rows.Close()
			t.Fatalf("with a replica frozen: ledger %d of %d files, %d left in the input directory, frozen replica holds %d claims; sessions:\n%s",
				n, counts.Files, left, heldClaims(t, db, "ing-frozen"), strings.Join(sessions, "\n"))
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

// TestFileOfAnotherOwnerHoldsNothingBack is the first reproduction: an ingester
// running as an unprivileged user meets a file it cannot open (another owner, mode
// 0600) that it cannot move either (fs.protected_hardlinks refuses to link another
// owner's file, so the archive moves it by rename). That is an OS error, not content: no
// `failed` ledger row; it is retried with backoff, then moved aside with its reason
// (`retries_exhausted`), counted; every other file, dropped before or after it, lands.
// (A file that cannot be moved at all is parked instead: the ingest package's
// TestAFileThatCannotBeMovedAsideIsParkedAndCounted.)
func TestFileOfAnotherOwnerHoldsNothingBack(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to run the ingester as another user")
	}
	nobody, err := user.Lookup("nobody")
	if err != nil {
		t.Skip("no user nobody")
	}
	uid, _ := strconv.Atoi(nobody.Uid)
	gid, _ := strconv.Atoi(nobody.Gid)
	url := pgtest.DB(t)
	d := newDirs(t)
	for _, p := range []string{filepath.Dir(d.In), d.In, d.Archive, d.Failed} {
		if err := os.Chown(p, uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	os.Chmod(binDir, 0o755)                           //nolint:errcheck
	os.Chmod(filepath.Dir(filepath.Dir(d.In)), 0o755) //nolint:errcheck // the test's temp dir
	cred := &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	db := pool(t, url)
	// The file of another owner comes first (oldest), then good files.
	locked := filepath.Join(d.In, "a-locked.csv")
	if err := os.WriteFile(locked, []byte(strings.Join(eventColumns, ",")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// Producers and the ingester share the volume's owner, as in compose.
	gen := startAs(t, cred, "generator", nil, genArgs(d, t, 20, "gen-o", "--min-records", "10", "--max-records", "20", "--sleep", "0")...)
	if err := gen.wait(time.Minute); err != nil {
		t.Fatalf("generator: %v", err)
	}
	counts := generatorCounts(t, gen)
	addr := freeAddr(t)
	ing := startAs(t, cred, "ingester", []string{"DATABASE_URL=" + url},
		"--input-dir", d.In, "--archive-dir", d.Archive, "--failed-dir", d.Failed, "--http-addr", addr,
		"--instance", "ing-o", "--rescan-interval", "500ms", "--db-wait", "120s",
		"--max-file-attempts", "3", "--retry-base", "100ms", "--retry-max", "300ms")
	// Good files dropped after the stuck one land too.
	late := startAs(t, cred, "generator", nil, genArgs(d, t, 5, "gen-late", "--min-records", "10", "--max-records", "20", "--sleep", "0")...)
	if err := late.wait(time.Minute); err != nil {
		t.Fatalf("generator: %v", err)
	}
	lateCounts := generatorCounts(t, late)
	want := counts.Files + lateCounts.Files
	reasonFile := filepath.Join(d.Failed, "a-locked.csv.reason.txt")
	for deadline := time.Now().Add(2 * time.Minute); ; {
		var n int64
		_ = db.QueryRow(context.Background(), "SELECT count(*) FROM ingested_files").Scan(&n)
		_, rerr := os.Stat(reasonFile)
		if n >= want && pendingFiles(t, d) == 0 && rerr == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("ledger %d of %d good files, %d files left in the input directory, reason file: %v", n, want, pendingFiles(t, d), rerr)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if reason, _ := os.ReadFile(reasonFile); !strings.HasPrefix(string(reason), "retries_exhausted: read:") {
		t.Fatalf("reason %q, want retries_exhausted at the read stage", reason)
	}
	// Counted once the move has returned, a moment after its reason file appears and its
	// source is gone.
	aside := func() string {
		return metricValue(t, addr, `ecomstream_ingester_files_aside_total{reason="retries_exhausted"}`)
	}
	for deadline := time.Now().Add(10 * time.Second); aside() != "1" && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
	}
	if got := aside(); got != "1" {
		t.Fatalf("files_aside_total{retries_exhausted} = %q, want 1", got)
	}
	var failed int64
	if err := db.QueryRow(context.Background(), "SELECT count(*) FROM ingested_files WHERE outcome = 'failed' OR file_name = 'a-locked.csv'").Scan(&failed); err != nil {
		t.Fatal(err)
	}
	if failed != 0 {
		t.Fatalf("an OS error wrote %d failed ledger rows", failed)
	}
	if retries := metricValue(t, addr, `ecomstream_ingester_file_retries_total{stage="read"}`); retries == "0" || retries == "" {
		t.Fatalf("file retries not counted: %q", retries)
	}
	if err := ing.stop(); err != nil {
		t.Fatal(err)
	}
}

var eventColumns = []string{"event_id", "event_time", "event_type", "user_id", "session_id", "product_id", "category", "price", "quantity"}

// metricValue reads one series from a service's /metrics ("" when absent).
func metricValue(t *testing.T, addr, series string) string {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, l := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(l, series+" "); ok {
			return v
		}
	}
	return ""
}
