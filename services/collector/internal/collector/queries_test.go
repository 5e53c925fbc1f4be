package collector

import (
	"testing"
	"time"
)

// The five queries run and count what plain SQL counts.
func TestQueries(t *testing.T) {
	pool := newDB(t)
	loadEvents(t, pool, 2000)
	q := &Queries{DB: pool, Every: time.Minute}
	m := collect(t, q)
	for _, name := range QueryNames {
		if m[`ecomstream_collector_query_duration_seconds{query="`+name+`"}`] <= 0 {
			t.Errorf("query %s: no duration", name)
		}
	}
	if got := m[`ecomstream_collector_query_rows{query="count"}`]; got != 2000 {
		t.Errorf("count rows = %v, want 2000", got)
	}
	if got := m[`ecomstream_collector_query_rows{query="group_by_event_type"}`]; got != 4 {
		t.Errorf("group by rows = %v, want 4 event types", got)
	}
	// Lookups find the newest event's user and product; the range its minute.
	if m[`ecomstream_collector_query_rows{query="by_user_id"}`] < 1 || m[`ecomstream_collector_query_rows{query="by_product_id"}`] < 1 ||
		m[`ecomstream_collector_query_rows{query="by_time_range"}`] < 1 {
		t.Errorf("lookups found nothing: %v", m)
	}
	if m[`ecomstream_collector_scrape_success{collector="queries"}`] != 1 {
		t.Error("queries failed")
	}
}

// An empty table still gives every query a time.
func TestQueriesEmptyTable(t *testing.T) {
	m := collect(t, &Queries{DB: newDB(t)})
	for _, name := range QueryNames {
		if _, ok := m[`ecomstream_collector_query_duration_seconds{query="`+name+`"}`]; !ok {
			t.Errorf("query %s: no duration on an empty table", name)
		}
	}
}

// Periodic measurements keep their last result until their period has passed.
func TestPeriodicMeasurementIsCached(t *testing.T) {
	q := &countingMeasurement{period: time.Hour}
	c := New(testLogger(), time.Second, q)
	for range 3 {
		c.MeasureAll(t.Context())
	}
	if q.runs != 1 {
		t.Errorf("ran %d times in one period, want 1", q.runs)
	}
	if got := flatten(t, c)[`ecomstream_collector_scrape_success{collector="counting"}`]; got != 1 {
		t.Errorf("cached result not served: success = %v", got)
	}
}
