package load

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/rs/zerolog"

	"github.com/ecomstream/ecomstream/services/common/db"
	"github.com/ecomstream/ecomstream/services/common/event"
	"github.com/ecomstream/ecomstream/services/common/pgtest"
	input "github.com/ecomstream/ecomstream/services/ingester/internal/source"
	"github.com/ecomstream/ecomstream/services/ingester/internal/source/dir"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

func newPool(t testing.TB) *pgxpool.Pool {
	t.Helper()
	pool, err := pgxpool.New(context.Background(), pgtest.DB(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	if _, err := db.Migrate(context.Background(), pool); err != nil {
		t.Fatal(err)
	}
	return pool
}

var idSeq atomic.Uint64

// row returns a valid CSV line with a fresh event_id.
func row() string {
	n := idSeq.Add(1)
	return fmt.Sprintf("%08x-0000-4000-8000-%012x,2026-11-25T10:00:00Z,view,7,00000000-0000-4000-8000-000000000001,42,Books,12.50,1", n>>32, n)
}

func writeFile(t *testing.T, dir, name string, lines ...string) input.Item {
	t.Helper()
	body := strings.Join(append([]string{strings.Join(event.Columns, ",")}, lines...), "\n") + "\n"
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return item(name, p)
}

// item is the file at p as discovery reports it (size and modification time).
func item(name, p string) input.Item {
	fi, _ := os.Stat(p)
	return input.Item{Name: name, Path: p, Version: input.Version{Size: fi.Size(), ModTime: fi.ModTime()}}
}

// byPath opens an item with the directory source of the directory its path names (the
// tests' files live in several directories).
type byPath struct{}

func (byPath) Open(ctx context.Context, it input.Item) (io.ReadCloser, input.Version, error) {
	return dir.New(dir.Options{Input: filepath.Dir(it.Path)}).Open(ctx, it)
}

// loadOnce is one Load through the test files' opener.
func loadOnce(ctx context.Context, l *Loader, files ...input.Item) (*Batch, *Claim, error) {
	o := l.Load(ctx, byPath{}, files)
	if o.Verdict != Done {
		return nil, nil, fmt.Errorf("%s: %w", o.Verdict, o.Err)
	}
	return o.Batch, o.Claim, nil
}

// load commits files as the runner does, and again after a while for a file locked
// elsewhere (a crashed session keeps its locks until its server process notices the
// disconnect).
func load(t *testing.T, l *Loader, files ...input.Item) *Batch {
	t.Helper()
	for attempt := 0; ; attempt++ {
		b, claim, err := loadOnce(context.Background(), l, files...)
		if err != nil {
			t.Fatal(err)
		}
		claim.Release()
		if len(files) != 1 || b.Files[0].Outcome != OutcomeLocked || attempt == 100 {
			return b
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func count(t *testing.T, pool *pgxpool.Pool, q string, args ...any) int64 {
	t.Helper()
	var n int64
	if err := pool.QueryRow(context.Background(), q, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestLedgerMakesReplayANoOp(t *testing.T) {
	pool := newPool(t)
	l := &Loader{Pool: pool, Instance: "t", MaxRejected: 100}
	dir := t.TempDir()
	lines := []string{row(), row(), row()}
	f := writeFile(t, dir, "a.csv", lines...)
	b := load(t, l, f)
	if got := b.Files[0]; got.Outcome != OutcomeIngested || got.Inserted != 3 {
		t.Fatalf("first load: %+v", got)
	}
	// The same bytes under the same name: already committed, nothing loaded.
	f = writeFile(t, dir, "a.csv", lines...)
	b = load(t, l, f)
	if got := b.Files[0].Outcome; got != OutcomeAlreadyCommitted {
		t.Fatalf("replay outcome %q, want already_committed", got)
	}
	// A new file reusing the name is a new file.
	f = writeFile(t, dir, "a.csv", row(), row())
	b = load(t, l, f)
	if got := b.Files[0]; got.Outcome != OutcomeIngested || got.Inserted != 2 {
		t.Fatalf("new bytes under an old name: %+v", got)
	}
	if n := count(t, pool, "SELECT count(*) FROM events"); n != 5 {
		t.Fatalf("events: %d, want 5", n)
	}
	if n := count(t, pool, "SELECT count(*) FROM ingested_files WHERE file_name = 'a.csv'"); n != 2 {
		t.Fatalf("ledger rows for a.csv: %d, want 2", n)
	}
}

func TestDuplicatesAreStoredOnceAndCounted(t *testing.T) {
	pool := newPool(t)
	l := &Loader{Pool: pool, Instance: "t", MaxRejected: 100}
	dir := t.TempDir()
	stored := row()
	load(t, l, writeFile(t, dir, "first.csv", stored))
	shared, within := row(), row()
	// Against what is stored, within one file, and across two files of one batch.
	b := load(t, l,
		writeFile(t, dir, "b1.csv", stored, within, within, shared, row()),
		writeFile(t, dir, "b2.csv", shared, row()))
	if !b.Staging {
		t.Fatal("a batch with duplicates must have gone through staging")
	}
	var dup, ins, total int64
	for _, f := range b.Files {
		dup += f.Duplicate
		ins += f.Inserted
		total += f.Total
		if f.Total != f.Inserted+f.Rejected+f.Duplicate {
			t.Errorf("%s: %+v does not add up", f.File.Name, f)
		}
	}
	if dup != 3 || ins != 4 || total != 7 {
		t.Fatalf("inserted %d duplicate %d of %d; want 4, 3 of 7", ins, dup, total)
	}
	if n := count(t, pool, "SELECT count(*) FROM events"); n != 5 {
		t.Fatalf("events: %d, want 5", n)
	}
	if n := count(t, pool, "SELECT sum(records_duplicate) FROM ingested_files"); n != 3 {
		t.Fatalf("ledger duplicates: %d", n)
	}
}

func TestBadRowsAreQuarantinedAndGoodRowsAroundThemLand(t *testing.T) {
	pool := newPool(t)
	// A tiny rejected buffer forces several flushes in the middle of the COPY.
	l := &Loader{Pool: pool, Instance: "t", MaxRejected: 2}
	dir := t.TempDir()
	var lines []string
	for i := 0; i < 10; i++ {
		lines = append(lines, row(), "not-a-uuid,2026-11-25T10:00:00Z,view,7,00000000-0000-4000-8000-000000000001,42,Books,12.50,1")
	}
	lines = append(lines, `"unterminated,quote`, row(), "\xff\xfe,bad,encoding", row())
	b := load(t, l, writeFile(t, dir, "mixed.csv", lines...))
	f := b.Files[0]
	if f.Inserted != 12 || f.Rejected != 12 || f.Total != 24 {
		t.Fatalf("got %+v, want 12 inserted, 12 rejected of 24", f)
	}
	if n := count(t, pool, "SELECT count(*) FROM rejected_records WHERE source_file = 'mixed.csv'"); n != 12 {
		t.Fatalf("rejected_records: %d", n)
	}
	if n := count(t, pool, "SELECT count(*) FROM rejected_records WHERE reason = 'bad_event_id' AND line_number = 3"); n != 1 {
		t.Fatalf("first bad row should be at line 3 with reason bad_event_id")
	}
	if n := count(t, pool, `SELECT count(*) FROM rejected_records WHERE strpos(raw_line, '\xFF\xFE,bad') = 1`); n != 1 {
		t.Fatalf("non-UTF-8 raw line should be stored escaped")
	}
	if n := count(t, pool, "SELECT count(*) FROM events"); n != 12 {
		t.Fatalf("events: %d", n)
	}
}

func TestWholeFileRejection(t *testing.T) {
	pool := newPool(t)
	l := &Loader{Pool: pool, Instance: "t", MaxRejected: 100}
	dir := t.TempDir()
	p := filepath.Join(dir, "nocat.csv")
	os.WriteFile(p, []byte("event_id,event_time,event_type,user_id,session_id,product_id,price,quantity\n"), 0o644)
	empty := filepath.Join(dir, "empty.csv")
	os.WriteFile(empty, nil, 0o644)
	good := writeFile(t, dir, "good.csv", row())
	b := load(t, l, item("nocat.csv", p),
		item("empty.csv", empty), good)
	want := map[string]string{"nocat.csv": event.ReasonMissingColumns, "empty.csv": event.ReasonEmptyFile}
	for _, f := range b.Files {
		if r, ok := want[f.File.Name]; ok {
			if f.Outcome != OutcomeFailed || f.Failure == nil || f.Failure.Reason != r {
				t.Errorf("%s: outcome %s failure %+v, want failed %s", f.File.Name, f.Outcome, f.Failure, r)
			}
		} else if f.Outcome != OutcomeIngested || f.Inserted != 1 {
			t.Errorf("good file next to bad ones: %+v", f)
		}
	}
	if n := count(t, pool, "SELECT count(*) FROM rejected_records WHERE line_number = 0"); n != 2 {
		t.Fatalf("whole-file rejections recorded: %d, want 2", n)
	}
	if n := count(t, pool, "SELECT count(*) FROM ingested_files WHERE outcome = 'failed'"); n != 2 {
		t.Fatalf("failed files in ledger: %d", n)
	}
}

// TestConcurrentLoadersCommitEachFileOnce: many loaders race for the same files.
func TestConcurrentLoadersCommitEachFileOnce(t *testing.T) {
	pool := newPool(t)
	dir := t.TempDir()
	var files []input.Item
	for i := 0; i < 30; i++ {
		files = append(files, writeFile(t, dir, fmt.Sprintf("f%02d.csv", i), row(), row(), row()))
	}
	var wg sync.WaitGroup
	var committed atomic.Int64
	for w := 0; w < 6; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			l := &Loader{Pool: pool, Instance: fmt.Sprintf("w%d", w), MaxRejected: 100}
			for round := 0; round < 3; round++ {
				b, claim, err := loadOnce(context.Background(), l, files...)
				if err != nil {
					t.Error(err)
					return
				}
				for _, f := range b.Files {
					if f.Outcome == OutcomeIngested {
						committed.Add(1)
					}
				}
				time.Sleep(time.Millisecond)
				claim.Release()
			}
		}(w)
	}
	wg.Wait()
	if n := committed.Load(); n != 30 {
		t.Fatalf("files committed %d times in all, want 30 (each once)", n)
	}
	if n := count(t, pool, "SELECT count(*) FROM events"); n != 90 {
		t.Fatalf("events %d, want 90", n)
	}
}

// TestMemoryStaysBoundedForALargeFile streams a file far larger than the heap it may use.
func TestMemoryStaysBoundedForALargeFile(t *testing.T) {
	if testing.Short() {
		t.Skip("large file")
	}
	pool := newPool(t)
	dir := t.TempDir()
	p := filepath.Join(dir, "large.csv")
	f, _ := os.Create(p)
	fmt.Fprintln(f, strings.Join(event.Columns, ","))
	const rows = 300_000
	for i := 0; i < rows; i++ {
		if i%1000 == 0 { // some rejected rows too, to exercise the bounded reject buffer
			fmt.Fprintln(f, "bad,row")
		}
		fmt.Fprintln(f, row())
	}
	f.Close()
	fi, _ := os.Stat(p)
	l := &Loader{Pool: pool, Instance: "t", MaxRejected: 100}
	var b *Batch
	peak, _ := peakHeap(func() { b = load(t, l, item("large.csv", p)) })
	if got := b.Files[0]; got.Inserted != rows || got.Rejected != rows/1000 {
		t.Fatalf("large file: %+v", got)
	}
	t.Logf("file %d MB, peak heap in use %d MB", fi.Size()>>20, peak>>20)
	if peak > uint64(fi.Size())/2 {
		t.Fatalf("peak heap %d MB for a %d MB file: memory grows with the file", peak>>20, fi.Size()>>20)
	}
}

// A crash after COMMIT and before the file is moved: the session dies with its locks,
// the file is still in the directory, and the next claim finds it in the ledger.
func TestCrashBetweenCommitAndArchive(t *testing.T) {
	pool := newPool(t)
	dir := t.TempDir()
	f := writeFile(t, dir, "c.csv", row(), row(), row())
	l := &Loader{Pool: pool, Instance: "crashing", MaxRejected: 100}
	b, claim, err := loadOnce(context.Background(), l, f)
	if err != nil || b.Files[0].Inserted != 3 {
		t.Fatalf("load: %v %+v", err, b)
	}
	// The process dies here: its connection (and session advisory locks) go with it.
	claim.conn.Conn().Close(context.Background())
	claim.conn.Release()
	l2 := &Loader{Pool: pool, Instance: "restarted", MaxRejected: 100}
	b2 := load(t, l2, f)
	if got := b2.Files[0].Outcome; got != OutcomeAlreadyCommitted {
		t.Fatalf("after the crash: outcome %q, want already_committed", got)
	}
	if n := count(t, pool, "SELECT count(*) FROM events"); n != 3 {
		t.Fatalf("events %d, want 3", n)
	}
}

// A crash in the middle of COPY: nothing of the batch is committed, and the retry loads
// every row once.
func TestCrashInTheMiddleOfCopy(t *testing.T) {
	pool := newPool(t)
	dir := t.TempDir()
	lines := make([]string, 200_000)
	for i := range lines {
		lines[i] = row()
	}
	f := writeFile(t, dir, "big.csv", lines...)
	l := &Loader{Pool: pool, Instance: "t", MaxRejected: 100}
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		// Cancel once COPY is under way (rows are arriving in the table's heap).
		for {
			var active int
			_ = pool.QueryRow(context.Background(), "SELECT count(*) FROM pg_stat_activity WHERE query ILIKE 'copy%events%' AND state = 'active'").Scan(&active)
			if active > 0 {
				time.Sleep(20 * time.Millisecond)
				cancel()
				return
			}
			time.Sleep(2 * time.Millisecond)
		}
	}()
	if _, claim, err := loadOnce(ctx, l, f); err == nil {
		claim.Release()
		t.Skip("COPY finished before it could be interrupted; nothing to check")
	}
	if n := count(t, pool, "SELECT count(*) FROM events"); n != 0 {
		t.Fatalf("%d rows visible from an interrupted COPY", n)
	}
	if n := count(t, pool, "SELECT count(*) FROM ingested_files"); n != 0 {
		t.Fatalf("ledger row from an interrupted batch")
	}
	b := load(t, l, f)
	if b.Files[0].Inserted != 200_000 || count(t, pool, "SELECT count(*) FROM events") != 200_000 {
		t.Fatalf("retry after the crash: %+v", b.Files[0])
	}
}

// The ledger's sha256 is of the file's bytes, also for a whole-file rejection larger than
// the read buffer, so dropping the same file again is recognised.
func TestChecksumOfARejectedLargeFileIsItsBytes(t *testing.T) {
	pool := newPool(t)
	dir := t.TempDir()
	p := filepath.Join(dir, "nocol.csv")
	body := "event_id,event_time\n" + strings.Repeat("x,y\n", 100_000)
	os.WriteFile(p, []byte(body), 0o644)
	f := item("nocol.csv", p)
	l := &Loader{Pool: pool, Instance: "t", MaxRejected: 100}
	b := load(t, l, f)
	want, _, _ := fileSHA256(context.Background(), byPath{}, f)
	if b.Files[0].Outcome != OutcomeFailed || b.Files[0].SHA256 != want {
		t.Fatalf("outcome %s sha %s, want failed with sha %s", b.Files[0].Outcome, b.Files[0].SHA256, want)
	}
	if b2 := load(t, l, f); b2.Files[0].Outcome != OutcomeAlreadyCommitted {
		t.Fatalf("the same file again: %s, want already_committed", b2.Files[0].Outcome)
	}
}

// An OS error opening a file (here EMFILE: the process is out of descriptors) says
// nothing of its content: the file is left to be retried, with no ledger row, and lands
// whole once the error is gone.
func TestOSErrorOpeningAFileIsRetriedNeverFailed(t *testing.T) {
	pool := newPool(t)
	l := &Loader{Pool: pool, Instance: "t", MaxRejected: 100}
	dir := t.TempDir()
	f := writeFile(t, dir, "emfile.csv", row(), row())
	// Warm one pooled connection, so the batch needs no new descriptor before the open.
	if _, err := pool.Exec(context.Background(), "SELECT 1"); err != nil {
		t.Fatal(err)
	}
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	probe, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	next := probe.Fd() // the lowest free descriptor: the next open gets it
	probe.Close()
	low := lim
	low.Cur = uint64(next)
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &low); err != nil {
		t.Fatal(err)
	}
	b, claim, err := loadOnce(context.Background(), l, f)
	syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim) //nolint:errcheck
	if err != nil {
		t.Fatalf("load while out of descriptors: %v", err)
	}
	claim.Release()
	if got := b.Files[0]; got.Outcome != OutcomeRetry || !errors.Is(got.Err, syscall.EMFILE) {
		t.Fatalf("out of descriptors: outcome %s err %v, want retry with EMFILE", got.Outcome, got.Err)
	}
	if n := count(t, pool, "SELECT count(*) FROM ingested_files"); n != 0 {
		t.Fatalf("an OS error wrote %d ledger rows", n)
	}
	if got := load(t, l, f).Files[0]; got.Outcome != OutcomeIngested || got.Inserted != 2 {
		t.Fatalf("once descriptors are back: %+v", got)
	}
}

// Only the regular file that was claimed is read: a symlink (to a secret), a FIFO (which
// would block open forever) or another file put at the path after the claim is never
// read, and nothing of it reaches the database.
func TestOnlyTheClaimedRegularFileIsRead(t *testing.T) {
	pool := newPool(t)
	l := &Loader{Pool: pool, Instance: "t", MaxRejected: 100}
	dir := t.TempDir()
	secret := filepath.Join(t.TempDir(), "environ")
	os.WriteFile(secret, []byte("DATABASE_URL=postgres://ecomstream:hunter2@db/ecomstream\n"), 0o600)
	swaps := map[string]func(p string){
		"symlink.csv": func(p string) { os.Remove(p); os.Symlink(secret, p) },
		"fifo.csv":    func(p string) { os.Remove(p); syscall.Mkfifo(p, 0o644) },
		"other.csv": func(p string) { // created while the old one exists: another inode
			os.WriteFile(p+".new", []byte(strings.Join(event.Columns, ",")+"\n"+row()+"\n"), 0o644)
			os.Rename(p+".new", p)
		},
	}
	var files []input.Item
	for name, swap := range swaps {
		f := writeFile(t, dir, name, row())
		fi, _ := os.Lstat(f.Path)
		st := fi.Sys().(*syscall.Stat_t)
		f.Dev, f.Ino = uint64(st.Dev), st.Ino //nolint:unconvert
		swap(f.Path)
		files = append(files, f)
	}
	done := make(chan *Batch, 1)
	go func() {
		b, claim, err := loadOnce(context.Background(), l, files...)
		if err != nil {
			t.Error(err)
		}
		claim.Release()
		done <- b
	}()
	var b *Batch
	select {
	case b = <-done:
	case <-time.After(60 * time.Second):
		t.Fatal("the load blocked (a FIFO was opened)")
	}
	if b == nil {
		return
	}
	for _, f := range b.Files {
		if f.Outcome != OutcomeChanged {
			t.Errorf("%s: outcome %s, want changed", f.File.Name, f.Outcome)
		}
	}
	if n := count(t, pool, "SELECT count(*) FROM ingested_files") + count(t, pool, "SELECT count(*) FROM rejected_records") +
		count(t, pool, "SELECT count(*) FROM events"); n != 0 {
		t.Fatalf("%d rows written for files that were not read", n)
	}
}

// A failed outcome in the ledger is kept: the same bytes found again (a crash or a failed
// move after the commit) are already committed as failed, with the stored reason, so
// they go to the failed directory rather than the archive (or a delete).
func TestLedgerRemembersAFailedOutcomeAndItsReason(t *testing.T) {
	pool := newPool(t)
	l := &Loader{Pool: pool, Instance: "t", MaxRejected: 100}
	dir := t.TempDir()
	p := filepath.Join(dir, "nocol.csv")
	os.WriteFile(p, []byte("event_id,event_time\nx,y\n"), 0o644)
	f := item("nocol.csv", p)
	if got := load(t, l, f).Files[0]; got.Outcome != OutcomeFailed {
		t.Fatalf("first load: %s", got.Outcome)
	}
	got := load(t, l, f).Files[0]
	if got.Outcome != OutcomeAlreadyCommitted || got.Committed != OutcomeFailed || got.Failure == nil || got.Failure.Reason != event.ReasonMissingColumns {
		t.Fatalf("again: outcome %s committed %q failure %+v; want already_committed as failed, missing_columns", got.Outcome, got.Committed, got.Failure)
	}
}

// The rejected-row buffer holds at most MaxRejected rows of at most maxRawLine bytes
// after escaping (a line of invalid bytes grows 4x when escaped), and a file stores at
// most MaxRejectedPerFile of its rejected lines; the rest are counted.
func TestRejectedRowsAreBoundedAfterEscapingAndPerFile(t *testing.T) {
	garbage := strings.Repeat("\xff", 4000)
	if n := len(sanitize([]byte(garbage), maxRawLine)); n > maxRawLine {
		t.Fatalf("an escaped line of 4000 invalid bytes keeps %d bytes, cap %d", n, maxRawLine)
	}
	if got := sanitize([]byte("ab\xffcd"), 5); got != "ab" {
		t.Fatalf("an escape cut in two: %q", got)
	}
	pool := newPool(t)
	dir := t.TempDir()
	lines := make([]string, 10_000)
	for i := range lines {
		lines[i] = garbage
	}
	// Stored: all 10,000 with no per-file cap, or 2,500 with the cap; either way the
	// buffer is flushed at maxRejectedBytes (8 MiB), not at its 10,000 rows (40 MiB).
	for _, perFile := range []int{0, 2_500} {
		stored := int64(10_000)
		if perFile > 0 {
			stored = int64(perFile)
		}
		name := fmt.Sprintf("garbage%d.csv", perFile)
		f := writeFile(t, dir, name, lines...)
		l := &Loader{Pool: pool, Instance: "t", MaxRejected: 10_000, MaxRejectedPerFile: perFile}
		var got *FileResult
		peak, base := peakHeap(func() { got = load(t, l, f).Files[0] })
		if got.Rejected != 10_000 {
			t.Fatalf("rejected %d, want 10000 counted", got.Rejected)
		}
		if n := count(t, pool, "SELECT count(*) FROM rejected_records WHERE source_file = $1", name); n != stored {
			t.Fatalf("per-file cap %d: stored %d rejected lines, want %d", perFile, n, stored)
		}
		if n := count(t, pool, "SELECT max(octet_length(raw_line)) FROM rejected_records"); n > maxRawLine {
			t.Fatalf("a stored raw line of %d bytes, cap %d", n, maxRawLine)
		}
		bound := min(min(stored, 10_000)*maxRawLine, maxRejectedBytes+maxRawLine)
		grew := int64(peak) - int64(base)
		t.Logf("per-file cap %d: peak heap in use %d MiB (%d MiB above the start; buffer bound %d MiB)", perFile, peak>>20, grew>>20, bound>>20)
		// Twice the bound for the collector's slack (GOGC=100) plus the reader's and
		// COPY's own buffers; before escaping was counted, 10,000 rows were 160 MiB live.
		if grew > 2*bound+16<<20 {
			t.Fatalf("heap grew %d MiB for a buffer bounded at %d MiB", grew>>20, bound>>20)
		}
	}
}

// peakHeap runs f and returns the peak heap in use while it ran, and the heap before.
func peakHeap(f func()) (peak, before uint64) {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	before = ms.HeapInuse
	var p atomic.Uint64
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		var ms runtime.MemStats
		for {
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
				runtime.ReadMemStats(&ms)
				if ms.HeapInuse > p.Load() {
					p.Store(ms.HeapInuse)
				}
			}
		}
	}()
	f()
	close(stop)
	<-sampled
	return p.Load(), before
}

