package collector

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/expfmt"
	"github.com/rs/zerolog"

	"github.com/ecomstream/ecomstream/services/common/metrics"
)

func testLogger() zerolog.Logger { return zerolog.Nop() }

type countingMeasurement struct {
	period time.Duration
	runs   int
	fail   bool
}

var countingDesc = Desc("test_runs", "Runs of the test measurement.")

func (*countingMeasurement) Name() string                        { return "counting" }
func (*countingMeasurement) Describe(ch chan<- *prometheus.Desc) { ch <- countingDesc }
func (c *countingMeasurement) Period() time.Duration             { return c.period }
func (c *countingMeasurement) Measure(_ context.Context, ch chan<- prometheus.Metric) error {
	c.runs++
	gauge(ch, countingDesc, float64(c.runs))
	if c.fail {
		return errors.New("boom")
	}
	return nil
}

// A failing measurement says so in scrape_success and keeps what it measured before failing.
func TestFailureIsAMetric(t *testing.T) {
	c := New(testLogger(), time.Second, &countingMeasurement{fail: true})
	if c.Ready() {
		t.Error("ready before measuring")
	}
	c.MeasureAll(t.Context())
	m := flatten(t, c)
	if m[`ecomstream_collector_scrape_success{collector="counting"}`] != 0 {
		t.Error("scrape_success is not 0")
	}
	if _, ok := m[`ecomstream_collector_scrape_duration_seconds{collector="counting"}`]; !ok {
		t.Error("no scrape_duration_seconds")
	}
	if m[`ecomstream_collector_test_runs`] != 1 || !c.Ready() {
		t.Error("partial result not kept")
	}
}

// allMeasured returns a registry with every measurement run once against a database
// with data in every table and a backlog.
func allMeasured(t *testing.T) *prometheus.Registry {
	t.Helper()
	pool := newDB(t)
	loadEvents(t, pool, 300)
	insertFiles(t, pool, file{latency: 0.2, age: 5, inserted: 100, rejected: 1, duplicate: 1}, file{latency: 12, age: 5, inserted: 100})
	_, err := pool.Exec(context.Background(), `INSERT INTO rejected_records (source_file, line_number, raw_line, reason, message) VALUES ('f.csv', 3, 'x', 'bad_price', 'm')`)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(dir+"/a.csv", []byte("event_id\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	c := New(testLogger(), 30*time.Second, All(pool, Settings{Window: time.Minute, WatchDir: dir, QueryInterval: time.Minute, ExporterStandIn: true})...)
	c.MeasureAll(context.Background())
	reg := metrics.NewRegistry()
	reg.MustRegister(c)
	return reg
}

// lintAccepted are the linter's findings we keep on purpose: the latency percentiles
// carry the quantile label of the recording rules (a gauge computed in SQL over the window,
// not a summary with cumulative _sum and _count), and the exporter stand-in's counters
// keep postgres_exporter's names, which have no _total.
func lintAccepted(metric, text string) bool {
	switch {
	case metric == "ecomstream_collector_end_to_end_latency_seconds":
		return strings.Contains(text, `non-summary metrics should not have "quantile" label`)
	case strings.HasPrefix(metric, "pg_stat_database_blks_"):
		return strings.Contains(text, `counter metrics should have "_total" suffix`)
	}
	return false
}

// Every metric passes client_golang's linter and `promtool check metrics` (but for the
// findings lintAccepted names), and every measurement succeeds against a real database.
func TestMetricsLintClean(t *testing.T) {
	reg := allMeasured(t)
	problems, err := testutil.GatherAndLint(reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		if !lintAccepted(p.Metric, p.Text) {
			t.Errorf("lint: %s: %s", p.Metric, p.Text)
		}
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	enc := expfmt.NewEncoder(&buf, expfmt.NewFormat(expfmt.TypeTextPlain))
	for _, mf := range mfs {
		if err := enc.Encode(mf); err != nil {
			t.Fatal(err)
		}
		if strings.HasSuffix(mf.GetName(), "scrape_success") {
			for _, m := range mf.GetMetric() {
				if m.GetGauge().GetValue() != 1 {
					t.Errorf("measurement %v failed", m.GetLabel())
				}
			}
		}
	}
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("promtool not installed (Debian package prometheus)")
		}
		t.Skip("promtool not installed; `promtool check metrics` not run")
	}
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = &buf
	out, _ := cmd.CombinedOutput()
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if metric, text, ok := strings.Cut(line, " "); ok && !lintAccepted(metric, text) {
			t.Errorf("promtool check metrics: %s", line)
		}
	}
}

// slowMeasurement takes took on the collector's clock each time it runs.
type slowMeasurement struct {
	countingMeasurement
	clock *time.Time
	took  time.Duration
}

