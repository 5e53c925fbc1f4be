package report

import (
	"fmt"

	"github.com/ecomstream/ecomstream/services/common/sla"
)

// Status of a check, as the seed report marks its results.
const (
	Pass = "✓"
	Warn = "⚠"
	Fail = "✗"
)

// Check is one row of the results table with its verdict.
type Check struct {
	Group  string `json:"group"` // sla (the report's Key Metrics) or invariant (ecomstream's own targets)
	Key    string `json:"key"`
	Metric string `json:"metric"`
	Target string `json:"target"`
	Value  string `json:"value"`
	Status string `json:"status"`
}

// Thresholds are the Key Metrics targets, read from the Prometheus rule file that is the
// one place they are kept (deploy/prometheus/rules/sla-thresholds.rules.yml).
type Thresholds struct {
	Source string             `json:"source"`
	Max    map[string]float64 `json:"max"` // the value must stay at or below
	Min    map[string]float64 `json:"min"` // the value must stay at or above
	Margin float64            `json:"warning_margin"`
}

// DefaultThresholds mirror sla-thresholds.rules.yml for a run without the repository.
func DefaultThresholds() Thresholds {
	return Thresholds{Source: "built-in copy of the seed report's Key Metrics",
		Max: map[string]float64{"latency_p50": 30, "latency_p95": 60, "latency_p99": 90, "batch_duration": 5,
			"cpu": 0.8, "ingester_memory": 4 << 30, "postgres_memory": 2 << 30, "error_rate": 0.001, "duplicates": 0},
		Min:    map[string]float64{"throughput": 10},
		Margin: 0.1}
}

// LoadThresholds reads the rule file (services/common/sla, the parser the dashboards use).
func LoadThresholds(path string) (Thresholds, error) {
	ts, err := sla.Load(path)
	if err != nil {
		return Thresholds{}, err
	}
	t := Thresholds{Source: path, Max: map[string]float64{}, Min: map[string]float64{}, Margin: ts.Margin}
	for name, target := range ts.ByName {
		if target.Max {
			t.Max[name] = target.Value
		} else {
			t.Min[name] = target.Value
		}
	}
	return t, nil
}

// status of value against an upper bound: ✗ above it, ⚠ within the margin below it.
func statusMax(v, limit, margin float64) string {
	switch {
	case v > limit:
		return Fail
	case limit > 0 && v > (1-margin)*limit:
		return Warn
	}
	return Pass
}

func statusMin(v, limit, margin float64) string {
	switch {
	case v < limit:
		return Fail
	case v < (1+margin)*limit:
		return Warn
	}
	return Pass
}

