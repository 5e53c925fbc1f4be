package dir_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// A compressed file written in place has no line end to wait for: it is taken once its
// size and mtime have been still for the settle duration (not before), and is never moved
// aside as unterminated.
func TestACompressedFileWrittenInPlaceIsTakenOnceStill(t *testing.T) {
	c := newClock()
	r := newRig(t, time.Second, c)
	for _, name := range []string{"a.csv.gz", "b.csv.zst"} {
		os.WriteFile(filepath.Join(r.in, name), []byte("\x1f\x8b\x08 stored bytes with no line end"), 0o644)
	}
	r.list(t)
	if got := r.q.Take(10, 1<<30); len(got) > 0 {
		t.Fatalf("taken before it was still: %v", got)
	}
	c.Advance(time.Second)
	if got := r.q.Take(10, 1<<30); len(got) != 2 {
		t.Fatalf("still compressed files taken: %v, want both", got)
	}
}
