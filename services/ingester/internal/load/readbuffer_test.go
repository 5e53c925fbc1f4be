package load

import (
	"context"
	"runtime"
	"testing"
	"time"
)

// A batch reads its files through a read buffer that earlier batches used: one made for
// every file (256 KiB allocated and cleared for an object of a hundred rows) was 6 % of
// the ingester's CPU with the collections it caused at 100 objects a second.
func TestBatchesReuseTheReadBuffer(t *testing.T) {
	f := writeFile(t, t.TempDir(), "small.csv", row(), row())
	read := func() {
		fr := &FileResult{File: f, Outcome: OutcomeIngested}
		src := newSource([]*FileResult{fr}, false, time.Now(), 1, 0)
		src.ctx, src.open = context.Background(), byPath{}
		rows := 0
		for src.Next() {
			rows++
		}
		src.close()
		if src.Err() != nil || rows != 2 {
			t.Fatalf("%d rows, %v", rows, src.Err())
		}
	}
	read() // the first batch makes the buffer
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	read()
	runtime.ReadMemStats(&after)
	if n := after.TotalAlloc - before.TotalAlloc; n >= readBuffer {
		t.Fatalf("a batch of one small file allocated %d bytes, a read buffer (%d) among them", n, readBuffer)
	}
}
