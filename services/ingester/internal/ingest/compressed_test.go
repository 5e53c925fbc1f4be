package ingest

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ecomstream/ecomstream/services/common/compress"
	"github.com/ecomstream/ecomstream/services/common/event"
	"github.com/ecomstream/ecomstream/services/ingester/internal/load"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// placeCompressed places name (by rename) holding rows good rows compressed as its
// suffix says, after mangle has had its way with the stored bytes.
func placeCompressed(t *testing.T, dir, name string, rows int, mangle func([]byte) []byte) {
	t.Helper()
	var csv strings.Builder
	csv.WriteString(strings.Join(event.Columns, ",") + "\n")
	for range rows {
		seq++
		fmt.Fprintf(&csv, "00000000-0000-4000-8000-%012d,2026-11-25T10:00:00Z,view,1,00000000-0000-4000-8000-000000000001,2,books,3.00,1\n", seq)
	}
	var stored bytes.Buffer
	w, err := compress.Writer(compress.CodecOf(name), &stored)
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte(csv.String()))
	w.Close()
	b := stored.Bytes()
	if mangle != nil {
		b = mangle(b)
	}
	tmp := filepath.Join(dir, "."+name+".tmp")
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
		t.Fatal(err)
	}
}

// Corrupt compressed files in a batch of good ones: the good files land whole, each
// corrupt one is committed as a whole-file rejection with its reason (no row of it) and
// moved to the failed directory with its reason file, and none is retried.
func TestACorruptCompressedFileIsRejectedWithItsReasonAndItsBatchLands(t *testing.T) {
	r := startRunner(t, func(o *dirOptions) { o.Workers = 1 })
	r.cancel()
	<-r.done
	in := r.opt.InputDir
	// Placed before the runner starts, so they share one batch.
	placeCompressed(t, in, "good.csv.gz", 30, nil)
	placeCompressed(t, in, "good.csv.zst", 20, nil)
	placeCompressed(t, in, "truncated.csv.zst", 500, func(b []byte) []byte { return b[:len(b)/2] })
	placeCompressed(t, in, "garbled.csv.gz", 500, func(b []byte) []byte {
		b = append([]byte(nil), b...)
		for i := len(b) / 3; i < len(b)/3+16; i++ {
			b[i] ^= 0x5a
		}
		return b
	})
	place(t, in, "plain.csv", "books")
	run, _, m, _ := dirRunner(r.opt, r.pool, "t", 100)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = run.Run(ctx) }()
	defer func() { cancel(); <-done }()
	waitLedger(t, r.pool, 5)
	var events int
	r.pool.QueryRow(context.Background(), "SELECT count(*) FROM events").Scan(&events)
	if events != 51 {
		t.Fatalf("events %d, want 51 (the good files' rows, none of the corrupt ones')", events)
	}
	for _, name := range []string{"truncated.csv.zst", "garbled.csv.gz"} {
		var outcome, reason string
		var rows int
		r.pool.QueryRow(context.Background(), "SELECT outcome FROM ingested_files WHERE file_name = $1", name).Scan(&outcome)
		r.pool.QueryRow(context.Background(), "SELECT reason FROM rejected_records WHERE source_file = $1 AND line_number = 0", name).Scan(&reason)
		r.pool.QueryRow(context.Background(), "SELECT count(*) FROM events WHERE source_file = $1", name).Scan(&rows)
		if outcome != load.OutcomeFailed || reason != compress.ReasonCorrupt || rows != 0 {
			t.Errorf("%s: outcome %q reason %q rows %d, want failed, %s, 0", name, outcome, reason, rows, compress.ReasonCorrupt)
		}
		waitFile(t, filepath.Join(r.opt.FailedDir, name+".reason.txt"))
		why, _ := os.ReadFile(filepath.Join(r.opt.FailedDir, name+".reason.txt"))
		if !strings.HasPrefix(string(why), compress.ReasonCorrupt) {
			t.Errorf("%s reason file: %q", name, why)
		}
	}
	for _, name := range []string{"good.csv.gz", "good.csv.zst", "plain.csv"} {
		waitFile(t, filepath.Join(r.opt.ArchiveDir, name))
	}
	if n := testutil.ToFloat64(m.Retries.WithLabelValues("read")); n != 0 {
		t.Fatalf("%v read retries: a corrupt stream is a verdict, not a retry", n)
	}
}
