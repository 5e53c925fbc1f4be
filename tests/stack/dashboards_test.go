package stack

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ecomstream/ecomstream/tests/stack/dashboards"
)

var update = flag.Bool("update", false, "rewrite grafana/dashboards/*.json from tests/stack/dashboards")

// root is the repository root, two levels up from this package.
func root(t testing.TB) string {
	t.Helper()
	r, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func loadSLA(t testing.TB) dashboards.SLA {
	t.Helper()
	s, err := dashboards.LoadSLA(filepath.Join(root(t), dashboards.SLAFile))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// The committed JSON is what the code generates from the SLA file (regenerate with
// `make dashboards`).
func TestDashboardsAreCurrent(t *testing.T) {
	for name, d := range dashboards.All(loadSLA(t)) {
		want, err := dashboards.JSON(d)
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, '\n')
		path := filepath.Join(root(t), "grafana", "dashboards", name)
		if *update {
			if err := os.WriteFile(path, want, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		got, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (generate with: make dashboards)", err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s is stale: make dashboards", path)
		}
	}
}

// dashboardFile is the part of Grafana's model the checks read.
type dashboardFile struct {
	UID           string       `json:"uid"`
	Title         string       `json:"title"`
	GraphTooltip  int          `json:"graphTooltip"`
	SchemaVersion int          `json:"schemaVersion"`
	Panels        []panelModel `json:"panels"`
	Links         []struct {
		Type        string   `json:"type"`
		Tags        []string `json:"tags"`
		IncludeVars bool     `json:"includeVars"`
		KeepTime    bool     `json:"keepTime"`
	} `json:"links"`
	Templating struct {
		List []struct {
			Name       string          `json:"name"`
			Label      string          `json:"label"`
			Type       string          `json:"type"`
			Query      json.RawMessage `json:"query"`
			Multi      bool            `json:"multi"`
			AllValue   string          `json:"allValue"`
			Datasource *datasourceRef  `json:"datasource"`
		} `json:"list"`
	} `json:"templating"`
}

type datasourceRef struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

type panelModel struct {
	Type        string         `json:"type"`
	Title       string         `json:"title"`
	Description string         `json:"description"`
	Datasource  *datasourceRef `json:"datasource"`
	GridPos     struct {
		X, Y, W, H int
	} `json:"gridPos"`
	FieldConfig struct {
		Defaults struct {
			Unit       string `json:"unit"`
			Thresholds struct {
				Steps []struct {
					Color string   `json:"color"`
					Value *float64 `json:"value"`
				} `json:"steps"`
			} `json:"thresholds"`
		} `json:"defaults"`
		Overrides []struct {
			Properties []struct {
				ID    string `json:"id"`
				Value any    `json:"value"`
			} `json:"properties"`
		} `json:"overrides"`
	} `json:"fieldConfig"`
	Targets []struct {
		Expr         string         `json:"expr"`
		LegendFormat string         `json:"legendFormat"`
		Datasource   *datasourceRef `json:"datasource"`
	} `json:"targets"`
}

// loadDashboards reads every dashboard JSON file as Grafana would see it.
func loadDashboards(t testing.TB) map[string]dashboardFile {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(root(t), "grafana", "dashboards", "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no dashboards in grafana/dashboards: %v", err)
	}
	out := map[string]dashboardFile{}
	for _, f := range files {
		var d dashboardFile
		if err := json.Unmarshal([]byte(readFile(t, f)), &d); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		out[filepath.Base(f)] = d
	}
	return out
}

// Fixed uids, the schema version the SDK emits, a description on every panel and at least
// one query on every non-row panel; the $datasource variable defaults to the provisioned
// datasource.
func TestDashboardsJSON(t *testing.T) {
	ds := readFile(t, filepath.Join(root(t), "grafana", "provisioning", "datasources", "prometheus.yml"))
	if !strings.Contains(ds, "uid: "+dashboards.DatasourceUID) {
		t.Fatalf("provisioned datasource does not have uid %s", dashboards.DatasourceUID)
	}
	wantUIDs := map[string]string{
		"pipeline-sla.json": "ecomstream-pipeline-sla",
		"resources.json":    "ecomstream-resources",
		"database.json":     "ecomstream-database",
	}
	all := loadDashboards(t)
	uids := map[string]bool{}
	for name, d := range all {
		if want, ok := wantUIDs[name]; ok && d.UID != want {
			t.Errorf("%s: uid %q, want %q", name, d.UID, want)
		}
		if d.UID == "" || uids[d.UID] {
			t.Errorf("%s: uid %q empty or repeated", name, d.UID)
		}
		uids[d.UID] = true
		if d.SchemaVersion < 39 {
			t.Errorf("%s: schemaVersion %d", name, d.SchemaVersion)
		}
		for _, p := range d.Panels {
			if p.Type == "row" {
				continue
			}
			if strings.TrimSpace(p.Description) == "" {
				t.Errorf("%s: panel %s: no description", name, p.Title)
			}
			if len(p.Targets) == 0 {
				t.Errorf("%s: panel %s: no query", name, p.Title)
			}
		}
	}
	for name := range wantUIDs {
		if _, ok := all[name]; !ok {
			t.Errorf("dashboard %s missing", name)
		}
	}
}

