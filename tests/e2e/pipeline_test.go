package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/ecomstream/ecomstream/services/common/pgtest"
)

// genArgs is a generator run of a fixed number of files, fast.
func genArgs(d dirs, t *testing.T, files int, instance string, extra ...string) []string {
	return append([]string{"--output-dir", d.In, "--http-addr", freeAddr(t), "--instance", instance,
		"--max-files", strconv.Itoa(files), "--seed", "7"}, extra...)
}

// TestPipelineAccountsForEveryRow: generator with bad and duplicate rows → ingester →
// database; every row accounted for, matching the generator's own counts.
func TestPipelineAccountsForEveryRow(t *testing.T) {
	url := pgtest.DB(t)
	d := newDirs(t)
	ing := startIngester(t, url, d, "ing-1")
	gen := start(t, "generator", nil, genArgs(d, t, 60, "gen-a",
		"--min-records", "100", "--max-records", "400", "--sleep", "0.02",
		"--bad-rate", "0.05", "--duplicate-rate", "0.05")...)
	if err := gen.wait(2 * time.Minute); err != nil {
		t.Fatalf("generator: %v", err)
	}
	counts := generatorCounts(t, gen)
	db := pool(t, url)
	waitDrained(t, db, d, counts.Files, time.Minute)
	if err := ing.stop(); err != nil {
		t.Fatalf("ingester did not stop cleanly on SIGTERM: %v", err)
	}
	checkInvariant(t, db, d, &counts)
	if counts.Invalid == 0 || counts.Duplicate == 0 {
		t.Fatalf("the run must exercise rejections and duplicates: %+v", counts)
	}
	// Every rejected row carries a reason and its line.
	var unexplained int64
	if err := db.QueryRow(context.Background(), `SELECT count(*) FROM rejected_records
		WHERE reason = '' OR message = '' OR raw_line = '' OR line_number < 2`).Scan(&unexplained); err != nil {
		t.Fatal(err)
	}
	if unexplained != 0 {
		t.Errorf("%d rejected rows without reason, message, raw line or a data line number", unexplained)
	}
}

// TestKillIngesterRepeatedly: kill -9 the ingester again and again during a heavy run
// (in the middle of COPYs, between commit and archive), restart it, and lose nothing.
func TestKillIngesterRepeatedly(t *testing.T) {
	url := pgtest.DB(t)
	d := newDirs(t)
	db := pool(t, url)
	gen := start(t, "generator", nil, genArgs(d, t, 150, "gen-k",
		"--min-records", "1000", "--max-records", "3000", "--sleep", "0.02",
		"--bad-rate", "0.01", "--duplicate-rate", "0.02")...)
	kills := 0
	for i := 0; i < 8; i++ {
		ing := startIngester(t, url, d, "ing-k", "--max-batch-records", "5000")
		// Kill at a varying instant once it is busy.
		time.Sleep(time.Duration(400+i*170) * time.Millisecond)
		ing.kill()
		kills++
	}
	if err := gen.wait(3 * time.Minute); err != nil {
		t.Fatalf("generator: %v", err)
	}
	counts := generatorCounts(t, gen)
	ing := startIngester(t, url, d, "ing-k")
	waitDrained(t, db, d, counts.Files, 2*time.Minute)
	_ = ing.stop()
	t.Logf("ingester killed %d times", kills)
	checkInvariant(t, db, d, &counts)
}

// TestReplicasCommitEachFileOnce: three ingesters on one directory.
func TestReplicasCommitEachFileOnce(t *testing.T) {
	url := pgtest.DB(t)
	d := newDirs(t)
	db := pool(t, url)
	var ings []*proc
	for i := 0; i < 3; i++ {
		ings = append(ings, startIngester(t, url, d, fmt.Sprintf("ing-r%d", i), "--workers", "2"))
	}
	gen := start(t, "generator", nil, genArgs(d, t, 200, "gen-r",
		"--min-records", "50", "--max-records", "300", "--sleep", "0.005",
		"--bad-rate", "0.02", "--duplicate-rate", "0.03")...)
	if err := gen.wait(2 * time.Minute); err != nil {
		t.Fatalf("generator: %v", err)
	}
	counts := generatorCounts(t, gen)
	waitDrained(t, db, d, counts.Files, time.Minute)
	for _, p := range ings {
		_ = p.stop()
	}
	checkInvariant(t, db, d, &counts)
	rows, err := db.Query(context.Background(), "SELECT ingester_instance, count(*) FROM ingested_files GROUP BY 1 ORDER BY 1")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var inst string
		var n int
		_ = rows.Scan(&inst, &n)
		t.Logf("%s committed %d files", inst, n)
	}
}