// Evaluate fills r.Checks and r.Passed from the measured values. The report's Key
// Metrics come first, in its order; then ecomstream's own invariants and targets:
// zero loss, zero duplicates, a drained volume, P99 under P99Target (plus the trigger
// interval when one is set) and throughput keeping up with what was generated.
func Evaluate(r *Report, t Thresholds, p99Target float64) {
	var cs []Check
	add := func(group, key, metric, target, value, status string) {
		cs = append(cs, Check{Group: group, Key: key, Metric: metric, Target: target, Value: value, Status: status})
	}
	maxCheck := func(key, metric string, v float64, format func(float64) string) {
		limit, ok := t.Max[key]
		if !ok {
			return
		}
		add("sla", key, metric, "< "+format(limit), format(v), statusMax(v, limit, t.Margin))
	}
	l, res := r.Latency, r.Results
	maxCheck("latency_p50", "Latency (P50)", l.P50, Dur)
	maxCheck("latency_p95", "Latency (P95)", l.P95, Dur)
	maxCheck("latency_p99", "Latency (P99)", l.P99, Dur)
	if limit, ok := t.Min["throughput"]; ok {
		add("sla", "throughput", "Throughput", fmt.Sprintf("> %g rec/s", limit), Rate(res.ThroughputRowsPerSec),
			statusMin(res.ThroughputRowsPerSec, limit, t.Margin))
	}
	maxCheck("batch_duration", "Batch latency (avg)", res.AvgBatchSeconds, Dur)
	maxCheck("cpu", "CPU usage (peak, 10 s avg)", res.PeakCPUPercent/100, Percent)
	maxCheck("ingester_memory", "Memory (ingester; Spark's driver)", res.PeakIngesterBytes, Bytes)
	maxCheck("postgres_memory", "Memory (PostgreSQL)", res.PeakPostgresBytes, Bytes)
	maxCheck("error_rate", "Error rate", res.ErrorRate, Percent)
	if limit, ok := t.Max["duplicates"]; ok {
		v := float64(r.Accounted.DuplicateInDB + r.Accounted.FilesCommittedTwice)
		add("sla", "duplicates", "Duplicate records in DB", fmt.Sprintf("%g", limit), Int(int64(v)), statusMax(v, limit, 0))
	}

	a := r.Accounted
	lostStatus := Pass
	if a.Lost != 0 {
		lostStatus = Fail
	}
	add("invariant", "lost", "Rows lost (produced − accounted)", "0", Int(a.Lost), lostStatus)
	twice := Pass
	if a.FilesCommittedTwice != 0 || a.DuplicateInDB != 0 {
		twice = Fail
	}
	add("invariant", "exactly_once", "Files committed twice / event_ids stored twice", "0 / 0",
		fmt.Sprintf("%d / %d", a.FilesCommittedTwice, a.DuplicateInDB), twice)
	drain := Pass
	if r.DrainTimedOut {
		drain = Fail
	}
	add("invariant", "drained", "Every produced file committed", "yes",
		fmt.Sprintf("%s after %s", yesNo(!r.DrainTimedOut), Dur(r.DrainSeconds)), drain)
	if r.MaxRate != nil {
		evaluateRamp(r, &cs, p99Target)
		return
	}
	target := p99Target + r.Settings.TriggerInterval.Seconds()
	label := "< " + Dur(target)
	if r.Settings.TriggerInterval > 0 {
		label += " (1 s + trigger)"
	}
	add("invariant", "p99_target", "Latency (P99), ecomstream target", label, Dur(l.P99), statusMax(l.P99, target, 0))
	if res.GeneratedRowsPerSec > 0 {
		ratio := res.ThroughputRowsPerSec / res.GeneratedRowsPerSec
		st := Pass
		switch {
		case ratio < 0.9:
			st = Fail
		case ratio < 0.95:
			st = Warn
		}
		add("invariant", "keeps_up", "Throughput / generated rate", "≥ 95 %", Percent(ratio), st)
	}
	if res.OfferedRowsPerSec > 0 && r.Settings.Ramp == nil {
		ratio := res.GeneratedRowsPerSec / res.OfferedRowsPerSec
		st := Pass
		if ratio < 0.95 {
			st = Warn // the generator could not keep its pace: a limit of the load, not a loss
		}
		add("invariant", "offered", "Generated / offered (nominal) rate", "≥ 95 % (info)", Percent(ratio), st)
	}
	r.Checks = cs
	r.Passed = len(r.Problems) == 0
	for _, c := range cs {
		if c.Status == Fail {
			r.Passed = false
		}
	}
}

// evaluateRamp judges the max preset: its later steps overload the pipeline on purpose,
// so the Key Metrics over the whole ramp are shown for information (a miss is ⚠, not ✗);
// what must hold is zero loss and exactly-once across every step, a complete final
// drain, and at least one step within the target.
func evaluateRamp(r *Report, cs *[]Check, p99Target float64) {
	for i := range *cs {
		c := &(*cs)[i]
		if c.Group == "sla" && c.Status == Fail && c.Key != "duplicates" && c.Key != "error_rate" {
			c.Status = Warn
			c.Target += " (info: the ramp overloads on purpose)"
		}
	}
	st := Pass
	v := fmt.Sprintf("%s (P99 %s)", Rate(r.MaxRate.RowsPerSec), Dur(r.MaxRate.P99))
	if r.MaxRate.RowsPerSec <= 0 {
		st, v = Fail, "no step passed"
	}
	*cs = append(*cs, Check{Group: "invariant", Key: "max_rate", Metric: "Highest rate with P99 < " + Dur(p99Target) + " and zero loss",
		Target: "found", Value: v, Status: st})
	r.Checks = *cs
	r.Passed = len(r.Problems) == 0
	for _, c := range *cs {
		if c.Status == Fail {
			r.Passed = false
		}
	}
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "NO"
}

// Failed lists the checks that failed, for the exit message.
func (r *Report) Failed() []string {
	var out []string
	for _, c := range r.Checks {
		if c.Status == Fail {
			out = append(out, fmt.Sprintf("%s: %s (target %s)", c.Metric, c.Value, c.Target))
		}
	}
	return append(out, r.Problems...)
}
