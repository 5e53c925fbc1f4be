package collector

import (
	"os"
	"testing"
)

// The memory settings come from the server (the test server runs with
// shared_buffers=128MB); the processes' PSS is read when they are visible, as they are
// here: the test server is a child of this machine.
func TestMemory(t *testing.T) {
	pool := newDB(t)
	m := collect(t, &Memory{DB: pool})
	if os.Getenv("ECOMSTREAM_TEST_DATABASE_URL") == "" {
		if got := m[`ecomstream_collector_postgres_setting_bytes{setting="shared_buffers"}`]; got != 128<<20 {
			t.Errorf("shared_buffers = %v, want %v", got, 128<<20)
		}
		if n := m[`ecomstream_collector_postgres_processes`]; n < 2 {
			t.Errorf("postgres processes read = %v, want the postmaster and backends", n)
		}
		if b := m[`ecomstream_collector_postgres_memory_bytes`]; b < 1<<20 || b > 8<<30 {
			t.Errorf("postgres memory = %v bytes, not plausible", b)
		}
		if _, ok := m[`ecomstream_collector_postgres_cpu_seconds_total`]; !ok {
			t.Error("postgres cpu time missing")
		}
	}
	for _, s := range MemorySettings {
		if m[`ecomstream_collector_postgres_setting_bytes{setting="`+s+`"}`] <= 0 {
			t.Errorf("setting %s missing", s)
		}
	}
	// A /proc without postgres processes: no memory metric, 0 processes, still success.
	m = collect(t, &Memory{DB: pool, Proc: t.TempDir()})
	if _, ok := m[`ecomstream_collector_postgres_memory_bytes`]; ok || m[`ecomstream_collector_postgres_processes`] != 0 {
		t.Errorf("memory reported without /proc: %v", m)
	}
	if m[`ecomstream_collector_scrape_success{collector="memory"}`] != 1 {
		t.Error("memory measurement failed without /proc")
	}
}

func TestHost(t *testing.T) {
	m := collect(t, &Host{})
	if m[`ecomstream_collector_host_cpus`] < 1 || m[`ecomstream_collector_host_cpu_seconds_total{mode="idle"}`] <= 0 {
		t.Errorf("host cpu missing: %v", m)
	}
	if m[`ecomstream_collector_host_memory_bytes{state="total"}`] < m[`ecomstream_collector_host_memory_bytes{state="available"}`] {
		t.Errorf("host memory inconsistent: %v", m)
	}
}
