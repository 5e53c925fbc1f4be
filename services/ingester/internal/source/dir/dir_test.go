package dir_test

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ecomstream/ecomstream/services/ingester/internal/queue"
	"github.com/ecomstream/ecomstream/services/ingester/internal/source"
	"github.com/ecomstream/ecomstream/services/ingester/internal/source/dir"
	"github.com/ecomstream/ecomstream/services/ingester/internal/source/memory"
)

type clock = memory.Clock

func newClock() *clock { return memory.NewClock() }

// asides records what discovery moved aside, on top of the queue.
type asides struct {
	*queue.Queue
	mu  sync.Mutex
	got map[string]string
}

func (a *asides) Aside(name, reason string) {
	a.Queue.Aside(name, reason)
	a.mu.Lock()
	a.got[name] = reason
	a.mu.Unlock()
}

func (a *asides) reason(name string) string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.got[name]
}

type rig struct {
	in, archive, failed string
	src                 *dir.Dir
	q                   *queue.Queue
	sink                *asides
}

func newRig(t *testing.T, settle time.Duration, c *clock) *rig {
	t.Helper()
	root := t.TempDir()
	r := &rig{in: filepath.Join(root, "in"), archive: filepath.Join(root, "archive"), failed: filepath.Join(root, "failed")}
	now := time.Now
	if c != nil {
		now = c.Now
	}
	r.src = dir.New(dir.Options{Input: r.in, Archive: r.archive, Failed: r.failed, Settle: settle, Rescan: time.Hour, Now: now})
	if err := r.src.Prepare(); err != nil {
		t.Fatal(err)
	}
	r.q = queue.NewWithClock(r.src, settle, now)
	r.sink = &asides{Queue: r.q, got: map[string]string{}}
	return r
}

// watch runs discovery (inotify; the periodic listing is an hour away) until the test
// ends, and returns once events reach the queue.
func (r *rig) watch(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = r.src.Discover(ctx, r.sink) }()
	t.Cleanup(func() { cancel(); <-done })
	// A probe file is renamed in until the queue hears of it (no fixed sleep a busy
	// machine could outlast), then removed.
	probe := filepath.Join(r.in, "probe.csv")
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		os.WriteFile(probe+".tmp", []byte("x\n"), 0o644)
		os.Rename(probe+".tmp", probe)
		if n, _, _ := r.q.Backlog(); n > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the inotify watch never delivered an event")
		}
	}
	os.Remove(probe)
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if n, _, _ := r.q.Backlog(); n == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the probe's removal never reached the queue")
		}
	}
}

func (r *rig) list(t *testing.T) {
	t.Helper()
	if err := r.src.List(r.sink); err != nil {
		t.Fatal(err)
	}
}

// takeWithin polls Take until an item is handed out or d of real time passes (a
// generous deadline for inotify to deliver, never a measurement); step advances the
// clock between polls.
func takeWithin(q *queue.Queue, d time.Duration, c *clock, step time.Duration) []source.Item {
	for deadline := time.Now().Add(d); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if f := q.Take(10, 1<<30); len(f) > 0 {
			return f
		}
		if c != nil {
			c.Advance(step)
		}
	}
	return nil
}

func TestARenamedFileIsTakenWithoutSettling(t *testing.T) {
	// A settle of an hour on a clock that never moves: only the rename can make it ready.
	r := newRig(t, time.Hour, newClock())
	r.watch(t)
	tmp := filepath.Join(r.in, ".a.csv.tmp")
	os.WriteFile(tmp, []byte("x\n"), 0o644)
	if f := takeWithin(r.q, 300*time.Millisecond, nil, 0); f != nil {
		t.Fatalf("a dotfile was handed out: %v", f)
	}
	os.Rename(tmp, filepath.Join(r.in, "a.csv"))
	if f := takeWithin(r.q, 10*time.Second, nil, 0); len(f) != 1 || f[0].Name != "a.csv" {
		t.Fatalf("renamed file not taken: %v", f)
	}
}