func (s *slowMeasurement) Measure(ctx context.Context, ch chan<- prometheus.Metric) error {
	*s.clock = s.clock.Add(s.took)
	return s.countingMeasurement.Measure(ctx, ch)
}

// A measurement that takes long (a full-table query on a grown table) rests twenty times
// as long as it took before it runs again, beyond its Period, and its last result is
// served meanwhile; a quick one runs at every interval as before.
func TestASlowMeasurementRestsTwentyTimesItsDuration(t *testing.T) {
	clock := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	slow := &slowMeasurement{countingMeasurement: countingMeasurement{period: 30 * time.Second}, clock: &clock, took: 3 * time.Second}
	c := New(testLogger(), time.Minute, slow)
	c.now = func() time.Time { return clock }
	runsAt := func(every time.Duration, ticks int) []int {
		var runs []int
		for i := range ticks {
			before := slow.runs
			c.MeasureAll(t.Context())
			if slow.runs > before {
				runs = append(runs, i)
			}
			clock = clock.Add(every)
		}
		return runs
	}
	// Ticks of 5 s: 3 s runs rest 60 s from their start, beyond the 30 s Period: ticks
	// 0, 12, 24 (each tick begins 5 s after the one before, plus the run's 3 s).
	got := runsAt(5*time.Second, 30)
	want := []int{0, 12, 24}
	if len(got) != len(want) {
		t.Fatalf("a 3 s measurement ran at ticks %v, want %v", got, want)
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("a 3 s measurement ran at ticks %v, want %v", got, want)
		}
	}
	if v := flatten(t, c)[`ecomstream_collector_test_runs`]; v != float64(slow.runs) {
		t.Errorf("served %v, the last run's result is %d", v, slow.runs)
	}
	// Quick now (50 ms: no rest): back to its 30 s Period.
	slow.took = 50 * time.Millisecond
	c.MeasureAll(t.Context()) // clears the long rest after the next run
	clock = clock.Add(time.Minute)
	slow.runs = 0
	if got := runsAt(5*time.Second, 13); len(got) != 3 {
		t.Errorf("a 50 ms measurement with a 30 s Period ran at ticks %v in 60 s, want 3 runs", got)
	}
}

// The rest bounds PostgreSQL's share of time; the backlog is no query. Its run waits out
// a bucket listing (up to the interval plus the statement timeout) or reads a large
// directory, and the backlog it serves must still follow the input at every interval:
// it is what grows when the pipeline falls behind, when a rest would hide it longest.
func TestTheBacklogIsMeasuredAtEveryIntervalHoweverLongItsRunTook(t *testing.T) {
	dir := t.TempDir()
	clock := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	// Each run takes 10 s on the collector's clock (a listing waited for).
	b := &Backlog{Dir: dir, Now: func() time.Time { clock = clock.Add(10 * time.Second); return clock }}
	c := New(testLogger(), time.Minute, b)
	c.now = func() time.Time { return clock }
	for i := range 3 {
		name := filepath.Join(dir, fmt.Sprintf("f%d.csv", i))
		if err := os.WriteFile(name, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
		c.MeasureAll(t.Context())
		if got := flatten(t, c)[`ecomstream_collector_backlog_files`]; got != float64(i+1) {
			t.Fatalf("interval %d: backlog_files served %v, %d files pending", i, got, i+1)
		}
		clock = clock.Add(5 * time.Second) // the next interval
	}
}

// A run that fails after a long time (a report query past its statement timeout, the
// table grown further) cost PostgreSQL that time as much as one that succeeds: it rests
// as long. Not resting it, the costliest runs came at every Period (10 s in 30).
func TestASlowFailedMeasurementRestsTooButAQuickFailureDoesNot(t *testing.T) {
	clock := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	slow := &slowMeasurement{countingMeasurement: countingMeasurement{period: 30 * time.Second, fail: true}, clock: &clock, took: 3 * time.Second}
	c := New(testLogger(), time.Minute, slow)
	c.now = func() time.Time { return clock }
	for range 12 { // 60 s of 5 s ticks, each run 3 s: one run, the next due 60 s after it began
		c.MeasureAll(t.Context())
		clock = clock.Add(5 * time.Second)
	}
	if slow.runs != 1 {
		t.Fatalf("a run failing after 3 s ran %d times in 60 s, want 1 (rested 60 s)", slow.runs)
	}
	// A failure at once (the server down) is tried again at its Period.
	slow.took, slow.runs = 0, 0
	clock = clock.Add(time.Minute)
	for range 13 {
		c.MeasureAll(t.Context())
		clock = clock.Add(5 * time.Second)
	}
	if slow.runs != 3 {
		t.Fatalf("a run failing at once ran %d times in 60 s, want 3 (its 30 s Period)", slow.runs)
	}
}
