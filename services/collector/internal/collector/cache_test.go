package collector

import "testing"

func TestCacheAndSizes(t *testing.T) {
	pool := newDB(t)
	loadEvents(t, pool, 1000)
	m := collect(t, &Cache{DB: pool})
	hit, read := m[`ecomstream_collector_database_blocks_total{outcome="hit"}`], m[`ecomstream_collector_database_blocks_total{outcome="read"}`]
	if hit <= 0 {
		t.Errorf("no buffer hits counted")
	}
	if r := m[`ecomstream_collector_cache_hit_ratio`]; r != hit/(hit+read) {
		t.Errorf("cache hit ratio %v, want %v", r, hit/(hit+read))
	}
	s := collect(t, &Sizes{DB: pool})
	if s[`ecomstream_collector_table_size_bytes{table="events"}`] <= 0 || s[`ecomstream_collector_table_indexes_size_bytes{table="events"}`] <= 0 {
		t.Errorf("events sizes missing: %v", s)
	}
	if s[`ecomstream_collector_table_rows_estimate{table="events"}`] != 1000 {
		t.Errorf("row estimate %v, want 1000 (analyzed)", s[`ecomstream_collector_table_rows_estimate{table="events"}`])
	}
	if s[`ecomstream_collector_database_size_bytes`] <= 0 {
		t.Error("no database size")
	}
	for _, table := range Tables {
		if _, ok := s[`ecomstream_collector_table_inserted_rows_total{table="`+table+`"}`]; !ok {
			t.Errorf("%s: no inserted rows counter", table)
		}
	}
}