func TestAFileWrittenInPlaceWaitsUntilStill(t *testing.T) {
	c := newClock()
	r := newRig(t, 600*time.Millisecond, c)
	r.watch(t)
	f, _ := os.Create(filepath.Join(r.in, "slow.csv"))
	// A chunk every 200 ms of the clock: never still for 600 ms while it is written. Take
	// asks the disk before it hands a file out, so a late inotify event cannot matter.
	for i := 0; i < 10; i++ {
		f.Write([]byte("chunk of data\n"))
		if got := r.q.Take(10, 1<<30); len(got) > 0 {
			t.Fatalf("file handed out while still being written (chunk %d)", i)
		}
		c.Advance(200 * time.Millisecond)
	}
	f.Close()
	got := takeWithin(r.q, 10*time.Second, c, 100*time.Millisecond)
	if len(got) != 1 || got[0].Size != int64(10*len("chunk of data\n")) {
		t.Fatalf("complete file: %v", got)
	}
}

// A writer that pauses longer than the settle duration in the middle of a row must not
// get the cut-off row read; once the pause has lasted unterminatedFactor settle
// durations, the file is moved aside with the reason "unterminated" rather than waiting
// unseen for ever.
func TestAPausedWriterMidRowIsNotTakenAndALongPauseIsMovedAside(t *testing.T) {
	c := newClock()
	r := newRig(t, time.Second, c)
	p := filepath.Join(r.in, "paused.csv")
	os.WriteFile(p, []byte("header\n00000000-0000-4000-8000-0000000000"), 0o644)
	r.list(t)
	for i := 0; i < 5; i++ {
		c.Advance(time.Second)
		if got := r.q.Take(10, 1<<30); len(got) > 0 {
			t.Fatalf("a file cut off mid-row was handed out after %d s still: %v", i+1, got)
		}
	}
	r.list(t)
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("moved before 10 settle durations: %v", err)
	}
	// The writer comes back: complete once still again.
	f, _ := os.OpenFile(p, os.O_APPEND|os.O_WRONLY, 0)
	f.Write([]byte("01,rest of the row\n"))
	f.Close()
	r.list(t)
	for i := 0; i < 3 && len(r.q.Take(10, 1<<30)) == 0; i++ {
		c.Advance(time.Second)
		if i == 2 {
			t.Fatal("the completed file was not taken once still")
		}
	}
	// Another never ends its last row.
	q := filepath.Join(r.in, "cut.csv")
	os.WriteFile(q, []byte("header\nno end"), 0o644)
	r.list(t)
	for i := 0; i < 12; i++ {
		c.Advance(time.Second)
		if got := r.q.Take(10, 1<<30); len(got) > 0 {
			t.Fatalf("an unterminated file was handed out: %v", got)
		}
	}
	r.list(t)
	if got := r.sink.reason("cut.csv"); got != dir.ReasonUnterminated {
		t.Fatalf("aside reason %q, want %q", got, dir.ReasonUnterminated)
	}
	reason, err := os.ReadFile(filepath.Join(r.failed, "cut.csv.reason.txt"))
	if err != nil || !strings.HasPrefix(string(reason), "unterminated: ") {
		t.Fatalf("reason file %q, %v", reason, err)
	}
	if n, _, _ := r.q.Backlog(); n != 1 { // paused.csv, in flight
		t.Fatalf("backlog %d", n)
	}
}

func TestAListingFindsFilesOldestFirst(t *testing.T) {
	r := newRig(t, 0, nil)
	now := time.Now()
	for i, name := range []string{"c.csv", "a.csv", "b.csv", ".hidden.csv", "notes.txt"} {
		p := filepath.Join(r.in, name)
		os.WriteFile(p, []byte("x\n"), 0o644)
		os.Chtimes(p, now, now.Add(-time.Duration(10-i)*time.Second))
	}
	r.list(t)
	var names []string
	for _, f := range r.q.Take(10, 1<<30) {
		names = append(names, f.Name)
	}
	if len(names) != 3 || names[0] != "c.csv" || names[1] != "a.csv" || names[2] != "b.csv" {
		t.Fatalf("got %v, want [c.csv a.csv b.csv] (oldest first, only visible *.csv)", names)
	}
}

