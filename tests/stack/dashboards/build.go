package dashboards

import (
	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/cog/variants"
	"github.com/grafana/grafana-foundation-sdk/go/common"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/heatmap"
	"github.com/grafana/grafana-foundation-sdk/go/prometheus"
	"github.com/grafana/grafana-foundation-sdk/go/stat"
	"github.com/grafana/grafana-foundation-sdk/go/table"
	"github.com/grafana/grafana-foundation-sdk/go/timeseries"
)

// Grafana unit ids (all in dashboard-linter's panel-units list).
const (
	unitSeconds        = "s"
	unitPercent        = "percentunit" // 0.8 shows as 80 %
	unitBytes          = "bytes"       // IEC: 4294967296 shows as 4 GiB
	unitBytesPerSecond = "binBps"
	unitRowsPerSecond  = "cps" // counts (rows) per second
	unitOpsPerSecond   = "ops"
	unitShort          = "short"
	unitNone           = "none"
)

// DatasourceUID is the uid of the provisioned Prometheus datasource
// (grafana/provisioning/datasources/prometheus.yml), the $datasource variable's default.
const DatasourceUID = "ecomstream-prometheus"

// Tag marks the product's dashboards; the links between them list this tag.
const Tag = "ecomstream"

// datasource is the $datasource variable: every panel and query names it.
var datasource = common.DataSourceRef{Type: ptr("prometheus"), Uid: ptr("${datasource}")}

// Label matchers of the replica variables. Per-replica queries of a service's own metrics
// filter by instance (the $instance list follows $job); job-generic queries (process_*,
// go_*) filter by both. The collector's DB-side facts are about the whole pipeline and
// are not filtered.
const (
	inst   = `instance=~"$instance"`
	jobSel = `job=~"$job", instance=~"$instance"`
)

// Builder is the SDK's builder of the classic dashboard model. The SDK marks it deprecated
// in favour of its v2 schema, which Grafana's file provisioning of our pinned release does
// not read; the classic model is what grafana/dashboards/*.json must be.
//
//lint:ignore SA1019 the classic model is the one file provisioning reads (see above)
type Builder = dashboard.DashboardBuilder

// newDashboard is one of the three with what they share: the variables, links to the
// others (keeping time range and variables), a shared crosshair, 5 s refresh.
func newDashboard(uid, title, description string) *Builder {
	//lint:ignore SA1019 the classic model is the one file provisioning reads (see Builder)
	return dashboard.NewDashboardBuilder(title).
		Uid(uid).
		Description(description).
		Tags([]string{Tag}).
		Timezone("browser").
		Editable().
		Tooltip(dashboard.DashboardCursorSyncCrosshair).
		Refresh("5s").
		Time("now-15m", "now").
		Link(dashboard.NewDashboardLinkBuilder("ecomstream").
			Type(dashboard.DashboardLinkTypeDashboards).
			Tags([]string{Tag}).
			AsDropdown(false).
			IncludeVars(true).
			KeepTime(true).
			Tooltip("The other ecomstream dashboards, same time range and replicas")).
		WithVariable(dashboard.NewDatasourceVariableBuilder("datasource").
			Label("Data source").
			Type("prometheus").
			Current(dashboard.VariableOption{Text: str("Prometheus"), Value: str(DatasourceUID)})).
		WithVariable(queryVariable("job", "Job", `label_values(up, job)`,
			"Prometheus job: generator, ingester, collector, the exporters")).
		WithVariable(queryVariable("instance", "Instance", InstanceQuery,
			"One replica of the selected jobs, by its name (ingester-2 under compose); the value is Prometheus' instance label").
			Regex(InstanceRegex))
}

// The $instance list: every target of the selected jobs (up), each shown by the replica
// name its ecomstream_build_info carries where it has one (package replica) while the
// value stays the instance label every query filters on. Prometheus cannot name a
// DNS-SD target itself (it gets an address only), so the name is joined in here, as
// node_uname_info's nodename is for node_exporter. Grafana formats each query_result
// series as {instance="...", job="...", replica="..."} 1 <time> (labels sorted), and
// the regex's value and text groups split it.
const (
	InstanceQuery = `query_result(max by (job, instance, replica) (ecomstream_build_info{job=~"$job"}) or on (job, instance) max by (job, instance) (up{job=~"$job"}))`
	InstanceRegex = `/instance="(?<value>[^"]+)"(?:.*replica="(?<text>[^"]+)")?/`
)

func str(s string) dashboard.StringOrArrayOfString {
	return dashboard.StringOrArrayOfString{String: &s}
}

// queryVariable is a multi-select Prometheus label variable with "All" = .+ (the linter's
// template-job and template-instance rules).
func queryVariable(name, label, query, description string) *dashboard.QueryVariableBuilder {
	return dashboard.NewQueryVariableBuilder(name).
		Label(label).
		Description(description).
		Datasource(datasource).
		Query(dashboard.StringOrMap{String: &query}).
		Definition(query).
		Refresh(dashboard.VariableRefreshOnTimeRangeChanged).
		Sort(dashboard.VariableSortAlphabeticalAsc).
		Multi(true).
		IncludeAll(true).
		AllValue(".+").
		Current(dashboard.VariableOption{Text: str("All"), Value: dashboard.StringOrArrayOfString{ArrayOfString: []string{"$__all"}}})
}

// named joins each series of expr (grouped by instance, of our services only) with the
// replica label of its target's ecomstream_build_info, so a legend can say {{replica}}
// (ingester-2) where the instance label is an address (ingester/172.18.0.5).
func named(expr string) string {
	return "(" + expr + ") * on (instance) group_left (replica) max by (instance, replica) (ecomstream_build_info)"
}

