package collector

import (
	"context"
	"testing"
	"time"
)

func TestErrorRate(t *testing.T) {
	pool := newDB(t)
	e := &ErrorRate{DB: pool, Window: time.Minute}
	if _, ok := collect(t, e)[`ecomstream_collector_error_ratio`]; ok {
		t.Error("error ratio exported for an empty window")
	}
	insertFiles(t, pool,
		file{latency: 1, age: 10, inserted: 990, rejected: 8, duplicate: 2},
		file{latency: 1, age: 3600, inserted: 0, rejected: 500}, // outside the window
	)
	for _, r := range []struct {
		reason string
		age    int
	}{{"bad_event_id", 5}, {"bad_event_id", 6}, {"bad_price", 7}, {"bad_price", 4000}} {
		_, err := pool.Exec(context.Background(), `INSERT INTO rejected_records (source_file, line_number, raw_line, reason, message, rejected_at)
			VALUES ('f.csv', 2, 'x', $1, 'm', now() - make_interval(secs => $2::int))`, r.reason, r.age)
		if err != nil {
			t.Fatal(err)
		}
	}
	m := collect(t, e)
	for key, want := range map[string]float64{
		`ecomstream_collector_error_ratio`:                                    0.008,
		`ecomstream_collector_rejected_window_records{reason="bad_event_id"}`: 2,
		`ecomstream_collector_rejected_window_records{reason="bad_price"}`:    1,
	} {
		if got, ok := m[key]; !ok || got != want {
			t.Errorf("%s = %v (present %v), want %v", key, got, ok, want)
		}
	}
}
