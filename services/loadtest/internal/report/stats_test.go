package report

import (
	"math"
	"path/filepath"
	"testing"
)

func TestPercentilesAreWeightedByRows(t *testing.T) {
	// One big slow file outweighs many small fast ones: per-row, not per-file.
	files := []FileLatency{{0, 0.01, 10}, {0, 0.02, 10}, {0, 5, 980}}
	l := Summarize(files)
	if l.Rows != 1000 || l.P50 != 5 || l.Min != 0.01 || l.Max != 5 {
		t.Fatalf("got %+v", l)
	}
	if got := Percentiles(files, 0.01, 0.02, 0.021)[0:3]; got[0] != 0.01 || got[1] != 0.02 || got[2] != 5 {
		t.Fatalf("nearest rank: %v", got)
	}
	if math.Abs(l.Mean-(0.1+0.2+4900)/1000) > 1e-9 {
		t.Fatalf("mean %v", l.Mean)
	}
}

func TestBandsMatchTheReport(t *testing.T) {
	files := []FileLatency{{0, 5, 1}, {0, 10, 2}, {0, 35, 3}, {0, 59.9, 4}, {0, 600, 5}}
	l := Summarize(files)
	want := map[string]int64{"0-10 seconds": 1, "10-20 seconds": 2, "30-40 seconds": 3, "40-60 seconds": 4, "60+ seconds": 5}
	for _, b := range l.Bands {
		if b.Count != want[b.Label] {
			t.Errorf("%s: %d rows, want %d", b.Label, b.Count, want[b.Label])
		}
	}
	if last := l.Bands[len(l.Bands)-1]; last.Cumulative != 100 {
		t.Errorf("cumulative ends at %v", last.Cumulative)
	}
	if len(l.Fine) != len(FineBands) || l.Fine[0].Label != "0 – 50 ms" {
		t.Errorf("fine bands %+v", l.Fine[0])
	}
}

func TestTimeline(t *testing.T) {
	files := []FileLatency{{100.1, 100.2, 10}, {101.5, 102.5, 20}, {103, 103.1, 30}}
	pts := Timeline(files, 100, 104, 2)
	if len(pts) != 2 || pts[0].Throughput != 5 || pts[1].Throughput != 25 || pts[1].Committed != 60 || pts[0].Offered != 15 {
		t.Fatalf("%+v", pts)
	}
}

func TestThresholdsComeFromTheRuleFile(t *testing.T) {
	got, err := LoadThresholds(filepath.Join("..", "..", "..", "..", "deploy", "prometheus", "rules", "sla-thresholds.rules.yml"))
	if err != nil {
		t.Skipf("rule file not readable: %v", err)
	}
	want := DefaultThresholds()
	for k, v := range want.Max {
		if got.Max[k] != v {
			t.Errorf("max %s: file %v, built-in %v", k, got.Max[k], v)
		}
	}
	for k, v := range want.Min {
		if got.Min[k] != v {
			t.Errorf("min %s: file %v, built-in %v", k, got.Min[k], v)
		}
	}
	if got.Margin != want.Margin {
		t.Errorf("margin %v", got.Margin)
	}
}

func TestEvaluate(t *testing.T) {
	r := fixture()
	if !r.Passed {
		t.Fatalf("fixture fails: %v", r.Failed())
	}
	r.Accounted.Lost = 3
	Evaluate(r, DefaultThresholds(), 1)
	if r.Passed || statusOf(r, "lost") != Fail {
		t.Fatal("a lost row must fail the run")
	}
	r = fixture()
	r.Latency.P99 = 85 // under the report's 90 s, within its 10 % margin, over our 1 s
	Evaluate(r, DefaultThresholds(), 1)
	if statusOf(r, "latency_p99") != Warn || statusOf(r, "p99_target") != Fail || r.Passed {
		t.Fatalf("P99 85 s: %s / %s", statusOf(r, "latency_p99"), statusOf(r, "p99_target"))
	}
	r = fixture()
	r.Results.ThroughputRowsPerSec = 9
	Evaluate(r, DefaultThresholds(), 1)
	if statusOf(r, "throughput") != Fail {
		t.Fatal("throughput under 10 rec/s must fail")
	}
	r = fixture()
	r.Settings.TriggerInterval = 10e9
	r.Latency.P99 = 10.5
	Evaluate(r, DefaultThresholds(), 1)
	if statusOf(r, "p99_target") != Pass {
		t.Fatal("with a 10 s trigger the target is 11 s")
	}
}

func TestRatio(t *testing.T) {
	for _, c := range []struct {
		ours, spark float64
		lower       bool
		want        string
	}{{0.01, 32, true, "3,200× lower"}, {102, 102, false, "="}, {2000, 102, false, "20× higher"}, {0, 13, true, "∞ (none)"}, {50, 102, false, "2.0× lower"}} {
		if got := Ratio(c.ours, c.spark, c.lower); got != c.want {
			t.Errorf("Ratio(%v, %v, %v) = %q, want %q", c.ours, c.spark, c.lower, got, c.want)
		}
	}
}
