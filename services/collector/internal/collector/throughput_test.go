package collector

import (
	"testing"
	"time"
)

func TestThroughputAndWindowCounts(t *testing.T) {
	pool := newDB(t)
	insertFiles(t, pool,
		file{latency: 1, age: 10, inserted: 100, rejected: 2, duplicate: 3},
		file{latency: 1, age: 50, inserted: 200},
		file{latency: 1, age: 20, failed: true, rejected: 1},
		file{latency: 1, age: 3600, inserted: 5000}, // outside the window
	)
	m := collect(t, &Throughput{DB: pool, Window: 100 * time.Second})
	for key, want := range map[string]float64{
		`ecomstream_collector_window_records{outcome="inserted"}`:  300,
		`ecomstream_collector_window_records{outcome="rejected"}`:  3,
		`ecomstream_collector_window_records{outcome="duplicate"}`: 3,
		`ecomstream_collector_window_files{outcome="ingested"}`:    2,
		`ecomstream_collector_window_files{outcome="failed"}`:      1,
		`ecomstream_collector_window_seconds`:                      100,
	} {
		if got, ok := m[key]; !ok || got != want {
			t.Errorf("%s = %v (present %v), want %v", key, got, ok, want)
		}
	}
	// Rows per second is PromQL's window_records / window_seconds, not a gauge of its own.
	if _, ok := m[`ecomstream_collector_throughput_records_per_second`]; ok {
		t.Error("a precomputed rate is exported")
	}
}
