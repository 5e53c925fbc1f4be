package collector

import "testing"

// The database's cache hit ratio and size are postgres_exporter's (exporterstandin_test.go).
func TestCacheAndSizes(t *testing.T) {
	pool := newDB(t)
	loadEvents(t, pool, 1000)
	s := collect(t, &Sizes{DB: pool})
	if s[`ecomstream_collector_table_size_bytes{table="events"}`] <= 0 || s[`ecomstream_collector_table_indexes_size_bytes{table="events"}`] <= 0 {
		t.Errorf("events sizes missing: %v", s)
	}
	if s[`ecomstream_collector_table_rows_estimate{table="events"}`] != 1000 {
		t.Errorf("row estimate %v, want 1000 (analyzed)", s[`ecomstream_collector_table_rows_estimate{table="events"}`])
	}
	for _, table := range Tables {
		if _, ok := s[`ecomstream_collector_table_inserted_rows_total{table="`+table+`"}`]; !ok {
			t.Errorf("%s: no inserted rows counter", table)
		}
	}
}