// Of a file that is not the event CSV (here: a binary blob with no line end), only a
// short escaped prefix of its first line is stored with the whole-file rejection.
func TestNonCSVFileKeepsOnlyAShortEscapedPrefix(t *testing.T) {
	pool := newPool(t)
	dir := t.TempDir()
	p := filepath.Join(dir, "blob.csv")
	blob := make([]byte, 64<<10)
	for i := range blob {
		blob[i] = byte(i*131 + 7)
	}
	os.WriteFile(p, blob, 0o644)
	b := load(t, &Loader{Pool: pool, Instance: "t", MaxRejected: 100}, item("blob.csv", p))
	if b.Files[0].Outcome != OutcomeFailed {
		t.Fatalf("outcome %s, want failed", b.Files[0].Outcome)
	}
	if n := count(t, pool, "SELECT max(octet_length(raw_line)) FROM rejected_records WHERE source_file = 'blob.csv'"); n > maxRawHeader {
		t.Fatalf("%d bytes of a non-CSV file stored, cap %d", n, maxRawHeader)
	}
}

// blockingSource is a COPY source that stops sending, as a frozen process would.
type blockingSource struct{ release chan struct{} }

func (s blockingSource) Next() bool             { <-s.release; return false }
func (s blockingSource) Values() ([]any, error) { return nil, nil }
func (s blockingSource) Err() error             { return errors.New("released") }

