package queue_test

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ecomstream/ecomstream/services/ingester/internal/queue"
	"github.com/ecomstream/ecomstream/services/ingester/internal/watch"
)

// clock is a hand-stepped clock: the settle rule is tested on it, not on sleeps, so a
// busy machine cannot make these tests flake.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)} }

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// takeWithin polls Take until a file is handed out or d of real time passes (a generous
// deadline for inotify to deliver, never a measurement); step advances the clock
// between polls.
func takeWithin(q *queue.Queue, d time.Duration, c *clock, step time.Duration) []queue.File {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if f := q.Take(10, 1<<30); len(f) > 0 {
			return f
		}
		if c != nil {
			c.advance(step)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return nil
}

func watched(t *testing.T, settle time.Duration, c *clock) (string, *queue.Queue) {
	dir := t.TempDir()
	now := time.Now
	if c != nil {
		now = c.now
	}
	q := queue.NewWithClock(dir, settle, now)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go func() {
		if err := watch.Watch(ctx, dir, q); err != nil {
			t.Error(err)
		}
	}()
	waitWatching(t, dir, q)
	return dir, q
}

// waitWatching returns once inotify events reach q: a probe file is renamed in until the
// queue hears of it (no fixed sleep that a busy machine could outlast), then removed.
func waitWatching(t *testing.T, dir string, q *queue.Queue) {
	t.Helper()
	probe := filepath.Join(dir, "probe.csv")
	for deadline := time.Now().Add(30 * time.Second); ; {
		os.WriteFile(probe+".tmp", []byte("x\n"), 0o644)
		os.Rename(probe+".tmp", probe)
		if n, _, _ := q.Backlog(); n > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the inotify watch never delivered an event")
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Gone from disk; its deletion event drops it from the queue.
	os.Remove(probe)
	for deadline := time.Now().Add(30 * time.Second); ; {
		if n, _, _ := q.Backlog(); n == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the probe's removal never reached the queue")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestRenamedFileIsTakenWithoutSettling(t *testing.T) {
	// A settle of an hour on a clock that never moves: only the rename can make it ready.
	dir, q := watched(t, time.Hour, newClock())
	tmp := filepath.Join(dir, ".a.csv.tmp")
	os.WriteFile(tmp, []byte("x\n"), 0o644)
	if f := takeWithin(q, 300*time.Millisecond, nil, 0); f != nil {
		t.Fatalf("a dotfile was handed out: %v", f)
	}
	os.Rename(tmp, filepath.Join(dir, "a.csv"))
	f := takeWithin(q, 10*time.Second, nil, 0)
	if len(f) != 1 || f[0].Name != "a.csv" {
		t.Fatalf("renamed file not taken: %v", f)
	}
}

func TestFileWrittenInPlaceWaitsUntilStill(t *testing.T) {
	c := newClock()
	dir, q := watched(t, 600*time.Millisecond, c)
	p := filepath.Join(dir, "slow.csv")
	f, _ := os.Create(p)
	// A chunk every 200 ms of the clock: never still for 600 ms while it is written. Take
	// checks the disk before it hands a file out, so a late inotify event cannot matter.
	for i := 0; i < 10; i++ {
		f.Write([]byte("chunk of data\n"))
		if got := q.Take(10, 1<<30); len(got) > 0 {
			t.Fatalf("file handed out while still being written (chunk %d)", i)
		}
		c.advance(200 * time.Millisecond)
	}
	f.Close()
	got := takeWithin(q, 10*time.Second, c, 100*time.Millisecond)
	if len(got) != 1 || got[0].Size != int64(10*len("chunk of data\n")) {
		t.Fatalf("complete file: %v", got)
	}
}

// A writer that pauses longer than the settle duration in the middle of a row must not
// get the cut-off row read: a file written in place is complete only when it is still
// and ends with a line terminator.
func TestPausedWriterMidRowIsNotTaken(t *testing.T) {
	c := newClock()
	dir := t.TempDir()
	q := queue.NewWithClock(dir, time.Second, c.now)
	p := filepath.Join(dir, "paused.csv")
	os.WriteFile(p, []byte("header\n00000000-0000-4000-8000-0000000000"), 0o644)
	q.Written("paused.csv")
	for i := 0; i < 5; i++ {
		c.advance(time.Hour)
		if got := q.Take(10, 1<<30); len(got) > 0 {
			t.Fatalf("a file cut off mid-row was handed out after %d h still: %v", i+1, got)
		}
	}
	f, _ := os.OpenFile(p, os.O_APPEND|os.O_WRONLY, 0)
	f.Write([]byte("01,rest of the row\n"))
	f.Close()
	q.Written("paused.csv")
	if got := q.Take(10, 1<<30); len(got) > 0 {
		t.Fatal("taken before it settled again")
	}
	c.advance(time.Second)
	if got := q.Take(10, 1<<30); len(got) != 1 {
		t.Fatal("the completed file was not taken once still")
	}
}

func TestRescanFindsFilesAndOldestComesFirst(t *testing.T) {
	dir := t.TempDir()
	q := queue.New(dir, 0)
	now := time.Now()
	for i, name := range []string{"c.csv", "a.csv", "b.csv", ".hidden.csv", "notes.txt"} {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte("x\n"), 0o644)
		os.Chtimes(p, now, now.Add(-time.Duration(10-i)*time.Second))
	}
	if _, err := q.Rescan(); err != nil {
		t.Fatal(err)
	}
	got := q.Take(10, 1<<30)
	var names []string
	for _, f := range got {
		names = append(names, f.Name)
	}
	if len(names) != 3 || names[0] != "c.csv" || names[1] != "a.csv" || names[2] != "b.csv" {
		t.Fatalf("got %v, want [c.csv a.csv b.csv] (oldest first, only visible *.csv)", names)
	}
	// In flight files are not handed out twice; a retried one comes back after its delay.
	if again := q.Take(10, 1<<30); len(again) != 0 {
		t.Fatalf("in-flight files handed out twice: %v", again)
	}
	q.Defer("a.csv", 0)
	if again := q.Take(10, 1<<30); len(again) != 1 || again[0].Name != "a.csv" {
		t.Fatalf("retried file: %v", again)
	}
	files, _, _ := q.Backlog()
	if files != 3 {
		t.Fatalf("backlog %d files, want 3", files)
	}
}

// Take picks the oldest of many with a bounded heap: the order must still be exact.
func TestTakeHandsOutTheOldestOfManyInOrder(t *testing.T) {
	dir := t.TempDir()
	q := queue.New(dir, 0)
	base := time.Now().Add(-time.Hour)
	const n = 300
	for i := 0; i < n; i++ {
		// Written in an order unrelated to age.
		j := (i * 7919) % n
		p := filepath.Join(dir, "f"+time.Duration(j).String()+".csv")
		os.WriteFile(p, []byte("x\n"), 0o644)
		os.Chtimes(p, base, base.Add(time.Duration(j)*time.Second))
	}
	if _, err := q.Rescan(); err != nil {
		t.Fatal(err)
	}
	var last time.Time
	taken := 0
	for {
		got := q.Take(7, 1<<30)
		if len(got) == 0 {
			break
		}
		for _, f := range got {
			if f.ModTime.Before(last) {
				t.Fatalf("%s (mtime %s) handed out after a younger file (%s)", f.Name, f.ModTime, last)
			}
			last = f.ModTime
			taken++
		}
	}
	if taken != n {
		t.Fatalf("took %d of %d files", taken, n)
	}
}

// A file that keeps failing is parked: out of Take, still in the backlog, and back with
// a fresh start once a new version is written.
func TestParkedFileWaitsForANewVersion(t *testing.T) {
	c := newClock()
	dir := t.TempDir()
	q := queue.NewWithClock(dir, 0, c.now)
	p := filepath.Join(dir, "bad.csv")
	os.WriteFile(p, []byte("x\n"), 0o644)
	q.Renamed("bad.csv")
	if got := q.Take(10, 1<<30); len(got) != 1 {
		t.Fatal("not taken")
	}
	q.Park("bad.csv")
	c.advance(24 * time.Hour)
	if got := q.Take(10, 1<<30); len(got) != 0 {
		t.Fatal("a parked file was handed out")
	}
	if n, _, _ := q.Backlog(); n != 1 || q.Parked() != 1 {
		t.Fatalf("backlog %d, parked %d; want 1 and 1", n, q.Parked())
	}
	os.WriteFile(p, []byte("a new version\n"), 0o644)
	q.Written("bad.csv")
	if got := q.Take(10, 1<<30); len(got) != 1 || q.Parked() != 0 {
		t.Fatalf("the new version was not taken: %v", got)
	}
}

// A symlink, FIFO or socket named like an input file is never queued, whatever inotify
// said about it; Rescan reports each for moving aside.
func TestOnlyRegularFilesAreQueued(t *testing.T) {
	dir := t.TempDir()
	q := queue.New(dir, 0)
	secret := filepath.Join(t.TempDir(), "secret")
	os.WriteFile(secret, []byte("DATABASE_URL=postgres://u:password@h/db\n"), 0o600)
	if err := os.Symlink(secret, filepath.Join(dir, "link.csv")); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(filepath.Join(dir, "fifo.csv"), 0o644); err != nil {
		t.Fatal(err)
	}
	q.Renamed("link.csv")
	q.Renamed("fifo.csv")
	q.Written("link.csv")
	aside, err := q.Rescan()
	if err != nil {
		t.Fatal(err)
	}
	if got := q.Take(10, 1<<30); len(got) != 0 {
		t.Fatalf("non-regular files were queued: %v", got)
	}
	reasons := map[string]string{}
	for _, a := range aside {
		reasons[a.Name] = a.Reason
	}
	if reasons["link.csv"] != queue.ReasonNotRegularFile || reasons["fifo.csv"] != queue.ReasonNotRegularFile {
		t.Fatalf("aside %v", aside)
	}
}

// A renamed file is taken only if it is still the regular file it was: a FIFO renamed
// over it after the event is not opened (Take's disk check must not block on it).
func TestFIFOSwappedInBeforeTakeIsNotHandedOut(t *testing.T) {
	c := newClock()
	dir := t.TempDir()
	q := queue.NewWithClock(dir, time.Second, c.now)
	p := filepath.Join(dir, "swap.csv")
	os.WriteFile(p, []byte("a,b\n"), 0o644)
	q.Written("swap.csv")
	os.Remove(p)
	syscall.Mkfifo(p, 0o644)
	c.advance(time.Minute)
	done := make(chan []queue.File, 1)
	go func() { done <- q.Take(10, 1<<30) }()
	select {
	case got := <-done:
		if len(got) != 0 {
			t.Fatalf("a FIFO was handed out: %v", got)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Take blocked on a FIFO")
	}
}

// A burst of inotify overflows runs one rescan at a time, not one listing each.
func TestOverflowRescansAreCoalesced(t *testing.T) {
	dir := t.TempDir()
	for i := 0; i < 2000; i++ {
		os.WriteFile(filepath.Join(dir, "f"+time.Duration(i).String()+".csv"), []byte("x\n"), 0o644)
	}
	q := queue.New(dir, 0)
	for i := 0; i < 200; i++ {
		q.Overflow()
	}
	q.WaitOverflow()
	if peak := queue.OverflowPeak(q); peak != 1 {
		t.Fatalf("%d overflow rescans ran at once, want 1", peak)
	}
	if n, _, _ := q.Backlog(); n != 2000 {
		t.Fatalf("backlog %d after the overflow rescans, want 2000", n)
	}
}

// A renamed file is complete; if it is then rewritten in place before it is taken, it
// must settle again like any file written in place.
func TestRenamedFileRewrittenInPlaceSettlesAgain(t *testing.T) {
	dir := t.TempDir()
	q := queue.New(dir, time.Hour)
	p := filepath.Join(dir, "x.csv")
	os.WriteFile(p, []byte("first version\n"), 0o644)
	q.Renamed("x.csv")
	os.WriteFile(p, []byte("second, longer version\n"), 0o644) // truncate and rewrite in place
	q.Written("x.csv")
	if got := q.Take(10, 1<<30); len(got) != 0 {
		t.Fatalf("a file being rewritten in place was handed out: %v", got)
	}
}

func TestNonUTF8NamesAreReportedNotQueued(t *testing.T) {
	dir := t.TempDir()
	q := queue.New(dir, 0)
	os.WriteFile(filepath.Join(dir, "b\xffad.csv"), []byte("x\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "good.csv"), []byte("x\n"), 0o644)
	bad, err := q.Rescan()
	if err != nil {
		t.Fatal(err)
	}
	if len(bad) != 1 || bad[0].Name != "b\xffad.csv" || bad[0].Reason != queue.ReasonBadFileName {
		t.Fatalf("bad names %q", bad)
	}
	if got := q.Take(10, 1<<30); len(got) != 1 || got[0].Name != "good.csv" {
		t.Fatalf("queued %v", got)
	}
}
