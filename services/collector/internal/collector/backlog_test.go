package collector

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestBacklog(t *testing.T) {
	dir := t.TempDir()
	now := time.Date(2026, 2, 1, 12, 0, 0, 0, time.UTC)
	write := func(name string, size int, age time.Duration) {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, make([]byte, size), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, now.Add(-age), now.Add(-age)); err != nil {
			t.Fatal(err)
		}
	}
	write("a.csv", 100, 3*time.Second)
	write("b.csv", 50, 42*time.Second)
	write(".c.csv.tmp", 1000, time.Hour) // being written: not pending yet
	write(".d.csv", 1000, time.Hour)     // dotfile
	write("e.txt", 1000, time.Hour)      // not a CSV
	if err := os.Mkdir(filepath.Join(dir, "f.csv"), 0o755); err != nil {
		t.Fatal(err)
	}
	m := collect(t, &Backlog{Dir: dir, Now: func() time.Time { return now }})
	for key, want := range map[string]float64{
		`ecomstream_collector_backlog_files`:              2,
		`ecomstream_collector_backlog_bytes`:              150,
		`ecomstream_collector_backlog_oldest_age_seconds`: 42,
	} {
		if got := m[key]; got != want {
			t.Errorf("%s = %v, want %v", key, got, want)
		}
	}
	// A missing directory is a failed measurement, said in a metric.
	m = collect(t, &Backlog{Dir: filepath.Join(dir, "missing")})
	if m[`ecomstream_collector_scrape_success{collector="backlog"}`] != 0 {
		t.Error("scrape_success is not 0 for a missing directory")
	}
	if _, ok := m[`ecomstream_collector_backlog_files`]; ok {
		t.Error("backlog_files exported for a missing directory")
	}
}
