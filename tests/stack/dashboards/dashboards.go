// Package dashboards builds the Grafana dashboards (grafana/dashboards/*.json) as code with
// grafana-foundation-sdk: typed panels, the $datasource, $job and $instance variables,
// links between the three and a shared crosshair. The SLA thresholds are read from
// deploy/prometheus/rules/sla-thresholds.rules.yml, the one place that also drives the
// alerts. `make dashboards` rewrites the JSON; TestDashboardsAreCurrent fails when the
// JSON is stale, and TestDashboardsFollowTheLinterRules applies grafana/dashboard-linter's
// rules to it.
package dashboards

import (
	"encoding/json"
	"fmt"
)

// All returns every dashboard, keyed by its file name under grafana/dashboards/.
func All(s SLA) map[string]*Builder {
	return map[string]*Builder{
		"pipeline-sla.json": PipelineSLA(s),
		"resources.json":    Resources(s),
		"database.json":     Database(s),
	}
}

// JSON renders a dashboard as Grafana's dashboard model, panels numbered in order.
func JSON(b *Builder) ([]byte, error) {
	d, err := b.Build()
	if err != nil {
		return nil, fmt.Errorf("dashboard: %w", err)
	}
	// Above the panels, not in Grafana 12's controls menu (the SDK's default placement).
	for i := range d.Links {
		d.Links[i].Placement = nil
	}
	id := uint32(0)
	for _, p := range d.Panels {
		id++
		if p.Panel != nil {
			p.Panel.Id = ptr(id)
		}
		if p.RowPanel != nil {
			p.RowPanel.Id = id
		}
	}
	return json.MarshalIndent(d, "", "  ")
}
