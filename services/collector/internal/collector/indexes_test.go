package collector

import (
	"context"
	"testing"
)

// The report's index table: every index of events is listed with its size, scans and hit
// ratio, and a scan through an index shows in its counter.
func TestIndexes(t *testing.T) {
	pool := newDB(t)
	loadEvents(t, pool, 1000)
	x := &Indexes{DB: pool}
	before := collect(t, x)
	for _, idx := range []string{"idx_events_event_type", "idx_events_user_id", "idx_events_product_id", "idx_events_event_time", "events_pkey"} {
		key := `{index="` + idx + `",table="events"}`
		if before[`ecomstream_collector_index_size_bytes`+key] <= 0 {
			t.Errorf("%s: no size", idx)
		}
		if _, ok := before[`ecomstream_collector_index_scans_total`+key]; !ok {
			t.Errorf("%s: no scans counter", idx)
		}
	}
	ctx := context.Background()
	if _, err := pool.Exec(ctx, `SET enable_seqscan = off`); err != nil {
		t.Fatal(err)
	}
	conn, err := pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	_, err = conn.Exec(ctx, `SET enable_seqscan = off; SELECT count(*) FROM events WHERE user_id = 7`)
	conn.Release()
	if err != nil {
		t.Fatal(err)
	}
	// Statistics reach the views when the backend reports them (at the end of the
	// transaction); force it.
	if _, err := pool.Exec(ctx, `SELECT pg_stat_force_next_flush()`); err != nil {
		t.Logf("pg_stat_force_next_flush: %v (PostgreSQL < 15)", err)
	}
	after := collect(t, x)
	key := `ecomstream_collector_index_scans_total{index="idx_events_user_id",table="events"}`
	if after[key] <= before[key] {
		t.Errorf("index scan not counted: %v -> %v", before[key], after[key])
	}
	if r, ok := after[`ecomstream_collector_index_cache_hit_ratio{index="idx_events_user_id",table="events"}`]; !ok || r < 0 || r > 1 {
		t.Errorf("hit ratio %v (present %v)", r, ok)
	}
}
