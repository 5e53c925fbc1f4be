package collector

import (
	"context"
	"os"
	"testing"
	"time"
)

// The processes' PSS and CPU time are read when they are visible, as they are here: the
// test server is a child of this machine.
func TestMemory(t *testing.T) {
	pool := newDB(t)
	m := collect(t, &Memory{DB: pool})
	if os.Getenv("ECOMSTREAM_TEST_DATABASE_URL") == "" {
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

// PostgreSQL's CPU time is a counter: when a backend exits its time stays counted, a new
// backend adds its time, and a pid reused by a new process is a new process.
func TestPostgresCPUNeverGoesDownWhenBackendsExit(t *testing.T) {
	var c cpuCounter
	postmaster, b1, b2 := process{100, 1}, process{101, 5}, process{102, 6}
	steps := []struct {
		live map[process]float64
		want float64
	}{
		{map[process]float64{postmaster: 1, b1: 10, b2: 3}, 14},
		{map[process]float64{postmaster: 1.5, b1: 12, b2: 3}, 16.5},
		{map[process]float64{postmaster: 2}, 17},                     // both backends exited: the sum of live times is 2
		{map[process]float64{postmaster: 2, {101, 90}: 0.25}, 17.25}, // pid 101 reused
		{map[process]float64{postmaster: 2.5, {101, 90}: 0.5}, 18},
	}
	prev := 0.0
	for i, s := range steps {
		got := c.observe(s.live)
		if got != s.want || got < prev {
			t.Errorf("step %d: counter %v, want %v (previous %v)", i, got, s.want, prev)
		}
		prev = got
	}
}

// With a real server: killing a backend that has used CPU does not lower the counter.
func TestPostgresCPUCounterSurvivesABackendExit(t *testing.T) {
	if os.Getenv("ECOMSTREAM_TEST_DATABASE_URL") != "" {
		t.Skip("the server's processes are not visible")
	}
	pool := newDB(t)
	m := &Memory{DB: pool}
	ctx := context.Background()
	conn, err := pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var pid int
	if err := conn.QueryRow(ctx, `SELECT pg_backend_pid()`).Scan(&pid); err != nil {
		t.Fatal(err)
	}
	// Burn some CPU in that backend so its exit would show in a sum of live times.
	if _, err := conn.Exec(ctx, `SELECT count(*) FROM generate_series(1, 3000000)`); err != nil {
		t.Fatal(err)
	}
	before := collect(t, m)[`ecomstream_collector_postgres_cpu_seconds_total`]
	// Take the connection out of the pool, so the pool never hands out the dying one.
	raw := conn.Hijack()
	defer raw.Close(ctx)
	if _, err := pool.Exec(ctx, `SELECT pg_terminate_backend($1)`, pid); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 50; i++ { // wait until the backend is gone from pg_stat_activity
		var n int
		_ = pool.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE pid = $1`, pid).Scan(&n)
		if n == 0 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	after := collect(t, m)[`ecomstream_collector_postgres_cpu_seconds_total`]
	if after < before {
		t.Errorf("CPU counter went down from %v to %v when a backend exited", before, after)
	}
}
