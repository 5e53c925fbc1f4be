package load

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ecomstream/ecomstream/services/common/compress"
	"github.com/ecomstream/ecomstream/services/common/event"
	input "github.com/ecomstream/ecomstream/services/ingester/internal/source"
)

// compressedCSV is the event CSV of lines (after the header), compressed with codec.
func compressedCSV(t testing.TB, codec string, lines ...string) []byte {
	t.Helper()
	var buf strings.Builder
	w, err := compress.Writer(codec, &buf)
	if err != nil {
		t.Fatal(err)
	}
	body := strings.Join(append([]string{strings.Join(event.Columns, ",")}, lines...), "\n") + "\n"
	if _, err := w.Write([]byte(body)); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return []byte(buf.String())
}

func writeBytes(t testing.TB, dir, name string, b []byte) input.Item {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return item(name, p)
}

// rows returns n valid CSV lines with fresh event_ids.
func rows(n int) []string {
	lines := make([]string, n)
	for i := range lines {
		lines[i] = row()
	}
	return lines
}

func sha(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

func TestGzipAndZstdFilesLandAndTheLedgerHoldsTheChecksumOfTheStoredBytes(t *testing.T) {
	pool := newPool(t)
	l := &Loader{Pool: pool, Instance: "t", MaxRejected: 100}
	dir := t.TempDir()
	gz := compressedCSV(t, compress.Gzip, row(), row(), "bad,row", row())
	zst := compressedCSV(t, compress.Zstd, row(), row())
	b := load(t, l, writeBytes(t, dir, "a.csv.gz", gz), writeBytes(t, dir, "b.csv.zst", zst), writeFile(t, dir, "c.csv", row()))
	want := map[string]struct {
		inserted, rejected int64
		stored             []byte
	}{"a.csv.gz": {3, 1, gz}, "b.csv.zst": {2, 0, zst}}
	for _, f := range b.Files {
		w, ok := want[f.File.Name]
		if !ok {
			continue
		}
		if f.Outcome != OutcomeIngested || f.Inserted != w.inserted || f.Rejected != w.rejected {
			t.Errorf("%s: %+v", f.File.Name, f)
		}
		if f.SHA256 != sha(w.stored) {
			t.Errorf("%s: ledger checksum %s, want the stored bytes' %s", f.File.Name, f.SHA256, sha(w.stored))
		}
		var bytes int64
		if err := pool.QueryRow(context.Background(), "SELECT bytes FROM ingested_files WHERE file_name = $1", f.File.Name).Scan(&bytes); err != nil || bytes != int64(len(w.stored)) {
			t.Errorf("%s: ledger bytes %d (%v), want the stored %d", f.File.Name, bytes, err, len(w.stored))
		}
	}
	if n := count(t, pool, "SELECT count(*) FROM events"); n != 6 {
		t.Fatalf("events %d, want 6", n)
	}
	// The same stored bytes again are a no-op, as for a plain file.
	if got := load(t, l, writeBytes(t, dir, "b.csv.zst", zst)).Files[0].Outcome; got != OutcomeAlreadyCommitted {
		t.Fatalf("the same .zst again: %s, want already_committed", got)
	}
}

// A corrupt compressed stream is found only while its rows are being streamed into COPY
// (a truncated stream at its end, a checksum after the last row): the batch is rolled
// back with the file's error, so nothing of any file is committed, and the error is
// one that WholeFileRejection turns into a rejection (the runner then commits the other
// files one by one and this one as a whole-file rejection: ingest's tests).
func TestACorruptCompressedStreamRollsBackItsBatchAndIsAWholeFileRejection(t *testing.T) {
	pool := newPool(t)
	l := &Loader{Pool: pool, Instance: "t", MaxRejected: 100}
	dir := t.TempDir()
	lines := rows(2000)
	zst := compressedCSV(t, compress.Zstd, lines...)
	gz := compressedCSV(t, compress.Gzip, lines...)
	badCRC := append([]byte(nil), gz...)
	badCRC[len(badCRC)-8] ^= 0xff
	for _, c := range []struct {
		name   string
		stored []byte
	}{
		{"truncated.csv.zst", zst[:len(zst)*2/3]},
		{"checksum.csv.gz", badCRC},
		{"magic.csv.gz", append([]byte("PK\x03\x04"), gz...)},
		{"plain.csv.zst", []byte(strings.Join(event.Columns, ",") + "\n" + row() + "\n")},
	} {
		t.Run(c.name, func(t *testing.T) {
			good := writeBytes(t, dir, "good-"+c.name, compressedCSV(t, compress.CodecOf(c.name), row()))
			bad := writeBytes(t, dir, c.name, c.stored)
			before := count(t, pool, "SELECT count(*) FROM events")
			o := l.Load(context.Background(), byPath{}, []input.Item{good, bad})
			var fe *FileError
			if !errors.As(o.Err, &fe) || fe.Name != c.name {
				t.Fatalf("load: %v, want the FileError of %s", o.Err, c.name)
			}
			if o.Verdict != Reject || o.Reason != compress.ReasonCorrupt {
				t.Fatalf("verdict %s %q, want reject %s", o.Verdict, o.Reason, compress.ReasonCorrupt)
			}
			if n := count(t, pool, "SELECT count(*) FROM events"); n != before {
				t.Fatalf("%d rows committed from a rolled-back batch", n-before)
			}
			if n := count(t, pool, "SELECT count(*) FROM ingested_files WHERE file_name IN ($1, $2)", good.Name, bad.Name); n != 0 {
				t.Fatalf("%d ledger rows from a rolled-back batch", n)
			}
			ro := l.Reject(context.Background(), byPath{}, bad, &event.Rejection{Reason: o.Reason, Message: o.Err.Error()})
			if ro.Verdict != Done {
				t.Fatal(ro.Err)
			}
			ro.Claim.Release()
			b := ro.Batch
			if f := b.Files[0]; f.Outcome != OutcomeFailed || f.SHA256 != sha(c.stored) {
				t.Fatalf("rejection: %+v, want failed with the stored bytes' checksum", f)
			}
		})
	}
}

// A compressed bomb (a few hundred KiB that expand to 64 MiB of one line) costs the
// loader no more memory than a plain file: the stream is read through fixed buffers and
// the over-long line is cut, rejected and counted.
func TestACompressedBombIsReadInBoundedMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("64 MiB of decompression")
	}
	pool := newPool(t)
	l := &Loader{Pool: pool, Instance: "t", MaxRejected: 100}
	dir := t.TempDir()
	const expanded = 64 << 20
	for _, codec := range []string{compress.Gzip, compress.Zstd} {
		f := writeBomb(t, dir, codec, expanded)
		var b *Batch
		peak, before := peakHeap(func() { b = load(t, l, f) })
		got := b.Files[0]
		if got.Outcome != OutcomeIngested || got.Inserted != 1 || got.Rejected != 1 {
			t.Fatalf("%s bomb: %+v, want its over-long line rejected and its one good row inserted", codec, got)
		}
		t.Logf("%s: %d KiB stored, %d MiB expanded, peak heap in use %d MiB (before %d MiB)", codec, f.Size>>10, expanded>>20, peak>>20, before>>20)
		if peak > before+expanded/4 {
			t.Fatalf("%s bomb: peak heap %d MiB over %d MiB before, for %d MiB expanded: memory follows the expansion", codec, peak>>20, before>>20, expanded>>20)
		}
	}
}

