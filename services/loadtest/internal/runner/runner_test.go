package runner

import (
	"context"
	"fmt"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ecomstream/ecomstream/services/loadtest/internal/measure"
	"github.com/ecomstream/ecomstream/services/loadtest/internal/report"
	"github.com/ecomstream/ecomstream/services/loadtest/internal/scenario"
	"github.com/ecomstream/ecomstream/services/loadtest/internal/stack"
)

// fakeStack is a pipeline in memory: each phase "generates" files that are committed with
// a latency chosen by the test (per offered rate), or lost.
type fakeStack struct {
	mu      sync.Mutex
	files   []file
	phase   stack.Gen
	started time.Time
	latency func(rate float64) float64 // seconds
	lose    int64                      // rows of the last file never committed
}

type file struct {
	name               string
	created, committed float64
	rows               int64
}

func (f *fakeStack) Start(context.Context) error { return nil }
func (f *fakeStack) Window() measure.Window      { return measure.Window{} }
func (f *fakeStack) DB() measure.Querier         { return fakeDB{f} }
func (f *fakeStack) Generate(_ context.Context, g stack.Gen) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.phase, f.started = g, time.Now()
	rate := float64(g.MinRecords) / g.Sleep.Seconds()
	now := float64(time.Now().UnixNano()) / 1e9
	n := int(g.Duration / g.Sleep)
	for i := 0; i < n; i++ {
		c := now + float64(i)*g.Sleep.Seconds()
		rows := int64(g.MinRecords)
		if i == n-1 {
			rows -= f.lose
		}
		f.files = append(f.files, file{fmt.Sprintf("%s-g1-%d.csv", g.Tag, i), c, c + f.latency(rate), rows})
	}
	return nil
}
func (f *fakeStack) GeneratorsDone(context.Context) bool { return true }
func (f *fakeStack) Generated(context.Context) int64     { return 0 }
func (f *fakeStack) Finals(context.Context) (report.Produced, error) {
	n := int64(f.phase.Duration / f.phase.Sleep)
	return report.Produced{Files: n, Rows: n * int64(f.phase.MinRecords), Valid: n * int64(f.phase.MinRecords)}, nil
}
func (f *fakeStack) Backlog(context.Context) int64 { return 0 }
func (f *fakeStack) Batches(context.Context) (float64, float64, float64, error) {
	return 10, 0.1, 1000, nil
}
func (f *fakeStack) Resources(context.Context, time.Time, time.Time) (report.Resources, error) {
	return report.Resources{Components: []string{"ingester"}, Samples: []report.ResourceSample{
		{T: 1, CPU: map[string]float64{"ingester": 20}, Mem: map[string]float64{"ingester": 1e7}}}}, nil
}
func (f *fakeStack) CountFiles(context.Context) (report.Produced, bool, error) {
	return report.Produced{}, false, nil
}
func (f *fakeStack) Problems() []string { return nil }
func (f *fakeStack) Environment(context.Context) report.Environment {
	return report.Environment{CPUs: 2}
}
func (f *fakeStack) Stop(context.Context) error { return nil }

// fakeDB answers the runner's SQL from the fake's files, recognising each statement by a
// fragment of it.
type fakeDB struct{ f *fakeStack }

func (d fakeDB) Query(_ context.Context, sql string) ([][]string, error) {
	d.f.mu.Lock()
	defer d.f.mu.Unlock()
	prefix := ""
	if i := strings.Index(sql, "file_name LIKE '"); i >= 0 {
		prefix = strings.TrimSuffix(strings.SplitN(sql[i+len("file_name LIKE '"):], "'", 2)[0], "%")
	}
	var sel []file
	for _, f := range d.f.files {
		if strings.HasPrefix(f.name, prefix) {
			sel = append(sel, f)
		}
	}
	var rows, files int64
	for _, f := range sel {
		rows += f.rows
		files++
	}
	switch {
	case strings.Contains(sql, "EXPLAIN"):
		return [][]string{{`[{"Plan":{"Node Type":"Seq Scan","Relation Name":"events","Actual Rows":1,"Actual Loops":1},"Execution Time":1.5,"Planning Time":0.1}]`}}, nil
	case strings.Contains(sql, "ORDER BY event_time DESC LIMIT 1"):
		return [][]string{{"1", "2", "2026-01-01T00:00:00Z"}}, nil
	case strings.Contains(sql, "committed_at > now()"):
		return nil, nil
	case strings.Contains(sql, "SELECT count(*), coalesce(sum(records_total),0)"):
		return [][]string{{fmt.Sprint(files), fmt.Sprint(rows)}}, nil
	case strings.Contains(sql, "extract(epoch FROM file_created_at)"):
		var out [][]string
		for _, f := range sel {
			out = append(out, []string{fmt.Sprint(f.created), fmt.Sprint(f.committed), fmt.Sprint(f.rows)})
		}
		return out, nil
	case strings.Contains(sql, "FILTER (WHERE outcome = 'failed')"):
		return [][]string{{fmt.Sprint(files), "0", fmt.Sprint(rows), fmt.Sprint(rows), "0", "0"}}, nil
	case strings.Contains(sql, "GROUP BY file_name"):
		return [][]string{{"0"}}, nil
	case strings.Contains(sql, "count(DISTINCT event_id)"):
		return [][]string{{fmt.Sprint(rows), "0"}}, nil
	case strings.Contains(sql, "FROM rejected_records"):
		return [][]string{{"0"}}, nil
	case strings.Contains(sql, "pg_stat_user_indexes"):
		return [][]string{{"events", "idx_events_user_id", "8192", "3", "4", "10", "0"}}, nil
	case strings.Contains(sql, "pg_stat_database"):
		return [][]string{{"0.99", "1000", "500", "5000", "16.4"}}, nil
	}
	return nil, fmt.Errorf("fake: unexpected SQL %q", sql)
}

