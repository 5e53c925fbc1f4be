// Package dashboards builds the Grafana dashboards (grafana/dashboards/*.json) as code:
// every panel names the provisioned datasource, has a unit and a description, and the
// SLA thresholds are the report's targets. `go test ./tests/stack -run TestDashboardsAreCurrent
// -update` rewrites the JSON; without -update the test fails when the JSON is stale.
package dashboards

import (
	"encoding/json"
	"fmt"
)

// DatasourceUID is the uid of the provisioned Prometheus datasource
// (grafana/provisioning/datasources/prometheus.yml).
const DatasourceUID = "ecomstream-prometheus"

var datasource = map[string]any{"type": "prometheus", "uid": DatasourceUID}

// Dashboard is one dashboard with a fixed uid.
type Dashboard struct {
	UID, Title, Description string
	Panels                  []Panel
}

// Panel is one panel; Width is in grid columns (of 24), height is 8 unless Height is set.
type Panel struct {
	Type        string // timeseries, stat, table, heatmap, gauge, row
	Title       string
	Description string
	Unit        string
	Targets     []Target
	Width       int
	Height      int
	Thresholds  []Step // absolute; the first step's value is ignored (base)
	Min, Max    *float64
	Mappings    []any
	Overrides   []any
	Transform   []any
	Options     map[string]any
	Custom      map[string]any
}

// Target is one PromQL query.
type Target struct {
	Expr    string
	Legend  string
	Instant bool
	Format  string // time_series (default), table, heatmap
}

// Step is one threshold step.
type Step struct {
	Color string
	Value float64
}

// Green, yellow and red steps for an upper-bound target: yellow from warnAt, red from the target.
func upper(warnAt, target float64) []Step {
	return []Step{{"green", 0}, {"yellow", warnAt}, {"red", target}}
}

// lower is the same for a lower-bound target (throughput): red below it.
func lower(target, okAt float64) []Step {
	return []Step{{"red", 0}, {"yellow", target}, {"green", okAt}}
}

func ptr(f float64) *float64 { return &f }

// JSON renders d as Grafana's dashboard model.
func (d Dashboard) JSON() ([]byte, error) {
	var panels []any
	x, y, rowH := 0, 0, 0
	for i, p := range d.Panels {
		w, h := p.Width, p.Height
		if w == 0 {
			w = 12
		}
		if h == 0 {
			h = 8
		}
		if p.Type == "row" {
			w, h = 24, 1
		}
		if x+w > 24 || p.Type == "row" {
			x, y, rowH = 0, y+rowH, 0
		}
		panels = append(panels, p.model(i+1, x, y, w, h))
		x += w
		rowH = max(rowH, h)
		if p.Type == "row" {
			x, y, rowH = 0, y+1, 0
		}
	}
	m := map[string]any{
		"uid":           d.UID,
		"title":         d.Title,
		"description":   d.Description,
		"tags":          []string{"ecomstream"},
		"timezone":      "browser",
		"editable":      true,
		"schemaVersion": 39,
		"version":       1,
		"refresh":       "5s",
		"time":          map[string]any{"from": "now-15m", "to": "now"},
		"templating":    map[string]any{"list": []any{}},
		"annotations":   map[string]any{"list": []any{}},
		"panels":        panels,
	}
	return json.MarshalIndent(m, "", "  ")
}

func (p Panel) model(id, x, y, w, h int) map[string]any {
	m := map[string]any{
		"id":          id,
		"type":        p.Type,
		"title":       p.Title,
		"description": p.Description,
		"gridPos":     map[string]int{"x": x, "y": y, "w": w, "h": h},
	}
	if p.Type == "row" {
		m["collapsed"] = false
		m["panels"] = []any{}
		return m
	}
	m["datasource"] = datasource
	var targets []any
	for i, t := range p.Targets {
		format := t.Format
		if format == "" {
			format = "time_series"
		}
		targets = append(targets, map[string]any{
			"refId":        string(rune('A' + i)),
			"datasource":   datasource,
			"expr":         t.Expr,
			"legendFormat": t.Legend,
			"instant":      t.Instant,
			"range":        !t.Instant,
			"format":       format,
		})
	}
	m["targets"] = targets
	defaults := map[string]any{"unit": p.Unit}
	steps := []any{map[string]any{"color": "green", "value": nil}}
	if len(p.Thresholds) > 0 {
		steps = []any{map[string]any{"color": p.Thresholds[0].Color, "value": nil}}
		for _, s := range p.Thresholds[1:] {
			steps = append(steps, map[string]any{"color": s.Color, "value": s.Value})
		}
	}
	defaults["thresholds"] = map[string]any{"mode": "absolute", "steps": steps}
	if p.Min != nil {
		defaults["min"] = *p.Min
	}
	if p.Max != nil {
		defaults["max"] = *p.Max
	}
	if p.Mappings != nil {
		defaults["mappings"] = p.Mappings
	}
	custom := map[string]any{}
	if p.Type == "timeseries" {
		custom["drawStyle"] = "line"
		custom["lineWidth"] = 1
		custom["fillOpacity"] = 10
		if len(p.Thresholds) > 0 {
			custom["thresholdsStyle"] = map[string]any{"mode": "line+area"}
		}
	}
	for k, v := range p.Custom {
		custom[k] = v
	}
	if len(custom) > 0 {
		defaults["custom"] = custom
	}
	overrides := p.Overrides
	if overrides == nil {
		overrides = []any{}
	}
	m["fieldConfig"] = map[string]any{"defaults": defaults, "overrides": overrides}
	if p.Transform != nil {
		m["transformations"] = p.Transform
	}
	opts := map[string]any{}
	switch p.Type {
	case "stat":
		opts = map[string]any{"colorMode": "background", "graphMode": "area", "reduceOptions": map[string]any{"calcs": []string{"lastNotNull"}, "fields": "", "values": false}}
	case "timeseries":
		opts = map[string]any{"legend": map[string]any{"displayMode": "list", "placement": "bottom", "showLegend": true}, "tooltip": map[string]any{"mode": "multi"}}
	case "table":
		opts = map[string]any{"showHeader": true}
	}
	for k, v := range p.Options {
		opts[k] = v
	}
	m["options"] = opts
	return m
}

// unitOverride sets the unit (and optionally a display name) of one table field.
func fieldOverride(field string, props ...any) map[string]any {
	var ps []any
	for i := 0; i+1 < len(props); i += 2 {
		ps = append(ps, map[string]any{"id": props[i], "value": props[i+1]})
	}
	return map[string]any{"matcher": map[string]any{"id": "byName", "options": field}, "properties": ps}
}

// joinTable merges instant queries into one table row per value of label, hiding Time.
func joinTable(label string, rename map[string]string) []any {
	return []any{
		map[string]any{"id": "merge", "options": map[string]any{}},
		map[string]any{"id": "organize", "options": map[string]any{
			"excludeByName": map[string]bool{"Time": true},
			"renameByName":  rename,
		}},
		map[string]any{"id": "sortBy", "options": map[string]any{"sort": []any{map[string]any{"field": label}}}},
	}
}

func valueMap(pairs ...any) []any {
	opts := map[string]any{}
	for i := 0; i+2 < len(pairs)+1; i += 3 {
		opts[fmt.Sprint(pairs[i])] = map[string]any{"text": pairs[i+1], "color": pairs[i+2], "index": i / 3}
	}
	return []any{map[string]any{"type": "value", "options": opts}}
}
