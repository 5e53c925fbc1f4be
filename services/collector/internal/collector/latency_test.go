package collector

import (
	"context"
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

// The percentiles must equal percentile_cont over the expanded rows (one per inserted
// record) of the window — the report's methodology written as plainly as SQL allows.
func TestLatencyEqualsPercentileContOverRows(t *testing.T) {
	pool := newDB(t)
	rng := rand.New(rand.NewPCG(1, 2))
	var files []file
	for range 300 {
		files = append(files, file{
			latency:  rng.ExpFloat64() * 12,
			age:      rng.Float64() * 200,
			inserted: rng.Int64N(120),
			rejected: rng.Int64N(3),
		})
	}
	// Outside the window, and files that inserted nothing: they must not count.
	files = append(files,
		file{latency: 5000, age: 3600, inserted: 1000},
		file{latency: 9000, age: 10, inserted: 0, rejected: 50},
		file{latency: 9000, age: 10, failed: true},
	)
	insertFiles(t, pool, files...)

	l := &Latency{DB: pool, Window: 5 * time.Minute}
	got, n, err := l.Compute(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var want []float64
	var wantN int64
	err = pool.QueryRow(context.Background(), `
		SELECT percentile_cont($1::float8[]) WITHIN GROUP (ORDER BY lat), count(*)
		FROM (SELECT extract(epoch FROM committed_at - file_created_at)::float8 AS lat
		      FROM ingested_files, generate_series(1, records_inserted)
		      WHERE committed_at >= now() - interval '5 minutes') rows`, Percentiles).Scan(&want, &wantN)
	if err != nil {
		t.Fatal(err)
	}
	if n != wantN {
		t.Fatalf("rows in window: got %d, want %d", n, wantN)
	}
	if len(got) != len(Percentiles) {
		t.Fatalf("got %d percentiles, want %d", len(got), len(Percentiles))
	}
	for i, p := range got {
		if p.P != Percentiles[i] || math.Abs(p.Seconds-want[i]) > 1e-6 {
			t.Errorf("P%s: got %.9f s, want %.9f s", QuantileLabel(p.P), p.Seconds, want[i])
		}
	}

	m := collect(t, l)
	if m[`ecomstream_collector_end_to_end_latency_seconds{quantile="0.95"}`] != got[3].Seconds {
		t.Errorf("metric P95 = %v, want %v", m[`ecomstream_collector_end_to_end_latency_seconds{quantile="0.95"}`], got[3].Seconds)
	}
	if m[`ecomstream_collector_end_to_end_latency_window_records`] != float64(wantN) {
		t.Errorf("window records metric = %v, want %d", m[`ecomstream_collector_end_to_end_latency_window_records`], wantN)
	}
	if m[`ecomstream_collector_scrape_success{collector="latency"}`] != 1 {
		t.Errorf("scrape_success = %v", m[`ecomstream_collector_scrape_success{collector="latency"}`])
	}
}

// A single file, and ties: the interpolation must still match percentile_cont.
func TestLatencyEdgeCases(t *testing.T) {
	for _, tc := range []struct {
		name  string
		files []file
		want  []float64
	}{
		{"one row", []file{{latency: 7, age: 1, inserted: 1}}, []float64{7, 7, 7, 7, 7}},
		{"two files", []file{{latency: 1, age: 1, inserted: 1}, {latency: 3, age: 1, inserted: 1}},
			[]float64{2, 2.5, 2.8, 2.9, 2.98}},
		{"weights", []file{{latency: 10, age: 1, inserted: 99}, {latency: 100, age: 1, inserted: 1}},
			[]float64{10, 10, 10, 10, 10.9}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pool := newDB(t)
			insertFiles(t, pool, tc.files...)
			got, _, err := (&Latency{DB: pool, Window: time.Minute}).Compute(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			for i, p := range got {
				if math.Abs(p.Seconds-tc.want[i]) > 1e-6 {
					t.Errorf("P%s = %v, want %v", QuantileLabel(p.P), p.Seconds, tc.want[i])
				}
			}
		})
	}
}

// No rows in the window: no percentiles (absent, not 0), and the row count says why.
func TestLatencyEmptyWindow(t *testing.T) {
	pool := newDB(t)
	insertFiles(t, pool, file{latency: 1, age: 3600, inserted: 5})
	m := collect(t, &Latency{DB: pool, Window: time.Minute})
	if _, ok := m[`ecomstream_collector_end_to_end_latency_seconds{quantile="0.5"}`]; ok {
		t.Error("P50 exported for an empty window")
	}
	if v, ok := m[`ecomstream_collector_end_to_end_latency_window_records`]; !ok || v != 0 {
		t.Errorf("window records = %v, %v; want 0", v, ok)
	}
}

// The label values are exactly those of the recording rules' quantile label.
func TestQuantileLabelMatchesTheRecordingRules(t *testing.T) {
	for p, want := range map[float64]string{0.5: "0.5", 0.75: "0.75", 0.9: "0.9", 0.95: "0.95", 0.99: "0.99"} {
		if got := QuantileLabel(p); got != want {
			t.Errorf("QuantileLabel(%v) = %q, want %q", p, got, want)
		}
	}
}
