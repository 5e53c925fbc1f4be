package ingest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ecomstream/ecomstream/services/common/db"
	"github.com/ecomstream/ecomstream/services/common/event"
	"github.com/ecomstream/ecomstream/services/common/pgtest"
	"github.com/ecomstream/ecomstream/services/ingester/internal/source"
)

// BenchmarkDrainSmallFiles drains a directory of n small files (3 rows each) into a real
// PostgreSQL at default durability, the whole runner at work (rescans, Take, batches,
// archive moves). 10,000 files is the baseline of the same run: the per-file cost at
// 100,000 over the per-file cost at 10,000 shows whether the directory's size costs.
// Reported: files/s, and CPU seconds of this process per 1,000 files.
func BenchmarkDrainSmallFiles(b *testing.B) {
	for _, n := range []int{10_000, 100_000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) { drainSmallFiles(b, n, nil) })
	}
}

// finishingBehind is a directory source whose finishes the runner runs behind the workers.
type finishingBehind struct{ source.Source }

func (finishingBehind) FinishBehind() int { return 4 }

// BenchmarkDirFinishBehind: should a directory's finishes (renames, one fsync a batch)
// run behind the workers as a bucket's do? The same drain of 2,000 small files with them
// on the workers (inline, as main runs it) and behind them; compare files/s of one run.
func BenchmarkDirFinishBehind(b *testing.B) {
	b.Run("inline", func(b *testing.B) { drainSmallFiles(b, 2000, nil) })
	b.Run("behind", func(b *testing.B) {
		drainSmallFiles(b, 2000, func(s source.Source) source.Source { return finishingBehind{s} })
	})
}

func drainSmallFiles(b *testing.B, n int, wrap func(source.Source) source.Source) {
	var wall time.Duration
	var cpu float64
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		pool, opt := drainSetup(b, n)
		opt.Wrap = wrap
		r, _, _, _ := dirRunner(opt, pool, "bench", 1000)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		cpu0 := cpuSeconds()
		start := time.Now()
		b.StartTimer()
		go func() { defer close(done); _ = r.Run(ctx) }()
		for {
			var got int
			_ = pool.QueryRow(ctx, "SELECT count(*) FROM ingested_files").Scan(&got)
			if got >= n && inputFiles(b, opt.InputDir) == 0 {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		b.StopTimer()
		wall += time.Since(start)
		cpu += cpuSeconds() - cpu0
		cancel()
		<-done
		pool.Close()
	}
	b.ReportMetric(float64(n*b.N)/wall.Seconds(), "files/s")
	b.ReportMetric(cpu/float64(n*b.N)*1000, "cpu-s/1000files")
}

func drainSetup(b *testing.B, n int) (*pgxpool.Pool, dirOptions) {
	b.Helper()
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, pgtest.DB(b))
	if err != nil {
		b.Fatal(err)
	}
	if _, err := db.Migrate(ctx, pool); err != nil {
		b.Fatal(err)
	}
	root := b.TempDir()
	opt := dirOptions{InputDir: filepath.Join(root, "in"), ArchiveDir: filepath.Join(root, "archive"),
		FailedDir: filepath.Join(root, "failed"), RescanInterval: 2 * time.Second, Settle: time.Second,
		Options: Options{MaxBatchRecords: 20000, MaxBatchFiles: 500, Workers: 2, Grace: 5 * time.Second}}
	os.MkdirAll(opt.InputDir, 0o755)
	header := strings.Join(event.Columns, ",") + "\n"
	id := 0
	for i := 0; i < n; i++ {
		var sb strings.Builder
		sb.WriteString(header)
		for j := 0; j < 3; j++ {
			id++
			fmt.Fprintf(&sb, "00000000-0000-4000-8000-%012d,2026-11-25T10:00:00Z,view,1,00000000-0000-4000-8000-000000000001,2,books,3.00,1\n", id)
		}
		if err := os.WriteFile(filepath.Join(opt.InputDir, fmt.Sprintf("f%06d.csv", i)), []byte(sb.String()), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	return pool, opt
}

// inputFiles counts the input files left in dir (not the source's own dot-directory).
func inputFiles(b *testing.B, dir string) (n int) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		b.Fatal(err)
	}
	for _, e := range ents {
		if !strings.HasPrefix(e.Name(), ".") {
			n++
		}
	}
	return n
}

// cpuSeconds is this process's user and system CPU time so far.
func cpuSeconds() float64 {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}