// A replica frozen in the middle of a COPY keeps its session "active" waiting for data,
// which neither statement_timeout nor keepalives end; ReapStalled does, and the claims
// that session held are released.
func TestReapStalledEndsTheSessionOfAFrozenCopy(t *testing.T) {
	url := pgtest.DB(t)
	ctx := context.Background()
	frozen, err := db.ConnectWith(ctx, zerolog.Nop(), url, db.Options{MaxConns: 1, MaxWait: 10 * time.Second,
		StatementTimeout: 200 * time.Millisecond, ApplicationName: "ecomstream-ingester/frozen"})
	if err != nil {
		t.Fatal(err)
	}
	defer frozen.Close()
	if _, err := db.Migrate(ctx, frozen); err != nil {
		t.Fatal(err)
	}
	conn, err := frozen.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock(7)"); err != nil {
		t.Fatal(err)
	}
	src := blockingSource{release: make(chan struct{})}
	copied := make(chan error, 1)
	go func() {
		_, err := conn.CopyFrom(ctx, pgx.Identifier{"events"}, columns, src)
		copied <- err
	}()
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	l := &Loader{Pool: pool}
	ended := 0
	for deadline := time.Now().Add(60 * time.Second); ended == 0; {
		if ended, err = l.ReapStalled(ctx, "ecomstream-ingester/", 500*time.Millisecond); err != nil {
			t.Fatal(err)
		}
		if time.Now().After(deadline) {
			t.Fatal("the frozen COPY's session was never ended (statement_timeout alone does not end it)")
		}
		time.Sleep(50 * time.Millisecond)
	}
	var got bool
	for deadline := time.Now().Add(30 * time.Second); !got; {
		if err := pool.QueryRow(ctx, "SELECT pg_try_advisory_lock(7)").Scan(&got); err != nil {
			t.Fatal(err)
		}
		if time.Now().After(deadline) {
			t.Fatal("the frozen session's claim was not released")
		}
	}
	close(src.release)
	if err := <-copied; err == nil {
		t.Fatal("the frozen COPY committed after its session was ended")
	}
	if n := count(t, pool, "SELECT count(*) FROM events"); n != 0 {
		t.Fatalf("%d rows from the ended COPY", n)
	}
}