// TestPostgresRestartMidRun: the database stops and starts under the pipeline.
func TestPostgresRestartMidRun(t *testing.T) {
	srv := pgtest.New(t)
	url := srv.URL("postgres")
	d := newDirs(t)
	ing := startIngester(t, url, d, "ing-p")
	gen := start(t, "generator", nil, genArgs(d, t, 120, "gen-p",
		"--min-records", "500", "--max-records", "1500", "--sleep", "0.03",
		"--bad-rate", "0.01", "--duplicate-rate", "0.01")...)
	time.Sleep(1500 * time.Millisecond)
	srv.Kill() // the hard way: transactions in flight die with it
	time.Sleep(2 * time.Second)
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1500 * time.Millisecond)
	srv.Stop() // and the polite way
	time.Sleep(time.Second)
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	if err := gen.wait(3 * time.Minute); err != nil {
		t.Fatalf("generator: %v", err)
	}
	counts := generatorCounts(t, gen)
	db := pool(t, url)
	waitDrained(t, db, d, counts.Files, 2*time.Minute)
	if err := ing.stop(); err != nil {
		t.Fatalf("ingester: %v", err)
	}
	checkInvariant(t, db, d, &counts)
}

// TestSlowWriterInPlace: a file written in place a chunk every 200 ms (as cp or an FTP
// upload writes) is never read before it is complete; a renamed file is taken at once.
func TestSlowWriterInPlace(t *testing.T) {
	url := pgtest.DB(t)
	d := newDirs(t)
	db := pool(t, url)
	ing := startIngester(t, url, d, "ing-s", "--settle", "3s")
	// Make a complete file with the generator, then copy it in slowly.
	src := newDirs(t)
	gen := start(t, "generator", nil, genArgs(src, t, 2, "gen-s", "--min-records", "2000", "--max-records", "2000", "--sleep", "0")...)
	if err := gen.wait(time.Minute); err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(src.In, "*.csv"))
	if len(files) != 2 {
		t.Fatalf("want 2 generated files, got %d", len(files))
	}
	body, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	slow := filepath.Join(d.In, "slow-copy.csv")
	f, err := os.Create(slow)
	if err != nil {
		t.Fatal(err)
	}
	chunk := len(body)/10 + 1
	for off := 0; off < len(body); off += chunk {
		end := min(off+chunk, len(body))
		if _, err := f.Write(body[off:end]); err != nil {
			t.Fatal(err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	f.Close()
	// The renamed-in file lands while (or right after) the slow one is still settling.
	renamedAt := time.Now()
	tmp := filepath.Join(d.In, ".fast.csv.tmp")
	body2, _ := os.ReadFile(files[1])
	if err := os.WriteFile(tmp, body2, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(d.In, "fast.csv")); err != nil {
		t.Fatal(err)
	}
	waitDrained(t, db, d, 2, 30*time.Second)
	_ = ing.stop()
	checkInvariant(t, db, d, nil)
	var total, rejected int64
	var fastCommitted time.Time
	if err := db.QueryRow(context.Background(), `SELECT records_total, records_rejected FROM ingested_files WHERE file_name = 'slow-copy.csv'`).Scan(&total, &rejected); err != nil {
		t.Fatal(err)
	}
	if total != 2000 || rejected != 0 {
		t.Errorf("slow file: %d rows, %d rejected; want all 2000 rows and none rejected (read before complete?)", total, rejected)
	}
	if err := db.QueryRow(context.Background(), `SELECT committed_at FROM ingested_files WHERE file_name = 'fast.csv'`).Scan(&fastCommitted); err != nil {
		t.Fatal(err)
	}
	// Not a timing assertion on speed: the settle delay (3s) must not apply to a rename.
	if lag := fastCommitted.Sub(renamedAt); lag >= 3*time.Second {
		t.Errorf("renamed file waited %s: the settle delay must not apply to files renamed into place", lag)
	}
}
