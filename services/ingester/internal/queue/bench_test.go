package queue_test

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/ecomstream/ecomstream/services/ingester/internal/queue"
)

// bigDir makes a directory of n small input files, renamed-in complete.
func bigDir(b *testing.B, n int) string {
	b.Helper()
	dir := b.TempDir()
	base := time.Now().Add(-time.Hour)
	for i := 0; i < n; i++ {
		p := filepath.Join(dir, "f"+strconv.Itoa(i)+".csv")
		if err := os.WriteFile(p, []byte("h\n1\n"), 0o644); err != nil {
			b.Fatal(err)
		}
		os.Chtimes(p, base, base.Add(time.Duration(i*7919%n)*time.Millisecond))
	}
	return dir
}

// The cost of the periodic rescan once every file is known: what a rescan costs while
// a backlog of 10,000 or 100,000 files waits (the ratio of the two is the scaling).
func BenchmarkRescanKnown(b *testing.B) {
	for _, n := range []int{10_000, 100_000} {
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			dir := bigDir(b, n)
			q := queue.New(dir, 0)
			_, _ = q.Rescan()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				_, _ = q.Rescan()
			}
		})
	}
}

// The cost of one Take of a 500-file batch (and putting it back) with 10,000 or 100,000
// files waiting: it runs under the queue's lock, which the watcher waits for.
func BenchmarkTake500(b *testing.B) {
	for _, n := range []int{10_000, 100_000} {
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			dir := bigDir(b, n)
			q := queue.New(dir, time.Hour)
			for i := 0; i < n; i++ {
				q.Renamed("f" + strconv.Itoa(i) + ".csv") // complete: Take needs no disk
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				got := q.Take(500, 1<<40)
				if len(got) != 500 {
					b.Fatalf("took %d", len(got))
				}
				for _, f := range got {
					q.Done(f.Name)
				}
				b.StopTimer()
				for _, f := range got {
					q.Renamed(f.Name)
				}
				b.StartTimer()
			}
		})
	}
}
