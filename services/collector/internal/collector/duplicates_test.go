package collector

import (
	"context"
	"testing"
	"time"
)

func TestDuplicates(t *testing.T) {
	pool := newDB(t)
	loadEvents(t, pool, 500)
	insertFiles(t, pool, file{latency: 1, age: 5, inserted: 90, duplicate: 10}, file{latency: 1, age: 4000, duplicate: 99})
	d := &Duplicates{DB: pool, Window: 5 * time.Minute}
	m := collect(t, d)
	if v, ok := m[`ecomstream_collector_duplicate_event_ids`]; !ok || v != 0 {
		t.Errorf("duplicate_event_ids = %v (present %v), want 0", v, ok)
	}
	if v := m[`ecomstream_collector_duplicates_skipped_records`]; v != 10 {
		t.Errorf("duplicates_skipped_records = %v, want 10", v)
	}
	// The measurement is a real count: with the primary key out of the way a stored
	// duplicate shows.
	ctx := context.Background()
	if _, err := pool.Exec(ctx, `ALTER TABLE events DROP CONSTRAINT events_pkey`); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `INSERT INTO events SELECT * FROM events LIMIT 3`); err != nil {
		t.Fatal(err)
	}
	if v := collect(t, d)[`ecomstream_collector_duplicate_event_ids`]; v != 3 {
		t.Errorf("after storing 3 duplicates: duplicate_event_ids = %v, want 3", v)
	}
}