// validUnits are the unit ids dashboard-linter's panel-units rule accepts that we may use.
var validUnits = map[string]bool{
	"none": true, "short": true, "percent": true, "percentunit": true, "bytes": true, "decbytes": true,
	"binBps": true, "Bps": true, "s": true, "ms": true, "cps": true, "ops": true, "reqps": true, "rps": true, "wps": true,
}

// grafana/dashboard-linter's rules, applied to every dashboard: template-datasource,
// template-job, template-instance, panel-datasource, target-rate-interval,
// target-counter-agg, panel-units (definitions in the linter's lint/rule_*.go).
func TestDashboardsFollowTheLinterRules(t *testing.T) {
	for name, d := range loadDashboards(t) {
		vars := map[string]int{}
		for i, v := range d.Templating.List {
			vars[v.Name] = i
		}
		// template-datasource: one datasource variable named datasource, labelled "Data source", for Prometheus.
		if i, ok := vars["datasource"]; !ok || d.Templating.List[i].Type != "datasource" ||
			string(d.Templating.List[i].Query) != `"prometheus"` || d.Templating.List[i].Label != "Data source" {
			t.Errorf("%s: template-datasource: no Prometheus datasource variable named datasource, labelled Data source", name)
		}
		// template-job, template-instance: a multi-select query variable on $datasource, All = .+.
		for _, want := range []struct{ name, label string }{{"job", "Job"}, {"instance", "Instance"}} {
			i, ok := vars[want.name]
			if !ok {
				t.Errorf("%s: template-%s: no %s variable", name, want.name, want.name)
				continue
			}
			v := d.Templating.List[i]
			if v.Type != "query" || v.Label != want.label || !v.Multi || v.AllValue != ".+" ||
				v.Datasource == nil || (v.Datasource.UID != "$datasource" && v.Datasource.UID != "${datasource}") {
				t.Errorf("%s: template-%s: %+v", name, want.name, v)
			}
		}
		for _, p := range d.Panels {
			if p.Type == "row" {
				continue
			}
			where := name + ": panel " + p.Title
			// panel-datasource: the panel and (stricter than the linter) each query use $datasource.
			if p.Datasource == nil || (p.Datasource.UID != "$datasource" && p.Datasource.UID != "${datasource}") {
				t.Errorf("%s: panel-datasource: %+v", where, p.Datasource)
			}
			// panel-units: a unit from the linter's list, on the panel and on every override.
			switch p.Type {
			case "stat", "singlestat", "graph", "table", "timeseries", "gauge":
				if !validUnits[p.FieldConfig.Defaults.Unit] {
					t.Errorf("%s: panel-units: unit %q", where, p.FieldConfig.Defaults.Unit)
				}
				for _, o := range p.FieldConfig.Overrides {
					for _, prop := range o.Properties {
						if u, _ := prop.Value.(string); prop.ID == "unit" && !validUnits[u] {
							t.Errorf("%s: panel-units: override unit %q", where, u)
						}
					}
				}
			}
			for _, q := range p.Targets {
				if q.Datasource == nil || (q.Datasource.UID != "$datasource" && q.Datasource.UID != "${datasource}") {
					t.Errorf("%s: panel-datasource: query %q does not use $datasource", where, q.Expr)
				}
				for rule, check := range map[string]func(string) (string, error){
					"target-rate-interval": rateIntervalProblem,
					"target-counter-agg":   counterAggProblem,
				} {
					problem, err := check(q.Expr)
					if err != nil {
						t.Errorf("%s: %s: %v", where, rule, err)
					} else if problem != "" {
						t.Errorf("%s: %s: %s in %s", where, rule, problem, q.Expr)
					}
				}
			}
		}
	}
}

// The three dashboards link to each other keeping time and replicas, with one crosshair.
func TestDashboardsLinkEachOtherWithSharedCrosshair(t *testing.T) {
	for name, d := range loadDashboards(t) {
		if d.GraphTooltip != 1 {
			t.Errorf("%s: graphTooltip %d, want 1 (shared crosshair)", name, d.GraphTooltip)
		}
		ok := false
		for _, l := range d.Links {
			if l.Type == "dashboards" && len(l.Tags) == 1 && l.Tags[0] == dashboards.Tag && l.IncludeVars && l.KeepTime {
				ok = true
			}
		}
		if !ok {
			t.Errorf("%s: no link to the %s dashboards keeping time and variables: %+v", name, dashboards.Tag, d.Links)
		}
	}
}