// namedOrInstance is named for series of any job: a target without build_info (an
// exporter, Prometheus) keeps its series, named by its instance label.
func namedOrInstance(expr string) string {
	return named(expr) + " or on (job, instance) label_join(" + expr + `, "replica", "", "instance")`
}

// query is one range query drawn as a series named legend.
func query(expr, legend string) *prometheus.DataqueryBuilder {
	return prometheus.NewDataqueryBuilder().Datasource(datasource).Expr(expr).LegendFormat(legend).Range()
}

// tableQuery is one instant query whose series become table rows.
func tableQuery(expr string) *prometheus.DataqueryBuilder {
	return prometheus.NewDataqueryBuilder().Datasource(datasource).Expr(expr).Instant().Format(prometheus.PromQueryFormatTable)
}

func thresholds(steps []dashboard.Threshold) *dashboard.ThresholdsConfigBuilder {
	return dashboard.NewThresholdsConfigBuilder().Mode(dashboard.ThresholdsModeAbsolute).Steps(steps)
}

// noThresholds is a single base step: the series keep their palette colours.
var noThresholds = []dashboard.Threshold{{Color: "green"}}

// series is a time-series panel: multi-series tooltip (hover values), legend with last and
// max, thresholds drawn as lines only when given.
func series(title, description, unit string, w, h uint32, steps []dashboard.Threshold, qs ...*prometheus.DataqueryBuilder) *timeseries.PanelBuilder {
	p := timeseries.NewPanelBuilder().
		Title(title).Description(description).Unit(unit).
		Datasource(datasource).
		Span(w).Height(h).
		LineWidth(1).FillOpacity(10).
		Legend(common.NewVizLegendOptionsBuilder().DisplayMode(common.LegendDisplayModeTable).
			Placement(common.LegendPlacementBottom).ShowLegend(true).Calcs([]string{"lastNotNull", "max"})).
		Tooltip(common.NewVizTooltipOptionsBuilder().Mode(common.TooltipDisplayModeMulti).Sort(common.SortOrderDescending))
	if steps == nil {
		p.Thresholds(thresholds(noThresholds))
	} else {
		p.Thresholds(thresholds(steps)).
			ThresholdsStyle(common.NewGraphThresholdsStyleConfigBuilder().Mode(common.GraphThresholdsStyleModeDashed))
	}
	withTargets(p, qs)
	return p
}

// single is a stat panel showing the last value coloured by its thresholds.
func single(title, description, unit string, w, h uint32, steps []dashboard.Threshold, qs ...*prometheus.DataqueryBuilder) *stat.PanelBuilder {
	if steps == nil {
		steps = []dashboard.Threshold{{Color: "text"}}
	}
	p := stat.NewPanelBuilder().
		Title(title).Description(description).Unit(unit).
		Datasource(datasource).
		Span(w).Height(h).
		Thresholds(thresholds(steps)).
		ColorMode(common.BigValueColorModeBackground).
		GraphMode(common.BigValueGraphModeArea).
		ReduceOptions(common.NewReduceDataOptionsBuilder().Calcs([]string{"lastNotNull"}).Values(false))
	withTargets(p, qs)
	return p
}

// grid is a table of instant queries merged into one row per value of label.
func grid(title, description, unit string, w, h uint32, label string, rename map[string]string, qs ...*prometheus.DataqueryBuilder) *table.PanelBuilder {
	p := table.NewPanelBuilder().
		Title(title).Description(description).Unit(unit).
		Datasource(datasource).
		Span(w).Height(h).
		Thresholds(thresholds(noThresholds)).
		ShowHeader(true).
		Transformations([]dashboard.DataTransformerConfig{
			{Id: "merge", Options: map[string]any{}},
			{Id: "organize", Options: map[string]any{
				"excludeByName": map[string]bool{"Time": true},
				"renameByName":  rename,
			}},
			{Id: "sortBy", Options: map[string]any{"sort": []any{map[string]any{"field": rename[label]}}}},
		})
	withTargets(p, qs)
	return p
}

// unitOf sets a table column's or a series' own unit.
func unitOf(u string) []dashboard.DynamicConfigValue {
	return []dashboard.DynamicConfigValue{{Id: "unit", Value: u}}
}

// heat is a heatmap of a histogram's buckets (already bucketed: no calculation).
func heat(title, description string, expr string) *heatmap.PanelBuilder {
	return heatmap.NewPanelBuilder().
		Title(title).Description(description).Unit(unitShort).
		Datasource(datasource).
		Span(24).Height(8).
		Calculate(false).
		CellGap(1).
		Color(heatmap.NewHeatmapColorOptionsBuilder().Mode(heatmap.HeatmapColorModeScheme).Scheme("Oranges").Steps(64)).
		YAxis(heatmap.NewYAxisConfigBuilder().Unit(unitSeconds)).
		WithTarget(prometheus.NewDataqueryBuilder().Datasource(datasource).Expr(expr).
			LegendFormat("{{le}}").Format(prometheus.PromQueryFormatHeatmap).Range().RefId("A"))
}

func row(title string) *dashboard.RowBuilder { return dashboard.NewRowBuilder(title) }

// withTargets adds the queries with refIds A, B, ... (tables name their columns "Value #A").
func withTargets[P interface {
	WithTarget(cog.Builder[variants.Dataquery]) P
}](p P, qs []*prometheus.DataqueryBuilder) {
	for i, q := range qs {
		p.WithTarget(q.RefId(string(rune('A' + i))))
	}
}
