package dashboards

import (
	"fmt"
	"strconv"

	"github.com/grafana/grafana-foundation-sdk/go/dashboard"

	"github.com/ecomstream/ecomstream/services/common/sla"
)

// SLAFile is where the report's targets live, relative to the repository root: the one
// place that drives the alert rules, the SLA status rules and these dashboards'
// thresholds.
const SLAFile = sla.File

// SLA is the thresholds file's targets (by the sla label) and warning margin.
type SLA = sla.Targets

// LoadSLA reads the thresholds file and checks it has every Key Metric's target.
func LoadSLA(path string) (SLA, error) {
	s, err := sla.Load(path)
	if err != nil {
		return SLA{}, err
	}
	for _, k := range KeyMetrics {
		if _, ok := s.ByName[k.SLA]; !ok {
			return SLA{}, fmt.Errorf("%s: no threshold for %s", path, k.SLA)
		}
	}
	return s, nil
}

// Steps are Grafana threshold steps for one Key Metric, as the SLA status rules colour
// it: green meets the target, yellow within the margin of it, red misses it. A value
// exactly at an upper target counts as missed on the dashboard (Grafana colours a step
// from its value on); for a zero upper target (duplicates, a count) red starts at 1.
func Steps(s SLA, name string) []dashboard.Threshold {
	t := s.ByName[name]
	step := func(color string, v *float64) dashboard.Threshold { return dashboard.Threshold{Color: color, Value: v} }
	if t.Max {
		red := t.Value
		if red == 0 {
			return []dashboard.Threshold{step("green", nil), step("red", ptr(1.0))}
		}
		return []dashboard.Threshold{step("green", nil), step("#EAB839", ptr((1-s.Margin)*red)), step("red", ptr(red))}
	}
	return []dashboard.Threshold{step("red", nil), step("#EAB839", ptr(t.Value)), step("green", ptr((1+s.Margin)*t.Value))}
}

// TargetText is the target as the report writes it, in the metric's unit: "< 30 s".
func TargetText(s SLA, name, unit string) string {
	t := s.ByName[name]
	op := "<"
	if !t.Max {
		op = ">"
	}
	if t.Value == 0 {
		op = "="
	}
	v := t.Value
	switch unit {
	case unitSeconds:
		return fmt.Sprintf("%s %s s", op, num(v))
	case unitPercent:
		return fmt.Sprintf("%s %s %%", op, num(v*100))
	case unitBytes:
		for _, u := range []struct {
			name string
			size float64
		}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
			if v >= u.size {
				return fmt.Sprintf("%s %s %s", op, num(v/u.size), u.name)
			}
		}
		return fmt.Sprintf("%s %s B", op, num(v))
	case unitRowsPerSecond:
		return fmt.Sprintf("%s %s rows/s", op, num(v))
	}
	return fmt.Sprintf("%s %s", op, num(v))
}

func num(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }

func ptr[T any](v T) *T { return &v }