// A symlink, FIFO or socket named like an input file is never queued, whatever inotify
// said about it; a listing moves each aside unread, with its reason, and so does a name
// that is not UTF-8.
func TestOnlyRegularFilesWithUTF8NamesAreQueuedTheRestMovedAside(t *testing.T) {
	r := newRig(t, 0, nil)
	secret := filepath.Join(t.TempDir(), "secret")
	os.WriteFile(secret, []byte("DATABASE_URL=postgres://u:password@h/db\n"), 0o600)
	if err := os.Symlink(secret, filepath.Join(r.in, "link.csv")); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(filepath.Join(r.in, "fifo.csv"), 0o644); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(r.in, "b\xffad.csv"), []byte("x\n"), 0o644)
	os.WriteFile(filepath.Join(r.in, "good.csv"), []byte("x\n"), 0o644)
	r.list(t)
	if got := r.q.Take(10, 1<<30); len(got) != 1 || got[0].Name != "good.csv" {
		t.Fatalf("queued %v", got)
	}
	for name, want := range map[string]string{"link.csv": dir.ReasonNotRegularFile, "fifo.csv": dir.ReasonNotRegularFile, "b\xffad.csv": dir.ReasonBadFileName} {
		if got := r.sink.reason(name); got != want {
			t.Errorf("%q: aside %q, want %q", name, got, want)
		}
		if _, err := os.Lstat(filepath.Join(r.failed, name+".reason.txt")); err != nil {
			t.Errorf("%q: no reason file: %v", name, err)
		}
	}
	if fi, err := os.Lstat(filepath.Join(r.failed, "link.csv")); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Fatalf("the symlink itself should be in failed/: %v", err)
	}
}

