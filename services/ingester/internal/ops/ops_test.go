package ops

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ecomstream/ecomstream/services/common/db"
	"github.com/ecomstream/ecomstream/services/common/pgtest"
)

func TestMain(m *testing.M) {
	code := pgtest.Main(m)
	if binary != "" {
		os.RemoveAll(filepath.Dir(binary))
	}
	os.Exit(code)
}

type fixture struct {
	e    *env
	pool *pgxpool.Pool
	out  *bytes.Buffer
	root string
}

// newFixture gives a test a migrated database of its own and the ingester's directories.
func newFixture(t *testing.T) *fixture {
	t.Helper()
	url := pgtest.DB(t)
	pool, err := pgxpool.New(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	if _, err := db.Migrate(context.Background(), pool); err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	s := Settings{DatabaseURL: url, InputDir: filepath.Join(root, "incoming"), ArchiveDir: filepath.Join(root, "archive"),
		FailedDir: filepath.Join(root, "failed"), DBWait: time.Second}
	for _, d := range []string{s.InputDir, s.ArchiveDir, s.FailedDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	out := &bytes.Buffer{}
	// The ledger's windows end at a fixed instant, and the directories' clock agrees: no
	// result depends on how long the test takes.
	at := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	e := &env{s: s, stdout: out, now: func() time.Time { return at }, at: &at}
	t.Cleanup(e.close)
	return &fixture{e: e, pool: pool, out: out, root: root}
}

func (f *fixture) exec(t *testing.T, q string, args ...any) {
	t.Helper()
	if _, err := f.pool.Exec(context.Background(), q, args...); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

// commit writes a ledger row committed ago before the fixture's instant.
func (f *fixture) commit(t *testing.T, name, sha, outcome, instance string, ago time.Duration, rows, rejected int) {
	t.Helper()
	at := f.e.at.Add(-ago)
	f.exec(t, `INSERT INTO ingested_files (file_name, sha256, outcome, file_created_at, committed_at, records_total,
		records_inserted, records_rejected, records_duplicate, bytes, ingester_instance)
		VALUES ($1, $2, $3, $4::timestamptz - interval '1 second', $4, $5::bigint, $5::bigint - $6::bigint, $6::bigint, 0, 100, $7)`,
		name, sha, outcome, at, rows, rejected, instance)
}

func write(t *testing.T, path, body string, mtime time.Time) {
	t.Helper()
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	if !mtime.IsZero() {
		if err := os.Chtimes(path, mtime, mtime); err != nil {
			t.Fatal(err)
		}
	}
}

func sum(body string) string {
	h := sha256.Sum256([]byte(body))
	return hex.EncodeToString(h[:])
}

func TestStatusBacklogCountsOnlyWhatTheIngesterWouldTakeAndAgesTheOldestByItsMtime(t *testing.T) {
	f := newFixture(t)
	now := f.e.now()
	in := f.e.s.InputDir
	write(t, filepath.Join(in, "a.csv"), "12345", now.Add(-90*time.Second))
	write(t, filepath.Join(in, "b.csv"), "123", now.Add(-10*time.Second))
	write(t, filepath.Join(in, ".c.csv.tmp"), "being written", now.Add(-time.Hour)) // a producer's dotfile
	write(t, filepath.Join(in, "notes.txt"), "not input", now.Add(-time.Hour))
	if err := os.Mkdir(filepath.Join(in, "dir.csv"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(in, "a.csv"), filepath.Join(in, "link.csv")); err != nil {
		t.Fatal(err)
	}
	if err := runStatus(context.Background(), f.e, &statusFlags{JSON: true, Replicas: 24 * time.Hour}, nil); err != nil {
		t.Fatal(err)
	}
	var st Status
	if err := json.Unmarshal(f.out.Bytes(), &st); err != nil {
		t.Fatalf("%v\n%s", err, f.out)
	}
	b := st.Backlog
	if b.Files != 2 || b.Bytes != 8 || b.OldestFile != "a.csv" || b.OldestAgeSeconds != 90 {
		t.Errorf("backlog %+v, want 2 files, 8 bytes, oldest a.csv 90 s old", b)
	}
	if len(st.Replicas) != 0 || st.LatestCommit != nil {
		t.Errorf("empty ledger shows replicas %+v / latest %+v", st.Replicas, st.LatestCommit)
	}
}

func TestStatusShowsEachReplicasLastCommitAndItsFilesAndRowsOverTheLastMinuteAndHour(t *testing.T) {
	f := newFixture(t)
	f.commit(t, "a1.csv", "s1", "ingested", "ing-a", 10*time.Second, 50, 0)
	f.commit(t, "a2.csv", "s2", "ingested", "ing-a", 20*time.Second, 70, 2)
	f.commit(t, "a3.csv", "s3", "ingested", "ing-a", 30*time.Minute, 100, 0)
	f.commit(t, "a4.csv", "s4", "failed", "ing-a", 40*time.Minute, 0, 0)
	f.commit(t, "b1.csv", "s5", "ingested", "ing-b", 2*time.Hour, 80, 0)
	f.commit(t, "c1.csv", "s6", "ingested", "ing-c", 72*time.Hour, 90, 0) // outside the window
	write(t, filepath.Join(f.e.s.FailedDir, "x.csv"), "x", time.Time{})
	write(t, filepath.Join(f.e.s.FailedDir, "x.csv.reason.txt"), "not_csv: x", time.Time{})
	if err := runStatus(context.Background(), f.e, &statusFlags{JSON: true, Replicas: 24 * time.Hour}, nil); err != nil {
		t.Fatal(err)
	}
	var st Status
	if err := json.Unmarshal(f.out.Bytes(), &st); err != nil {
		t.Fatalf("%v\n%s", err, f.out)
	}
	if len(st.Replicas) != 2 {
		t.Fatalf("replicas %+v, want ing-a and ing-b (ing-c is 3 days old)", st.Replicas)
	}
	a, b := st.Replicas[0], st.Replicas[1]
	if a.Instance != "ing-a" || a.FilesLastMinute != 2 || a.RowsLastMinute != 120 || a.FilesLastHour != 4 || a.RowsLastHour != 220 ||
		a.FailedLastHour != 1 || a.LastCommitAgeSeconds != 10 {
		t.Errorf("ing-a %+v", a)
	}
	if b.Instance != "ing-b" || b.FilesLastMinute != 0 || b.FilesLastHour != 0 || b.LastCommitAgeSeconds != 7200 {
		t.Errorf("ing-b %+v", b)
	}
	if st.FailedLastHour != 1 || st.RejectedRowsHour != 2 || st.FailedDirFiles != 1 {
		t.Errorf("failed %d, rejected rows %d, failed dir %d; want 1, 2, 1", st.FailedLastHour, st.RejectedRowsHour, st.FailedDirFiles)
	}

	f.out.Reset()
	if err := runStatus(context.Background(), f.e, &statusFlags{Replicas: 24 * time.Hour}, nil); err != nil {
		t.Fatal(err)
	}
	text := f.out.String()
	for _, want := range []string{"backlog   0 files", "failed    1 file in the last hour (and 2 rows rejected", "see `ingester failed`", "ing-a", "ing-b", "files/1m"} {
		if !strings.Contains(text, want) {
			t.Errorf("text lacks %q:\n%s", want, text)
		}
	}
	if strings.Contains(text, "ing-c") {
		t.Errorf("text lists a replica outside the window:\n%s", text)
	}

	f.out.Reset()
	if err := runStatus(context.Background(), f.e, &statusFlags{Replicas: time.Second}, nil); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(f.out.String(), "the latest commit is ing-a's") {
		t.Errorf("no replica in the window: the latest commit is not named:\n%s", f.out)
	}
}

// failedFile records a whole-file rejection as the loader does: the line-0 row and the
// ledger row in one transaction, the file in the failed directory with its reason.
func (f *fixture) failedFile(t *testing.T, name, stored, body, reason, message, raw string, ago time.Duration) {
	t.Helper()
	ctx := context.Background()
	tx, err := f.pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	at := f.e.at.Add(-ago)
	if _, err := tx.Exec(ctx, `INSERT INTO rejected_records (source_file, line_number, raw_line, reason, message, rejected_at)
		VALUES ($1, 0, $2, $3, $4, $5::timestamptz - interval '1 millisecond')`, name, raw, reason, message, at); err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO ingested_files (file_name, sha256, outcome, file_created_at, committed_at, records_total,
		records_inserted, records_rejected, records_duplicate, bytes, ingester_instance)
		VALUES ($1, $2, 'failed', $3, $3, 0, 0, 0, 0, $4, 'ing-a')`, name, sum(body), at, len(body)); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if stored != "" {
		p := filepath.Join(f.e.s.FailedDir, stored)
		write(t, p, body, time.Time{})
		write(t, p+reasonSuffix, reason+": "+message+"\n", f.e.now().Add(-ago))
	}
}

func TestFailedShowsEachFilesReasonAndFirstRejectedLinesEscapedAndBounded(t *testing.T) {
	f := newFixture(t)
	evil := "event_id,\x1b[31mred\x1b[0m,\u202Eevil," + strings.Repeat("x", 5000)
	f.failedFile(t, "bad.csv", "bad.csv", evil+"\n1,2,3\n", "missing_columns", "required columns missing from the header: [price]", evil, time.Minute)
	f.failedFile(t, "old.csv", "old.csv", "old\n", "not_csv", "the first line is not a header", "old", 30*time.Hour)
	f.failedFile(t, "gone.csv", "", "gone\n", "empty_file", "the file is empty", "", 2*time.Minute)

	if err := runFailed(context.Background(), f.e, &failedFlags{Since: time.Hour, Limit: 20, Lines: 3}, nil); err != nil {
		t.Fatal(err)
	}
	text := f.out.String()
	for _, want := range []string{"bad.csv  failed", "missing_columns: required columns missing", `\x1B[31mred\x1B[0m`, `\u202Eevil`, " …",
		"ingester retry bad.csv", "gone.csv", "not in " + f.e.s.FailedDir + " any more"} {
		if !strings.Contains(text, want) {
			t.Errorf("output lacks %q:\n%s", want, text)
		}
	}
	if strings.ContainsAny(text, "\x1b\u202E") || strings.Contains(text, strings.Repeat("x", maxLineShown+1)) {
		t.Errorf("output holds a raw escape, an override or an unbounded line:\n%q", text)
	}
	if strings.Contains(text, "old.csv") {
		t.Errorf("--since 1h lists a file that failed 30 hours ago:\n%s", text)
	}

	f.out.Reset()
	if err := runFailed(context.Background(), f.e, &failedFlags{Since: 48 * time.Hour, Limit: 2, Lines: 3, JSON: true}, nil); err != nil {
		t.Fatal(err)
	}
	var files []FailedFile
	if err := json.Unmarshal(f.out.Bytes(), &files); err != nil {
		t.Fatalf("%v\n%s", err, f.out)
	}
	if len(files) != 2 || files[0].Name != "bad.csv" || files[1].LedgerName != "gone.csv" || files[1].Name != "" {
		t.Fatalf("--limit 2, newest first: %+v", files)
	}
	if files[0].Reason != "missing_columns" || len(files[0].Lines) != 1 || files[0].Lines[0].Number != 0 || files[0].LinesFrom != "rejected_records" {
		t.Errorf("bad.csv %+v: want its reason and its line 0 from rejected_records", files[0])
	}
}

func TestFailedPairsLedgerRowsWithTheFailedDirectoryByTheirBytesAndListsFilesOnlyThere(t *testing.T) {
	f := newFixture(t)
	// The same name failed twice: the second version was stored as again.1.csv.
	f.failedFile(t, "again.csv", "again.csv", "first\n", "not_csv", "first version", "first", 3*time.Minute)
	f.failedFile(t, "again.csv", "again.1.csv", "second\n", "not_csv", "second version", "second", 2*time.Minute)
	// A file the ledger cannot record (its name was not UTF-8), renamed by hand since.
	dirOnly := filepath.Join(f.e.s.FailedDir, "renamed.csv")
	write(t, dirOnly, "\x00\x01binary\xff\nline two\n", f.e.now().Add(-time.Minute))
	write(t, dirOnly+reasonSuffix, "bad_file_name: the file name is not valid UTF-8\n", f.e.now().Add(-time.Minute))

	if err := runFailed(context.Background(), f.e, &failedFlags{Since: time.Hour, Limit: 20, Lines: 3, JSON: true}, nil); err != nil {
		t.Fatal(err)
	}
	var files []FailedFile
	if err := json.Unmarshal(f.out.Bytes(), &files); err != nil {
		t.Fatalf("%v\n%s", err, f.out)
	}
	got := map[string]FailedFile{}
	for _, ff := range files {
		got[ff.Name+"|"+ff.LedgerName] = ff
	}
	if ff, ok := got["again.1.csv|again.csv"]; !ok || ff.Message != "second version" {
		t.Errorf("the second version is not paired with again.1.csv: %+v", files)
	}
	if ff, ok := got["again.csv|again.csv"]; !ok || ff.Message != "first version" {
		t.Errorf("the first version is not paired with again.csv: %+v", files)
	}
	ff, ok := got["renamed.csv|"]
	if !ok || ff.Reason != "bad_file_name" || ff.LinesFrom != "file" || len(ff.Lines) != 2 || ff.Lines[0].Text != `\x00\x01binary\xFF` {
		t.Errorf("the failed directory's own file: %+v (all: %+v)", ff, files)
	}
}

// tree lists every path under root with its size, to prove what a command did not touch.
func tree(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
		if err == nil {
			out = append(out, strings.TrimPrefix(p, root)+" "+fi.Mode().String())
		}
		return nil
	})
	sort.Strings(out)
	return out
}

func TestRetryPutsTheFailedFileBackUnderANewNameAndTheLedgerKeepsItsFailure(t *testing.T) {
	f := newFixture(t)
	body := "event_id,event_time\n1,2\n"
	f.failedFile(t, "x.csv", "x.csv", body, "missing_columns", "no price", "event_id,event_time", time.Minute)
	old := time.Now().Add(-time.Hour)
	os.Chtimes(filepath.Join(f.e.s.FailedDir, "x.csv"), old, old)

	if err := runRetry(context.Background(), f.e, &retryFlags{}, []string{"x.csv"}); err != nil {
		t.Fatal(err)
	}
	placed := filepath.Join(f.e.s.InputDir, "x.retry1.csv")
	got, err := os.ReadFile(placed)
	if err != nil || string(got) != body {
		t.Fatalf("retried file %q, %v; want the failed file's bytes", got, err)
	}
	fi, _ := os.Stat(placed)
	if !fi.ModTime().After(old) || fi.Mode().Perm() != 0o644 {
		t.Errorf("retried file mtime %v (failed file's %v), mode %v: want the retry's time and 0644", fi.ModTime(), old, fi.Mode())
	}
	if exists(filepath.Join(f.e.s.FailedDir, "x.csv")) || exists(filepath.Join(f.e.s.FailedDir, "x.csv"+reasonSuffix)) {
		t.Error("the failed file or its reason is still in the failed directory")
	}
	if ents, _ := os.ReadDir(f.e.s.InputDir); len(ents) != 1 {
		t.Errorf("input directory holds %v, want only x.retry1.csv (no temporary left)", ents)
	}
	if !strings.Contains(f.out.String(), "x.retry1.csv") {
		t.Errorf("output does not name the new file: %s", f.out)
	}
	var n int
	f.pool.QueryRow(context.Background(), `SELECT count(*) FROM ingested_files WHERE file_name = 'x.csv' AND outcome = 'failed'`).Scan(&n)
	if n != 1 {
		t.Errorf("ledger rows of x.csv's failure: %d, want 1 (retry changes no row)", n)
	}
	// Retried again: x.csv is no longer a failed file.
	err = runRetry(context.Background(), f.e, &retryFlags{}, []string{"x.csv"})
	if err == nil || !strings.Contains(err.Error(), "not a failed file") {
		t.Errorf("second retry of x.csv: %v, want a refusal", err)
	}
}

func TestRetryNamesCountUpPastEveryNameTheLedgerOrTheDirectoriesHold(t *testing.T) {
	f := newFixture(t)
	f.commit(t, "y.retry1.csv", "s", "ingested", "ing-a", time.Hour, 1, 0)
	write(t, filepath.Join(f.e.s.ArchiveDir, "y.retry2.csv"), "archived", time.Time{})
	write(t, filepath.Join(f.e.s.InputDir, "y.retry3.csv"), "pending", time.Time{})
	write(t, filepath.Join(f.e.s.FailedDir, "y.retry7.csv"), "failed again", time.Time{})
	if err := runRetry(context.Background(), f.e, &retryFlags{}, []string{"y.retry7.csv"}); err != nil {
		t.Fatal(err)
	}
	if got, err := os.ReadFile(filepath.Join(f.e.s.InputDir, "y.retry4.csv")); err != nil || string(got) != "failed again" {
		t.Errorf("y.retry4.csv: %q, %v; want the retried bytes under the first free name", got, err)
	}
	for name, want := range map[string]string{"a.csv": "a.retry1.csv", "a.csv.gz": "a.retry1.csv.gz", "a.1.csv": "a.1.retry1.csv", "a.retry12.csv.zst": "a.retry1.csv.zst"} {
		stem, ext := splitName(name)
		if got := stem + ".retry1" + ext; got != want {
			t.Errorf("%s: first retry name %s, want %s", name, got, want)
		}
	}
}

func TestRetryRefusesAnythingButAFailedFileAndTouchesNothingOutsideItsDirectories(t *testing.T) {
	f := newFixture(t)
	outside := filepath.Join(f.root, "secret.csv")
	write(t, outside, "not yours", time.Time{})
	write(t, filepath.Join(f.e.s.InputDir, "pending.csv"), "pending", time.Time{})
	write(t, filepath.Join(f.e.s.FailedDir, "ok.csv"), "failed", time.Time{})
	write(t, filepath.Join(f.e.s.FailedDir, "ok.csv"+reasonSuffix), "not_csv: x", time.Time{})
	write(t, filepath.Join(f.e.s.FailedDir, "data.bin"), "failed", time.Time{})
	if err := os.Symlink(outside, filepath.Join(f.e.s.FailedDir, "link.csv")); err != nil {
		t.Fatal(err)
	}
	before := tree(t, f.root)
	for _, tc := range []struct {
		name  string
		usage bool
		want  string
	}{
		{"../secret.csv", true, "not a path"},
		{"../incoming/pending.csv", true, "not a path"},
		{outside, true, "not a path"},
		{"..", true, "NAME must be"},
		{"", true, "NAME must be"},
		{".ok.csv.tmp", true, "dotfile"},
		{"ok.csv" + reasonSuffix, true, "reason file"},
		{"pending.csv", false, "not a failed file"},
		{"link.csv", false, "symbolic link"},
		{"data.bin", false, "does not take files named like it"},
		{"ok\xff.csv", true, "not valid UTF-8"},
	} {
		err := runRetry(context.Background(), f.e, &retryFlags{}, []string{tc.name})
		_, isUsage := err.(*usageError)
		if err == nil || isUsage != tc.usage || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("retry %q: %v (usage error %v); want a refusal saying %q", tc.name, err, isUsage, tc.want)
		}
	}
	if err := runRetry(context.Background(), f.e, &retryFlags{}, []string{"ok.csv", "more.csv"}); err == nil {
		t.Error("two names accepted")
	}
	same := *f.e
	same.s.FailedDir = f.e.s.InputDir + "/."
	if err := runRetry(context.Background(), &same, &retryFlags{}, []string{"pending.csv"}); err == nil || !strings.Contains(err.Error(), "is the input directory") {
		t.Errorf("failed directory = input directory: %v, want a refusal", err)
	}
	if after := tree(t, f.root); strings.Join(after, "\n") != strings.Join(before, "\n") {
		t.Errorf("refused retries changed files:\nbefore %v\nafter  %v", before, after)
	}
}

func TestPrintableEscapesWhatATerminalWouldObeyAndBoundsTheRest(t *testing.T) {
	for in, want := range map[string]string{
		"plain, text":          "plain, text",
		"tab\there":            `tab\there`,
		"\x1b]0;title\x07":     `\x1B]0;title\x07`,
		"bidi\u202Eoverride":   `bidi\u202Eoverride`,
		"bad\xffutf8":          `bad\xFFutf8`,
		"back\\slash":          `back\\slash`,
		"é ünïcode ✓":          "é ünïcode ✓",
		strings.Repeat("a", 9): "aaaaaaaa …",
	} {
		if got := printable(in, 8+len(in)*boolInt(in != strings.Repeat("a", 9))); got != want {
			t.Errorf("printable(%q) = %q, want %q", in, got, want)
		}
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func TestRetryAfterAnInterruptedRetryFinishesItInsteadOfLoadingTheSameBytesTwice(t *testing.T) {
	f := newFixture(t)
	// Placed and still pending: the earlier retry stopped before x.csv left the failed directory.
	write(t, filepath.Join(f.e.s.FailedDir, "x.csv"), "same bytes", time.Time{})
	write(t, filepath.Join(f.e.s.FailedDir, "x.csv"+reasonSuffix), "not_csv: x", time.Time{})
	write(t, filepath.Join(f.e.s.InputDir, "x.retry1.csv"), "same bytes", time.Time{})
	// Placed and already committed.
	write(t, filepath.Join(f.e.s.FailedDir, "y.csv"), "y bytes", time.Time{})
	f.commit(t, "y.retry1.csv", sum("y bytes"), "ingested", "ing-a", time.Minute, 1, 0)
	for name, placed := range map[string]string{"x.csv": "x.retry1.csv", "y.csv": "y.retry1.csv"} {
		f.out.Reset()
		if err := runRetry(context.Background(), f.e, &retryFlags{}, []string{name}); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(f.out.String(), "had already been put back as "+placed) || exists(filepath.Join(f.e.s.FailedDir, name)) ||
			exists(filepath.Join(f.e.s.FailedDir, name+reasonSuffix)) {
			t.Errorf("retry %s: %q; want it finished as %s and gone from the failed directory", name, f.out, placed)
		}
	}
	if ents, _ := os.ReadDir(f.e.s.InputDir); len(ents) != 1 {
		t.Errorf("input directory %v: want only the first retry's x.retry1.csv, no second copy", ents)
	}
}

func TestCommandsOnADatabaseWithoutTheSchemaSayWhatToRun(t *testing.T) {
	f := newFixture(t)
	f.exec(t, `DROP TABLE ingested_files, rejected_records`)
	err := runStatus(context.Background(), f.e, &statusFlags{Replicas: time.Hour}, nil)
	if err == nil || !strings.Contains(err.Error(), "ingester migrate") {
		t.Errorf("status without a ledger: %v", err)
	}
	if err := runFailed(context.Background(), f.e, &failedFlags{Since: time.Hour, Limit: 1, Lines: 1}, nil); err == nil || !strings.Contains(err.Error(), "ingester migrate") {
		t.Errorf("failed without a ledger: %v", err)
	}
}

func TestFailedWithNothingFailedSaysSoAndPrintsAnEmptyJSONList(t *testing.T) {
	f := newFixture(t)
	if err := runFailed(context.Background(), f.e, &failedFlags{Since: time.Hour, Limit: 5, Lines: 3, JSON: true}, nil); err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(f.out.String()) != "[]" {
		t.Errorf("JSON %q, want []", f.out)
	}
	f.out.Reset()
	if err := runFailed(context.Background(), f.e, &failedFlags{Since: time.Hour, Limit: 5, Lines: 3}, nil); err != nil || !strings.Contains(f.out.String(), "no failed files in the last 1h0m0s") {
		t.Errorf("text %q, %v", f.out, err)
	}
}
