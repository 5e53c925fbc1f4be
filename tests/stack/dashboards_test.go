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

// The committed JSON is what the code generates (regenerate with -update).
func TestDashboardsAreCurrent(t *testing.T) {
	for name, d := range dashboards.All() {
		want, err := d.JSON()
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
			t.Fatalf("%v (generate with: go test ./tests/stack -run TestDashboardsAreCurrent -update)", err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s is stale: go test ./tests/stack -run TestDashboardsAreCurrent -update", path)
		}
	}
}

// dashboardFile is the part of Grafana's model the checks read.
type dashboardFile struct {
	UID    string       `json:"uid"`
	Title  string       `json:"title"`
	Panels []panelModel `json:"panels"`
}

type panelModel struct {
	Type        string `json:"type"`
	Title       string `json:"title"`
	Description string `json:"description"`
	Datasource  *struct {
		Type string `json:"type"`
		UID  string `json:"uid"`
	} `json:"datasource"`
	FieldConfig struct {
		Defaults struct {
			Unit string `json:"unit"`
		} `json:"defaults"`
	} `json:"fieldConfig"`
	Targets []struct {
		Expr       string `json:"expr"`
		Datasource struct {
			UID string `json:"uid"`
		} `json:"datasource"`
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
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var d dashboardFile
		if err := json.Unmarshal(b, &d); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		out[filepath.Base(f)] = d
	}
	return out
}

// Fixed uids, the provisioned datasource on every panel and query, a unit and a
// description on every panel, and at least one query on every non-row panel.
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
	uids := map[string]bool{}
	for name, d := range loadDashboards(t) {
		if want, ok := wantUIDs[name]; ok && d.UID != want {
			t.Errorf("%s: uid %q, want %q", name, d.UID, want)
		}
		if d.UID == "" || uids[d.UID] {
			t.Errorf("%s: uid %q empty or repeated", name, d.UID)
		}
		uids[d.UID] = true
		for _, p := range d.Panels {
			where := name + ": panel " + p.Title
			if strings.TrimSpace(p.Description) == "" {
				t.Errorf("%s: no description", where)
			}
			if p.Type == "row" {
				continue
			}
			if p.Datasource == nil || p.Datasource.UID != dashboards.DatasourceUID {
				t.Errorf("%s: datasource is not %s", where, dashboards.DatasourceUID)
			}
			if p.FieldConfig.Defaults.Unit == "" {
				t.Errorf("%s: no unit", where)
			}
			if len(p.Targets) == 0 {
				t.Errorf("%s: no query", where)
			}
			for _, q := range p.Targets {
				if strings.TrimSpace(q.Expr) == "" || q.Datasource.UID != dashboards.DatasourceUID {
					t.Errorf("%s: query %q without expression or provisioned datasource", where, q.Expr)
				}
			}
		}
	}
	for name := range wantUIDs {
		if _, ok := loadDashboards(t)[name]; !ok {
			t.Errorf("dashboard %s missing", name)
		}
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
