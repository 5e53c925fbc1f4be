package load

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ecomstream/ecomstream/services/common/db"
	"github.com/ecomstream/ecomstream/services/common/event"
	"github.com/ecomstream/ecomstream/services/common/pgtest"
	input "github.com/ecomstream/ecomstream/services/ingester/internal/source"
)

// benchRows is the rows of one benchmark file (the bench's file size).
const benchRows = 10000

// writeBenchFiles writes n files of benchRows generator-like rows with fresh event_ids.
func writeBenchFiles(b *testing.B, dir string, n int) []input.Item {
	b.Helper()
	rng := rand.New(rand.NewPCG(uint64(n), 7))
	t0 := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	files := make([]input.Item, n)
	buf := make([]byte, 0, benchRows*160)
	for i := range files {
		buf = event.AppendSyntheticCSV(append(buf[:0], event.HeaderLine()...), rng, benchRows, t0)
		name := fmt.Sprintf("bench-%05d.csv", i)
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, buf, 0o644); err != nil {
			b.Fatal(err)
		}
		files[i] = item(name, p)
	}
	return files
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkLoad is the ingester's load path (read, parse, validate, COPY, ledger) on
// files of 10,000 rows, two files per transaction, against a real PostgreSQL. Its
// figure of merit is the process's CPU per million rows (cpu-s/Mrow), which the shared
// machine's load does not distort as it does wall time. Profile it with
//
//	go test -run '^$' -bench Load -benchtime 20x -cpuprofile cpu.out ./internal/load/
//	go tool pprof -top -focus 'load\.' cpu.out
func BenchmarkLoad(b *testing.B) {
	pool, err := pgxpool.New(context.Background(), pgtest.DB(b))
	if err != nil {
		b.Fatal(err)
	}
	defer pool.Close()
	if _, err := db.Migrate(context.Background(), pool); err != nil {
		b.Fatal(err)
	}
	l := &Loader{Pool: pool, Instance: "bench", MaxRejected: 10000}
	files := writeBenchFiles(b, b.TempDir(), 2*b.N)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cpuTime()
	for i := 0; i < b.N; i++ {
		batch, claim, err := loadOnce(ctx, l, files[2*i:2*i+2]...)
		if err != nil {
			b.Fatal(err)
		}
		claim.Release()
		if got := batch.Rows(); got != 2*benchRows {
			b.Fatalf("batch committed %d rows, want %d", got, 2*benchRows)
		}
	}
	cpu := cpuTime() - cpu0
	b.StopTimer()
	rows := float64(2 * benchRows * b.N)
	b.ReportMetric(cpu.Seconds()/rows*1e6, "cpu-s/Mrow")
	b.ReportMetric(rows/b.Elapsed().Seconds(), "rows/s")
}