// A file is taken only if it is still the regular file it was: a FIFO renamed over it
// after the event is not opened (Take's disk check must not block on it).
func TestAFIFOSwappedInBeforeTakeIsNotHandedOut(t *testing.T) {
	c := newClock()
	r := newRig(t, time.Second, c)
	p := filepath.Join(r.in, "swap.csv")
	os.WriteFile(p, []byte("a,b\n"), 0o644)
	r.list(t)
	os.Remove(p)
	syscall.Mkfifo(p, 0o644)
	c.Advance(time.Minute)
	done := make(chan []source.Item, 1)
	go func() { done <- r.q.Take(10, 1<<30) }()
	select {
	case got := <-done:
		if len(got) != 0 {
			t.Fatalf("a FIFO was handed out: %v", got)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Take blocked on a FIFO")
	}
}

// A burst of inotify overflows runs one listing at a time, not one each.
func TestOverflowListingsAreCoalesced(t *testing.T) {
	r := newRig(t, 0, nil)
	for i := 0; i < 2000; i++ {
		os.WriteFile(filepath.Join(r.in, "f"+time.Duration(i).String()+".csv"), []byte("x\n"), 0o644)
	}
	for i := 0; i < 200; i++ {
		dir.Overflow(r.src, r.sink)
	}
	dir.WaitOverflow(r.src)
	if peak := dir.OverflowPeak(r.src); peak != 1 {
		t.Fatalf("%d overflow listings ran at once, want 1", peak)
	}
	if n, _, _ := r.q.Backlog(); n != 2000 {
		t.Fatalf("backlog %d after the overflow listings, want 2000", n)
	}
}

// Open reads the regular file that was taken and exactly the size fstat gave: bytes
// appended while it is read belong to the next version, so a cut last row is never read.
func TestOpenReadsExactlyTheVersionThatWasTaken(t *testing.T) {
	r := newRig(t, 0, nil)
	p := filepath.Join(r.in, "grow.csv")
	os.WriteFile(p, []byte("h\n1\n"), 0o644)
	r.list(t)
	it := r.q.Take(10, 1<<30)[0]
	rc, v, err := r.src.Open(context.Background(), it)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	f, _ := os.OpenFile(p, os.O_APPEND|os.O_WRONLY, 0)
	f.Write([]byte("2,a row being writ"))
	f.Close()
	b, _ := io.ReadAll(rc)
	if string(b) != "h\n1\n" || v.Size != 4 || v.Ino == 0 {
		t.Fatalf("read %q (version %+v), want the 4 bytes fstat saw", b, v)
	}
	// Another file renamed over the name: not the version that was taken.
	os.WriteFile(p+".new", []byte("h\n"), 0o644)
	os.Rename(p+".new", p)
	if _, _, err := r.src.Open(context.Background(), it); !errors.Is(err, source.ErrChanged) {
		t.Fatalf("open of a replaced file: %v, want ErrChanged", err)
	}
	os.Remove(p)
	if _, _, err := r.src.Open(context.Background(), it); !errors.Is(err, source.ErrGone) {
		t.Fatalf("open of a removed file: %v, want ErrGone", err)
	}
}

// Finish archives, deletes and fails a batch in one call, each only if its name still
// holds the version that was read; a directory refuses to keep a finished file.
func TestFinishTakesOutOnlyTheVersionThatWasReadAndRefusesKeep(t *testing.T) {
	r := newRig(t, 0, nil)
	for _, name := range []string{"arch.csv", "del.csv", "fail.csv", "keep.csv", "replaced.csv"} {
		os.WriteFile(filepath.Join(r.in, name), []byte("h\n"), 0o644)
	}
	r.list(t)
	taken := map[string]source.Item{}
	for _, it := range r.q.Take(10, 1<<30) {
		taken[it.Name] = it
	}
	rp := filepath.Join(r.in, "replaced.csv")
	os.WriteFile(rp+".new", []byte("new bytes\n"), 0o644)
	os.Rename(rp+".new", rp)
	fin := func(name string, a source.Action) source.Finish {
		return source.Finish{Item: taken[name], Version: taken[name].Version, Action: a, Reason: "why"}
	}
	errs := r.src.Finish(context.Background(), []source.Finish{fin("arch.csv", source.Archive), fin("del.csv", source.Delete),
		fin("fail.csv", source.Fail), fin("keep.csv", source.Keep), fin("replaced.csv", source.Archive)})
	if errs[0] != nil || errs[1] != nil || errs[2] != nil {
		t.Fatalf("archive, delete, fail: %v", errs[:3])
	}
	if errs[3] == nil || !strings.Contains(errs[3].Error(), "cannot keep") {
		t.Fatalf("keep: %v, want a refusal", errs[3])
	}
	if !errors.Is(errs[4], source.ErrChanged) {
		t.Fatalf("a replaced file: %v, want ErrChanged", errs[4])
	}
	for p, want := range map[string]bool{filepath.Join(r.archive, "arch.csv"): true, filepath.Join(r.in, "arch.csv"): false,
		filepath.Join(r.in, "del.csv"): false, filepath.Join(r.failed, "fail.csv.reason.txt"): true,
		filepath.Join(r.in, "keep.csv"): true} {
		if _, err := os.Stat(p); (err == nil) != want {
			t.Errorf("%s exists: %v, want %v", p, err == nil, want)
		}
	}
	if b, _ := os.ReadFile(rp); string(b) != "new bytes\n" {
		t.Fatal("the new version was moved away")
	}
	// Finishing again what another replica already finished.
	if err := r.src.Finish(context.Background(), []source.Finish{fin("arch.csv", source.Archive)})[0]; !errors.Is(err, source.ErrGone) {
		t.Fatalf("finish of a file already gone: %v, want ErrGone", err)
	}
}
