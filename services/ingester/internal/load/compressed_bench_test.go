package load

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ecomstream/ecomstream/services/common/compress"
	"github.com/ecomstream/ecomstream/services/common/event"
	input "github.com/ecomstream/ecomstream/services/ingester/internal/source"
)

// writeCodecFiles writes n files of benchRows generator-like rows, compressed with codec.
func writeCodecFiles(b *testing.B, dir, codec string, n int, seed uint64) []input.Item {
	b.Helper()
	rng := rand.New(rand.NewPCG(seed, 11))
	t0 := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	files := make([]input.Item, n)
	buf := make([]byte, 0, benchRows*160)
	for i := range files {
		buf = event.AppendSyntheticCSV(append(buf[:0], event.HeaderLine()...), rng, benchRows, t0)
		name := fmt.Sprintf("bench-%s-%05d.csv%s", codec, i, compress.Ext(codec))
		p := filepath.Join(dir, name)
		f, err := os.Create(p)
		if err != nil {
			b.Fatal(err)
		}
		w, err := compress.Writer(codec, f)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := w.Write(buf); err != nil {
			b.Fatal(err)
		}
		if err := w.Close(); err != nil {
			b.Fatal(err)
		}
		f.Close()
		files[i] = item(name, p)
	}
	return files
}

func benchLoader(b *testing.B) *Loader {
	return &Loader{Pool: newPool(b), Instance: "bench", MaxRejected: 10000}
}

// BenchmarkCompressedInputCost loads, per iteration, one batch of two plain files, one of
// two gzip files and one of two zstd files (10,000 rows each, fresh event_ids), against a
// real PostgreSQL at default durability, and reports each codec's CPU per million rows as
// a ratio to the plain batches of the same run, and its stored bytes per row.
//
//	go test -run '^$' -bench CompressedInputCost -benchtime 10x ./internal/load/
func BenchmarkCompressedInputCost(b *testing.B) {
	l := benchLoader(b)
	codecs := []string{compress.None, compress.Gzip, compress.Zstd}
	files := map[string][]input.Item{}
	stored := map[string]int64{}
	for i, c := range codecs {
		files[c] = writeCodecFiles(b, b.TempDir(), c, 2*b.N, uint64(i+1)*uint64(b.N+1))
		for _, f := range files[c] {
			stored[c] += f.Size
		}
	}
	cpu := map[string]time.Duration{}
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for _, c := range codecs {
			c0 := cpuTime()
			o := l.Load(ctx, byPath{}, files[c][2*i:2*i+2])
			if o.Verdict != Done {
				b.Fatal(o.Err)
			}
			o.Claim.Release()
			batch := o.Batch
			cpu[c] += cpuTime() - c0
			if got := batch.Rows(); got != 2*benchRows {
				b.Fatalf("%s batch committed %d rows, want %d", c, got, 2*benchRows)
			}
		}
	}
	b.StopTimer()
	rows := float64(2 * benchRows * b.N)
	b.ReportMetric(cpu[compress.None].Seconds()/rows*1e6, "plain-cpu-s/Mrow")
	for _, c := range codecs[1:] {
		b.ReportMetric(cpu[c].Seconds()/cpu[compress.None].Seconds(), c+"/plain-cpu")
		b.ReportMetric(float64(stored[c])/float64(stored[compress.None]), c+"/plain-bytes")
	}
}

// BenchmarkCompressedBombPeakHeap: the peak heap in use while the loader reads a 7 KiB
// zstd (and a 256 KiB gzip) file that expands to 256 MiB, as a ratio to the peak while it
// reads one plain file of 10,000 rows, in the same run. The bomb's one line is cut at the
// CSV reader's limit, so memory does not follow the expansion.
//
//	go test -run '^$' -bench CompressedBombPeakHeap -benchtime 1x ./internal/load/
func BenchmarkCompressedBombPeakHeap(b *testing.B) {
	l := benchLoader(b)
	dir := b.TempDir()
	const expanded = 256 << 20
	bombs := map[string]input.Item{}
	for _, c := range []string{compress.Gzip, compress.Zstd} {
		bombs[c] = writeBomb(b, dir, c, expanded)
	}
	plain := writeCodecFiles(b, dir, compress.None, b.N, 99)
	peaks := map[string]uint64{}
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		load1 := func(f input.Item) {
			o := l.Load(ctx, byPath{}, []input.Item{f})
			if o.Verdict != Done {
				b.Fatal(o.Err)
			}
			o.Claim.Release()
			batch := o.Batch
			if got := batch.Files[0].Outcome; got != OutcomeIngested && got != OutcomeAlreadyCommitted {
				b.Fatalf("%s: %s", f.Name, got)
			}
		}
		p, _ := peakHeap(func() { load1(plain[i]) })
		peaks["plain"] = max(peaks["plain"], p)
		for c, f := range bombs {
			p, _ := peakHeap(func() { load1(f) })
			peaks[c] = max(peaks[c], p)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(peaks["plain"])/(1<<20), "plain-peak-MiB")
	for _, c := range []string{compress.Gzip, compress.Zstd} {
		b.ReportMetric(float64(peaks[c])/(1<<20), c+"-bomb-peak-MiB")
		b.ReportMetric(float64(peaks[c])/float64(peaks["plain"]), c+"-bomb/plain-peak")
		b.ReportMetric(float64(bombs[c].Size)/1024, c+"-bomb-stored-KiB")
	}
}
