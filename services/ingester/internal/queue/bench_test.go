package queue_test

import (
	"strconv"
	"testing"
	"time"

	"github.com/ecomstream/ecomstream/services/ingester/internal/queue"
	"github.com/ecomstream/ecomstream/services/ingester/internal/source"
)

// The cost of one Take of a 500-item batch (and putting it back) with 10,000 or 100,000
// items waiting: it runs under the queue's lock, which discovery waits for. The
// listing's cost is the source's (source/dir's BenchmarkListKnown).
func BenchmarkTake500(b *testing.B) {
	for _, n := range []int{10_000, 100_000} {
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			q := queue.New(nil, time.Hour)
			base := time.Now().Add(-time.Hour)
			items := make(map[string]source.Item, n)
			for i := 0; i < n; i++ {
				it := source.Item{Name: "f" + strconv.Itoa(i) + ".csv",
					Version: source.Version{Size: 4, ModTime: base.Add(time.Duration(i*7919%n) * time.Millisecond)}}
				items[it.Name] = it
				q.Found(it, true) // complete: Take needs no source
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				got := q.Take(500, 1<<40)
				if len(got) != 500 {
					b.Fatalf("took %d", len(got))
				}
				for _, it := range got {
					q.Done(it.Name)
				}
				b.StopTimer()
				for _, it := range got {
					q.Found(items[it.Name], true)
				}
				b.StartTimer()
			}
		})
	}
}