// writeBomb writes a compressed file whose content is the header, one row of `expanded`
// bytes with no line end before its last byte, and one good row.
func writeBomb(t testing.TB, dir, codec string, expanded int) input.Item {
	t.Helper()
	name := "bomb-" + codec + ".csv" + compress.Ext(codec)
	p := filepath.Join(dir, name)
	out, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	w, err := compress.Writer(codec, out)
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte(strings.Join(event.Columns, ",") + "\n"))
	chunk := []byte(strings.Repeat("A", 1<<20))
	for i := 0; i < expanded>>20; i++ {
		if _, err := w.Write(chunk); err != nil {
			t.Fatal(err)
		}
	}
	w.Write([]byte("\n" + row() + "\n"))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	out.Close()
	return item(name, p)
}

// A compressed file whose size or mtime is no longer what was claimed (a writer rewrote
// it in place, here cutting it short) is not judged on the bytes it has now: the error is
// ErrChangedWhileRead, no rejection, nothing committed; claimed again as it is once
// whole, it lands.
func TestACompressedFileChangedSinceItsClaimIsRetriedNotRejected(t *testing.T) {
	pool := newPool(t)
	l := &Loader{Pool: pool, Instance: "t", MaxRejected: 100}
	dir := t.TempDir()
	lines := rows(2000)
	zst := compressedCSV(t, compress.Zstd, lines...)
	claimed := writeBytes(t, dir, "rewritten.csv.zst", zst)
	if err := os.WriteFile(claimed.Path, zst[:len(zst)/2], 0o644); err != nil {
		t.Fatal(err)
	}
	o := l.Load(context.Background(), byPath{}, []input.Item{claimed})
	if o.Verdict != Retry || !o.Own || !errors.Is(o.Err, ErrChangedWhileRead) {
		t.Fatalf("load of a file cut short after its claim: %s %v, want an own retry with ErrChangedWhileRead", o.Verdict, o.Err)
	}
	if n := count(t, pool, "SELECT count(*) FROM ingested_files"); n != 0 {
		t.Fatalf("%d ledger rows", n)
	}
	whole := writeBytes(t, dir, "rewritten.csv.zst", zst)
	if got := load(t, l, whole).Files[0]; got.Outcome != OutcomeIngested || got.Inserted != 2000 {
		t.Fatalf("once whole: %+v", got)
	}
}
