// Package sla reads the performance report's SLA targets from the one file that holds
// them, deploy/prometheus/rules/sla-thresholds.rules.yml: Prometheus evaluates it for the
// alerts, the dashboards' thresholds are generated from it and the load-test report checks
// against it. The file is read as Prometheus reads it (rule groups); a threshold written
// in any other shape than vector(<number>) is an error, never a silent default.
package sla

import (
	"fmt"
	"os"
	"regexp"
	"strconv"

	"gopkg.in/yaml.v3"
)

// File is the thresholds file, relative to the repository root.
const File = "deploy/prometheus/rules/sla-thresholds.rules.yml"

// The recording rules the file defines.
const (
	thresholdRecord = "ecomstream:sla_threshold:value"
	marginRecord    = "ecomstream:sla_warning_margin:ratio"
)

// Target is one Key Metric's target: Max means the value must stay at or below Value,
// otherwise at or above it.
type Target struct {
	Value float64
	Max   bool
}

// Targets are the file's targets by their sla label (latency_p50, throughput, ...) and the
// warning margin: the share of a target within which a value is "approaching" (⚠).
type Targets struct {
	ByName map[string]Target
	Margin float64
}

var vectorExpr = regexp.MustCompile(`^\s*vector\(\s*([-+0-9.eE]+)\s*\)\s*$`)

// Load reads the targets and the margin from path.
func Load(path string) (Targets, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Targets{}, fmt.Errorf("SLA targets: %w", err)
	}
	var doc struct {
		Groups []struct {
			Rules []struct {
				Record string            `yaml:"record"`
				Expr   string            `yaml:"expr"`
				Labels map[string]string `yaml:"labels"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return Targets{}, fmt.Errorf("%s: %w", path, err)
	}
	t := Targets{ByName: map[string]Target{}}
	margin := false
	for _, g := range doc.Groups {
		for _, r := range g.Rules {
			if r.Record != thresholdRecord && r.Record != marginRecord {
				continue
			}
			m := vectorExpr.FindStringSubmatch(r.Expr)
			if m == nil {
				return Targets{}, fmt.Errorf("%s: %s: expression %q is not vector(<number>)", path, r.Record, r.Expr)
			}
			v, err := strconv.ParseFloat(m[1], 64)
			if err != nil {
				return Targets{}, fmt.Errorf("%s: %s: %w", path, r.Record, err)
			}
			if r.Record == marginRecord {
				t.Margin, margin = v, true
				continue
			}
			name, dir := r.Labels["sla"], r.Labels["direction"]
			if name == "" || (dir != "max" && dir != "min") {
				return Targets{}, fmt.Errorf("%s: threshold %q needs labels sla and direction max|min, has %v", path, r.Expr, r.Labels)
			}
			if _, dup := t.ByName[name]; dup {
				return Targets{}, fmt.Errorf("%s: threshold %s defined twice", path, name)
			}
			t.ByName[name] = Target{Value: v, Max: dir == "max"}
		}
	}
	if len(t.ByName) == 0 {
		return Targets{}, fmt.Errorf("%s: no %s rules", path, thresholdRecord)
	}
	if !margin {
		return Targets{}, fmt.Errorf("%s: no %s rule", path, marginRecord)
	}
	return t, nil
}