// Prime readies a session for its first batch: the claim and the ledger statements are
// prepared in it (they were prepared on the first batch's path), and nothing is claimed
// or written.
func TestPrimePreparesTheBatchStatements(t *testing.T) {
	pool := newPool(t)
	ctx := context.Background()
	conn, err := pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	prepared := func() (n int64) {
		// The patterns as parameters: this statement, prepared too, does not match them.
		if err := conn.QueryRow(ctx, `SELECT count(*) FROM pg_prepared_statements WHERE strpos(statement, $1) > 0 OR strpos(statement, $2) > 0`,
			"pg_try_advisory_lock(hashtextextended", "INSERT INTO ingested_files").Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := prepared(); n != 0 {
		t.Fatalf("a new session has %d of the batch statements prepared", n)
	}
	l := &Loader{Pool: pool, Instance: "primed", MaxRejected: 100}
	if err := l.Prime(ctx, conn); err != nil {
		t.Fatal(err)
	}
	if n := prepared(); n != 2 {
		t.Fatalf("%d of the claim and ledger statements prepared, want both", n)
	}
	if n := count(t, pool, "SELECT count(*) FROM ingested_files"); n != 0 {
		t.Fatalf("priming wrote %d ledger rows", n)
	}
	var locks int64
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()").Scan(&locks); err != nil {
		t.Fatal(err)
	}
	if locks != 0 {
		t.Fatalf("priming left %d advisory locks", locks)
	}
}
