package e2e

import (
	"context"
	"fmt"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// median of xs (xs is not changed).
func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// positiveEnv is the positive number the variable name holds, or def when it is unset.
func positiveEnv(tb testing.TB, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		tb.Fatalf("%s=%q: not a positive number", name, v)
	}
	return n
}

// medianRatio is the median of a[i]/b[i]: the ratio of two measurements taken side by
// side in each round.
func medianRatio(a, b []float64) float64 {
	r := make([]float64, min(len(a), len(b)))
	for i := range r {
		r[i] = a[i] / b[i]
	}
	if len(r) == 0 {
		return 0
	}
	return median(r)
}

// sampleWaits, with ECOMSTREAM_BENCH_WAITS set, samples every 20 ms what the active
// sessions of the database at url wait for (pg_stat_activity's wait event; "CPU" when
// none) until the returned function is called, which logs the shares: where a drain's
// PostgreSQL time goes (lock waits, WAL, the client) without a profiler, and the mean
// files a batch. Without it, it does nothing.
func sampleWaits(tb testing.TB, url string) (stop func()) {
	if os.Getenv("ECOMSTREAM_BENCH_WAITS") == "" {
		return func() {}
	}
	p := pool(tb, url)
	ctx, cancel := context.WithCancel(context.Background())
	counts := map[string]int{}
	samples := 0
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for ; ctx.Err() == nil; time.Sleep(20 * time.Millisecond) {
			rows, err := p.Query(ctx, `SELECT coalesce(wait_event_type || ':' || wait_event, 'CPU'), count(*)
				FROM pg_stat_activity WHERE datname = current_database() AND state = 'active' AND pid <> pg_backend_pid()
				GROUP BY 1`)
			if err != nil {
				continue // the drain ended (cancelled) or a sample failed: only what is read counts
			}
			samples++
			for rows.Next() {
				var w string
				var n int
				if rows.Scan(&w, &n) == nil {
					counts[w] += n
				}
			}
			rows.Close()
		}
	}()
	return func() {
		cancel()
		wg.Wait()
		var keys []string
		for k := range counts {
			keys = append(keys, k)
		}
		sort.Slice(keys, func(i, j int) bool { return counts[keys[i]] > counts[keys[j]] })
		var b strings.Builder
		for _, k := range keys {
			fmt.Fprintf(&b, " %s=%.2f", k, float64(counts[k])/float64(max(samples, 1)))
		}
		// A batch's events share their transaction's start (ingested_at).
		var perBatch float64
		_ = p.QueryRow(context.Background(), `SELECT count(DISTINCT source_file)::float8 / greatest(count(DISTINCT ingested_at), 1)
			FROM events`).Scan(&perBatch)
		tb.Logf("%.1f files a batch; active sessions by wait event (mean over %d samples):%s", perBatch, samples, b.String())
	}
}