func TestRunMeasuresAndPasses(t *testing.T) {
	set, _ := scenario.Preset("stress")
	set.Duration = 2 * time.Second
	st := &fakeStack{latency: func(float64) float64 { return 0.02 }}
	r, err := Run(context.Background(), st, set, Options{RunID: "t", Mode: "fake", Tick: 10 * time.Millisecond,
		QueryRuns: 1, Thresholds: report.DefaultThresholds()})
	if err != nil {
		t.Fatal(err)
	}
	if !r.Passed || r.Produced.Rows != 20000 || r.Accounted.Rows != 20000 || math.Abs(r.Latency.P99-0.02) > 1e-4 || len(r.Queries) != 5 {
		t.Fatalf("passed=%v %v produced %d accounted %d P99 %v", r.Passed, r.Failed(), r.Produced.Rows, r.Accounted.Rows, r.Latency.P99)
	}
}

func TestLossFailsTheRun(t *testing.T) {
	set, _ := scenario.Preset("stress")
	set.Duration = time.Second
	st := &fakeStack{latency: func(float64) float64 { return 0.02 }, lose: 7}
	r, err := Run(context.Background(), st, set, Options{RunID: "t", Mode: "fake", Tick: 10 * time.Millisecond,
		QueryRuns: 1, Thresholds: report.DefaultThresholds(), DrainTimeout: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if r.Passed || r.Accounted.Lost != 7 {
		t.Fatalf("lost %d, passed %v", r.Accounted.Lost, r.Passed)
	}
}

func TestRampFindsTheKnee(t *testing.T) {
	set, _ := scenario.Preset("max")
	set, _ = set.Apply(scenario.Overrides{StepDuration: time.Second, Duration: 10 * time.Second, StartRate: 1000})
	set.Ramp.DrainTimeout = 50 * time.Millisecond
	// Latency is fine up to 6,000 rows/s and too slow above.
	st := &fakeStack{latency: func(rate float64) float64 {
		if rate > 6000 {
			return 3
		}
		return 0.05
	}}
	r, err := Run(context.Background(), st, set, Options{RunID: "t", Mode: "local", Tick: 10 * time.Millisecond,
		QueryRuns: 1, Thresholds: report.DefaultThresholds()})
	if err != nil {
		t.Fatal(err)
	}
	var offered []float64
	for _, s := range r.Steps {
		offered = append(offered, s.Offered)
	}
	// 1k, 2k, 4k pass; 8k fails; the bisection: 6k passes, 7k and 6.5k fail (a gap of
	// 500 = 8 % of 6k, within the preset's 10 %).
	if fmt.Sprint(offered) != "[1000 2000 4000 8000 6000 7000 6500]" {
		t.Fatalf("steps %v", offered)
	}
	if r.MaxRate == nil || r.MaxRate.Offered != 6000 || r.MaxRate.FirstFail != 6500 || !r.Passed {
		t.Fatalf("max %+v passed %v %v", r.MaxRate, r.Passed, r.Failed())
	}
}

// A step's CPU per row counts each component's CPU held over the step's samples only
// (each sample's percent over the time since the one before), divided by its rows.
func TestCPUPerRowCountsEachComponentOverTheStepOnly(t *testing.T) {
	samples := []report.ResourceSample{
		{T: 9, CPU: map[string]float64{"postgres": 100, "ingester": 10}},
		{T: 10, CPU: map[string]float64{"postgres": 100, "ingester": 10}},  // before the step
		{T: 11, CPU: map[string]float64{"postgres": 150, "ingester": 20}},  // 1 s
		{T: 13, CPU: map[string]float64{"postgres": 50, "ingester": 5}},    // 2 s
		{T: 14, CPU: map[string]float64{"postgres": 200, "ingester": 100}}, // after the step
	}
	got := cpuPerRow(samples, 10, 13, 1000)
	// postgres: 1.5 core-s + 1.0 core-s = 2.5 s over 1,000 rows; ingester 0.2 + 0.1.
	want := map[string]float64{"postgres": 2500, "ingester": 300}
	for c, w := range want {
		if math.Abs(got[c]-w) > 1e-6 {
			t.Errorf("%s: %.3f µs a row, want %.3f", c, got[c], w)
		}
	}
	if got := cpuPerRow(samples, 10, 13, 0); got != nil {
		t.Errorf("no rows: %v, want none", got)
	}
}
