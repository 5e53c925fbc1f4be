package dir_test

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/ecomstream/ecomstream/services/ingester/internal/queue"
	"github.com/ecomstream/ecomstream/services/ingester/internal/source"
	"github.com/ecomstream/ecomstream/services/ingester/internal/source/dir"
)

// BenchmarkFinish100 archives 100 committed files per op, as the runner finishes a
// batch: in one Finish (archive.MoveAll: each directory fsynced once per batch) against
// the baseline of the same run, one Finish per file (what the runner did before: Move per
// file, two fsyncs each). Reported per file.
func BenchmarkFinish100(b *testing.B) {
	for _, mode := range []string{"one call per file (baseline)", "one call per batch"} {
		b.Run(mode, func(b *testing.B) {
			root := b.TempDir()
			d := dir.New(dir.Options{Input: filepath.Join(root, "in"), Archive: filepath.Join(root, "archive"), Failed: filepath.Join(root, "failed")})
			if err := d.Prepare(); err != nil {
				b.Fatal(err)
			}
			q := queue.New(d, 0)
			files := 0
			for i := 0; b.Loop(); i++ {
				b.StopTimer()
				for j := 0; j < 100; j++ {
					os.WriteFile(filepath.Join(root, "in", "f"+strconv.Itoa(i)+"-"+strconv.Itoa(j)+".csv"), []byte("a,b\n"), 0o644)
				}
				if err := d.List(q); err != nil {
					b.Fatal(err)
				}
				var fs []source.Finish
				for _, it := range q.Take(100, 1<<40) {
					fs = append(fs, source.Finish{Item: it, Version: it.Version, Action: source.Archive})
					q.Done(it.Name)
				}
				if len(fs) != 100 {
					b.Fatalf("took %d", len(fs))
				}
				b.StartTimer()
				var errs []error
				if mode == "one call per batch" {
					errs = d.Finish(context.Background(), fs)
				} else {
					for _, f := range fs {
						errs = append(errs, d.Finish(context.Background(), []source.Finish{f})...)
					}
				}
				for _, err := range errs {
					if err != nil {
						b.Fatal(err)
					}
				}
				files += len(fs)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(files), "ns/file")
		})
	}
}

// BenchmarkListKnown is the periodic listing once every file is known: what it costs
// while a backlog of 10,000 or 100,000 files waits (the ratio of the two is the
// scaling; a listing stats only new names).
func BenchmarkListKnown(b *testing.B) {
	for _, n := range []int{10_000, 100_000} {
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			in := b.TempDir()
			base := time.Now().Add(-time.Hour)
			for i := 0; i < n; i++ {
				p := filepath.Join(in, "f"+strconv.Itoa(i)+".csv")
				if err := os.WriteFile(p, []byte("h\n1\n"), 0o644); err != nil {
					b.Fatal(err)
				}
				os.Chtimes(p, base, base.Add(time.Duration(i*7919%n)*time.Millisecond))
			}
			d := dir.New(dir.Options{Input: in})
			q := queue.New(d, 0)
			if err := d.List(q); err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if err := d.List(q); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
