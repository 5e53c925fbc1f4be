package partition

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ecomstream/ecomstream/services/common/event"
	"github.com/ecomstream/ecomstream/services/ingester/internal/load"
	"github.com/ecomstream/ecomstream/services/ingester/internal/source"
	"github.com/ecomstream/ecomstream/services/ingester/internal/source/dir"
)

// The loader's duplicate detection works across partitions: an event stored again with
// its id and time is skipped and counted as a duplicate whichever partition holds it;
// the same id with another time (the one case the (event_id, event_time) key changes)
// is stored as a second row, and the collector's stored-duplicates query counts it.
func TestDuplicatesAcrossPartitionsAreCountedAndAReusedIDIsReported(t *testing.T) {
	p := freshDB(t)
	ctx := context.Background()
	// The loader refuses times more than 24 h ahead of the real clock: days before it.
	now := time.Now().UTC()
	at := func(d time.Duration) string { return now.Add(-d).Format(time.RFC3339) }
	if _, err := maintainer(p, now.Add(-72*time.Hour), nil).Pass(ctx, true); err != nil {
		t.Fatal(err)
	}
	files := t.TempDir()
	file := func(name string, lines ...string) source.Item {
		body := strings.Join(append([]string{strings.Join(event.Columns, ",")}, lines...), "\n") + "\n"
		path := filepath.Join(files, name)
		if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		fi, _ := os.Stat(path)
		return source.Item{Name: name, Path: path, Version: source.Version{Size: fi.Size(), ModTime: fi.ModTime()}}
	}
	line := func(id, at string) string {
		return id + "," + at + ",view,7,00000000-0000-4000-8000-000000000001,42,Books,12.50,1"
	}
	const a, b, c = "00000000-0000-4000-8000-00000000000a", "00000000-0000-4000-8000-00000000000b", "00000000-0000-4000-8000-00000000000c"
	l := &load.Loader{Pool: p, Instance: "t", MaxRejected: 100}
	open := dir.New(dir.Options{Input: files})
	commit := func(f source.Item) *load.FileResult {
		t.Helper()
		o := l.Load(ctx, open, []source.Item{f})
		if o.Verdict != load.Done {
			t.Fatal(o.Err)
		}
		o.Claim.Release()
		return o.Batch.Files[0]
	}
	// b's two times are more than a day apart, so they fall in two daily partitions
	// whatever the time of day the test runs at (24 h apart would share one in the
	// first hour of a UTC day).
	if r := commit(file("one.csv", line(a, at(48*time.Hour)), line(b, at(26*time.Hour)))); r.Inserted != 2 {
		t.Fatalf("first file: %+v", r)
	}
	r := commit(file("two.csv",
		line(a, at(48*time.Hour)), // the same event again, two days back
		line(b, at(time.Hour)),    // b's id with another time, in another partition
		line(c, at(2*time.Hour))))
	if r.Inserted != 2 || r.Duplicate != 1 {
		t.Fatalf("second file inserted %d, duplicate %d; want 2 and 1", r.Inserted, r.Duplicate)
	}
	if n := scalar[int64](t, p, "SELECT count(*) FROM events WHERE event_id = $1", a); n != 1 {
		t.Fatalf("event a stored %d times", n)
	}
	if n := scalar[int64](t, p, "SELECT count(DISTINCT tableoid) FROM events WHERE event_id = $1 AND tableoid <> $2::regclass", b, Default); n != 2 {
		t.Fatalf("reused id b is in %d partitions, want both rows kept in two", n)
	}
	// Within one file, through the staging path (its repeated row is a duplicate key): the
	// reused id with another time is stored too, as it is across files.
	const d = "00000000-0000-4000-8000-00000000000d"
	r = commit(file("three.csv", line(d, at(30*time.Hour)), line(d, at(30*time.Hour)), line(d, at(3*time.Hour))))
	if r.Inserted != 2 || r.Duplicate != 1 {
		t.Fatalf("third file inserted %d, duplicate %d; want 2 and 1", r.Inserted, r.Duplicate)
	}
	// The collector's duplicate_event_ids query (its window reaching back over them).
	if n := scalar[int64](t, p, "SELECT count(*) - count(DISTINCT event_id) FROM events WHERE event_time >= $1", now.Add(-72*time.Hour)); n != 2 {
		t.Fatalf("stored-duplicates query counts %d, want the two reused ids", n)
	}
}
