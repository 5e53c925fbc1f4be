package collector

import (
	"os"
	"strings"
	"testing"
)

// Where no postgres_exporter runs, the stand-in serves the exporter's names: the block
// counters the cache hit ratio is computed from, the database size and the memory
// settings (the test server runs with shared_buffers=128MB).
func TestExporterStandInServesTheExportersNames(t *testing.T) {
	pool := newDB(t)
	loadEvents(t, pool, 1000)
	m := collect(t, &ExporterStandIn{DB: pool})
	var hit, size float64
	for k, v := range m {
		switch {
		case strings.HasPrefix(k, "pg_stat_database_blks_hit{datid="):
			hit = v
		case strings.HasPrefix(k, "pg_database_size_bytes{datname="):
			size = v
		}
	}
	if hit <= 0 || size <= 0 {
		t.Errorf("blocks hit %v, database size %v; want both > 0 in %v", hit, size, m)
	}
	if os.Getenv("ECOMSTREAM_TEST_DATABASE_URL") == "" {
		if got := m[`pg_settings_shared_buffers_bytes`]; got != 128<<20 {
			t.Errorf("shared_buffers = %v, want %v", got, 128<<20)
		}
	}
	for _, s := range MemorySettings {
		if m[`pg_settings_`+s+`_bytes`] <= 0 {
			t.Errorf("setting %s missing", s)
		}
	}
	if m[`ecomstream_collector_scrape_success{collector="exporter_stand_in"}`] != 1 {
		t.Error("stand-in measurement failed")
	}
}

// The stand-in is not part of the default set: beside a real exporter each fact would
// have two owners.
func TestExporterStandInOnlyWhenAsked(t *testing.T) {
	has := func(ms []Measurement) bool {
		for _, m := range ms {
			if _, ok := m.(*ExporterStandIn); ok {
				return true
			}
		}
		return false
	}
	if has(All(nil, Settings{})) || !has(All(nil, Settings{ExporterStandIn: true})) {
		t.Error("stand-in present by default or absent when asked")
	}
}
