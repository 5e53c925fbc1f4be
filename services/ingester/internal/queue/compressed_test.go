package queue_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ecomstream/ecomstream/services/ingester/internal/queue"
)

// A compressed file written in place has no line end to wait for: it is taken once its
// size and mtime have been still for the settle duration (and not before), where a plain
// file cut off mid-row would still wait.
func TestCompressedFileWrittenInPlaceIsTakenOnceStill(t *testing.T) {
	c := newClock()
	dir := t.TempDir()
	q := queue.NewWithClock(dir, time.Second, c.now)
	for _, name := range []string{"a.csv.gz", "b.csv.zst"} {
		os.WriteFile(filepath.Join(dir, name), []byte("\x1f\x8b\x08 stored bytes with no line end"), 0o644)
		q.Written(name)
	}
	if got := q.Take(10, 1<<30); len(got) > 0 {
		t.Fatalf("taken before it was still: %v", got)
	}
	c.advance(time.Second)
	if got := q.Take(10, 1<<30); len(got) != 2 {
		t.Fatalf("still compressed files taken: %v, want both", got)
	}
}
