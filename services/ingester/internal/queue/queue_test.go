package queue_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ecomstream/ecomstream/services/ingester/internal/queue"
	"github.com/ecomstream/ecomstream/services/ingester/internal/watch"
)

// takeWithin polls Take until a file is handed out or d passes.
func takeWithin(q *queue.Queue, d time.Duration) []queue.File {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if f := q.Take(10, 1<<30); len(f) > 0 {
			return f
		}
		time.Sleep(10 * time.Millisecond)
	}
	return nil
}

func watched(t *testing.T, settle time.Duration) (string, *queue.Queue) {
	dir := t.TempDir()
	q := queue.New(dir, settle)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go func() {
		if err := watch.Watch(ctx, dir, q); err != nil {
			t.Error(err)
		}
	}()
	time.Sleep(50 * time.Millisecond) // let the watch be set up
	return dir, q
}

func TestRenamedFileIsTakenWithoutSettling(t *testing.T) {
	// A settle of an hour: only the rename can make the file ready.
	dir, q := watched(t, time.Hour)
	tmp := filepath.Join(dir, ".a.csv.tmp")
	os.WriteFile(tmp, []byte("x\n"), 0o644)
	if f := takeWithin(q, 300*time.Millisecond); f != nil {
		t.Fatalf("a dotfile was handed out: %v", f)
	}
	os.Rename(tmp, filepath.Join(dir, "a.csv"))
	f := takeWithin(q, 5*time.Second)
	if len(f) != 1 || f[0].Name != "a.csv" {
		t.Fatalf("renamed file not taken: %v", f)
	}
}

func TestFileWrittenInPlaceWaitsUntilStill(t *testing.T) {
	dir, q := watched(t, 600*time.Millisecond)
	p := filepath.Join(dir, "slow.csv")
	f, _ := os.Create(p)
	// A chunk every 200 ms for 2 s: never still for 600 ms while it is being written.
	for i := 0; i < 10; i++ {
		f.Write([]byte("chunk of data\n"))
		if got := q.Take(10, 1<<30); len(got) > 0 {
			t.Fatalf("file handed out while still being written (chunk %d)", i)
		}
		time.Sleep(200 * time.Millisecond)
	}
	f.Close()
	got := takeWithin(q, 5*time.Second)
	if len(got) != 1 || got[0].Size != int64(10*len("chunk of data\n")) {
		t.Fatalf("complete file: %v", got)
	}
}

func TestRescanFindsFilesAndOldestComesFirst(t *testing.T) {
	dir := t.TempDir()
	q := queue.New(dir, 0)
	now := time.Now()
	for i, name := range []string{"c.csv", "a.csv", "b.csv", ".hidden.csv", "notes.txt"} {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte("x"), 0o644)
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
	q.Retry("a.csv", 0)
	if again := q.Take(10, 1<<30); len(again) != 1 || again[0].Name != "a.csv" {
		t.Fatalf("retried file: %v", again)
	}
	files, _, _ := q.Backlog()
	if files != 3 {
		t.Fatalf("backlog %d files, want 3", files)
	}
}

// A file renamed in is complete; if it is then rewritten in place before it is taken, it
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
	os.WriteFile(filepath.Join(dir, "b\xffad.csv"), []byte("x"), 0o644)
	os.WriteFile(filepath.Join(dir, "good.csv"), []byte("x"), 0o644)
	bad, err := q.Rescan()
	if err != nil {
		t.Fatal(err)
	}
	if len(bad) != 1 || bad[0] != "b\xffad.csv" {
		t.Fatalf("bad names %q", bad)
	}
	if got := q.Take(10, 1<<30); len(got) != 1 || got[0].Name != "good.csv" {
		t.Fatalf("queued %v", got)
	}
}