// firstScreenRows is the height of a 1080p screen in grid units: 1080 px less Grafana's
// header and variable bar (~170 px), at 30 px per unit plus 8 px margins.
const firstScreenRows = 24

// The first screen of the Pipeline SLA dashboard shows every Key Metric with its target,
// coloured by the thresholds of the SLA file, then throughput and latency over time.
func TestPipelineFirstScreenShowsKeyMetricsWithTargetsThenThroughputAndLatency(t *testing.T) {
	s := loadSLA(t)
	d := loadDashboards(t)["pipeline-sla.json"]
	onScreen := map[string]panelModel{}
	for _, p := range d.Panels {
		if p.GridPos.Y+p.GridPos.H <= firstScreenRows {
			onScreen[p.Title] = p
		}
	}
	keyBottom := 0
	for _, k := range dashboards.KeyMetrics {
		title := k.Title + " · target " + dashboards.TargetText(s, k.SLA, k.Unit)
		p, ok := onScreen[title]
		if !ok {
			t.Errorf("Key Metric %q not on the first screen", title)
			continue
		}
		keyBottom = max(keyBottom, p.GridPos.Y+p.GridPos.H)
		if p.FieldConfig.Defaults.Unit != k.Unit {
			t.Errorf("%s: unit %q, want %q", title, p.FieldConfig.Defaults.Unit, k.Unit)
		}
		var got []float64
		for _, st := range p.FieldConfig.Defaults.Thresholds.Steps {
			if st.Value != nil {
				got = append(got, *st.Value)
			}
		}
		want := []float64{}
		for _, st := range dashboards.Steps(s, k.SLA) {
			if st.Value != nil {
				want = append(want, *st.Value)
			}
		}
		if len(got) != len(want) {
			t.Errorf("%s: thresholds %v, want %v (from %s)", title, got, want, dashboards.SLAFile)
		}
		for i := range got {
			if i < len(want) && got[i] != want[i] {
				t.Errorf("%s: thresholds %v, want %v (from %s)", title, got, want, dashboards.SLAFile)
			}
		}
	}
	for _, title := range []string{"Throughput: generated vs inserted", "End-to-end latency"} {
		p, ok := onScreen[title]
		if !ok || p.Type != "timeseries" {
			t.Errorf("%q is not a time series on the first screen", title)
		} else if p.GridPos.Y < keyBottom {
			t.Errorf("%q is above the Key Metrics", title)
		}
	}
}

// The targets are read from the SLA file: a changed target changes the thresholds and the
// title, and a file in another shape is an error, never a silent default.
func TestSLATargetsComeFromTheThresholdsFile(t *testing.T) {
	orig := readFile(t, filepath.Join(root(t), dashboards.SLAFile))
	changed := strings.Replace(orig, "expr: vector(60)\n        labels: {sla: latency_p95", "expr: vector(45)\n        labels: {sla: latency_p95", 1)
	if changed == orig {
		t.Fatal("the P95 target is not written as this test expects; adapt the test")
	}
	path := filepath.Join(t.TempDir(), "sla.rules.yml")
	if err := os.WriteFile(path, []byte(changed), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := dashboards.LoadSLA(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := dashboards.TargetText(s, "latency_p95", "s"); got != "< 45 s" {
		t.Errorf("P95 target %q, want < 45 s", got)
	}
	// Yellow from the warning margin below the target (0.1 in the file), red from it.
	if st := dashboards.Steps(s, "latency_p95"); len(st) != 3 || *st[1].Value != 40.5 || *st[2].Value != 45 {
		t.Errorf("P95 steps %+v, want yellow 40.5, red 45", st)
	}
	if st := dashboards.Steps(s, "throughput"); len(st) != 3 || st[0].Color != "red" || *st[1].Value != 10 || *st[2].Value != 11 {
		t.Errorf("throughput steps %+v, want red below 10, green from 11", st)
	}
	if got := dashboards.TargetText(s, "ingester_memory", "bytes"); got != "< 4 GiB" {
		t.Errorf("memory target %q, want < 4 GiB", got)
	}
	if got := dashboards.TargetText(s, "error_rate", "percentunit"); got != "< 0.1 %" {
		t.Errorf("error target %q, want < 0.1 %%", got)
	}
	if err := os.WriteFile(path, []byte(strings.Replace(orig, "expr: vector(60)", "expr: 60", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := dashboards.LoadSLA(path); err == nil {
		t.Error("a threshold that is not vector(N) was accepted")
	}
}

func readFile(t testing.TB, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
