package helm

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	"helm.sh/helm/v3/pkg/chartutil"
	corev1 "k8s.io/api/core/v1"
)

var update = flag.Bool("update", false, "rewrite the chart's copies of the dashboards and rules (make dashboards)")

// copies are the chart's files/ and their sources. Helm reads only files inside the
// chart, and a symlink out of it would break `helm package` and checkouts without
// symlinks, so the chart holds copies; this test keeps them identical.
func copies(t testing.TB) map[string]string {
	t.Helper()
	root := repoRoot(t)
	out := map[string]string{} // chart copy -> source
	for dir, pattern := range map[string]string{
		"grafana/dashboards":      "*.json",
		"deploy/prometheus/rules": "*.rules.yml",
	} {
		srcs, err := filepath.Glob(filepath.Join(root, dir, pattern))
		if err != nil || len(srcs) == 0 {
			t.Fatalf("no %s in %s (%v)", pattern, dir, err)
		}
		sub := map[string]string{"grafana/dashboards": "dashboards", "deploy/prometheus/rules": "rules"}[dir]
		for _, src := range srcs {
			out[filepath.Join(chartDir(t), "files", sub, filepath.Base(src))] = src
		}
	}
	return out
}

// TestChartCopiesAreCurrent: files/dashboards and files/rules hold exactly the files of
// grafana/dashboards and deploy/prometheus/rules (the compose-only rules/compose/
// excepted), byte for byte. `make dashboards` (go test -run TestChartCopiesAreCurrent
// -update) rewrites them.
func TestChartCopiesAreCurrent(t *testing.T) {
	want := copies(t)
	if *update {
		for _, sub := range []string{"dashboards", "rules"} {
			old, _ := filepath.Glob(filepath.Join(chartDir(t), "files", sub, "*"))
			for _, f := range old {
				if err := os.Remove(f); err != nil {
					t.Fatal(err)
				}
			}
		}
		for dst, src := range want {
			if err := os.WriteFile(dst, mustRead(t, src), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	for dst, src := range want {
		got, err := os.ReadFile(dst)
		if err != nil {
			t.Errorf("%s is not in the chart (make dashboards copies it): %v", src, err)
			continue
		}
		if !bytes.Equal(got, mustRead(t, src)) {
			t.Errorf("%s differs from %s; run `make dashboards`", dst, src)
		}
	}
	for _, sub := range []string{"dashboards", "rules"} {
		have, _ := filepath.Glob(filepath.Join(chartDir(t), "files", sub, "*"))
		for _, f := range have {
			if _, ok := want[f]; !ok {
				t.Errorf("%s has no source any more; run `make dashboards`", f)
			}
		}
	}
}

// TestDashboardConfigMapsAreGrafanasDashboards: the rendered ConfigMaps carry each file
// of grafana/dashboards, unchanged, under the sidecar's label.
func TestDashboardConfigMapsAreGrafanasDashboards(t *testing.T) {
	eachSet(t, func(t *testing.T, set string, ms []manifest) {
		vals, err := chartutil.CoalesceValues(loadChart(t), readValues(t, valueSets(t)[set]))
		if err != nil {
			t.Fatal(err)
		}
		d, err := vals.Table("monitoring.dashboards")
		if err != nil {
			t.Fatal(err)
		}
		label, value := d["label"].(string), d["labelValue"].(string)
		got := map[string]string{}
		for _, m := range find(ms, "ConfigMap") {
			cm := decodeAs[corev1.ConfigMap](t, m)
			if cm.Labels[label] != value {
				continue
			}
			for k, v := range cm.Data {
				got[k] = v
			}
		}
		srcs, _ := filepath.Glob(filepath.Join(repoRoot(t), "grafana", "dashboards", "*.json"))
		for _, src := range srcs {
			name := filepath.Base(src)
			v, ok := got[name]
			if !ok {
				t.Errorf("no ConfigMap labelled %s=%s holds %s", label, value, name)
				continue
			}
			if v != string(mustRead(t, src)) {
				t.Errorf("the ConfigMap's %s differs from %s", name, src)
			}
			delete(got, name)
		}
		for k := range got {
			t.Errorf("a dashboard ConfigMap holds %s, which grafana/dashboards does not", k)
		}
	})
}

// TestPrometheusRulesAreTheRepositoryRules: with prometheusRule enabled, the rendered
// PrometheusRules hold exactly the groups of deploy/prometheus/rules/*.rules.yml, each
// file decoded strictly into the operator's RuleGroup type.
func TestPrometheusRulesAreTheRepositoryRules(t *testing.T) {
	ms := render(t, "s3-keda")
	rendered := map[string]monitoringv1.RuleGroup{}
	for _, m := range find(ms, "PrometheusRule") {
		for _, g := range decodeAs[monitoringv1.PrometheusRule](t, m).Spec.Groups {
			if _, dup := rendered[g.Name]; dup {
				t.Errorf("group %s rendered twice", g.Name)
			}
			rendered[g.Name] = g
		}
	}
	srcs, _ := filepath.Glob(filepath.Join(repoRoot(t), "deploy", "prometheus", "rules", "*.rules.yml"))
	var names []string
	for _, src := range srcs {
		var file struct {
			Groups []monitoringv1.RuleGroup `json:"groups"`
		}
		if err := decodeStrict(mustRead(t, src), &file); err != nil {
			t.Fatalf("%s does not fit the operator's RuleGroup: %v", src, err)
		}
		for _, g := range file.Groups {
			names = append(names, g.Name)
			got, ok := rendered[g.Name]
			if !ok {
				t.Errorf("group %s of %s is in no PrometheusRule", g.Name, src)
				continue
			}
			if !reflect.DeepEqual(got, g) {
				t.Errorf("group %s differs from %s:\n got  %+v\n want %+v", g.Name, src, got, g)
			}
			delete(rendered, g.Name)
		}
	}
	for n := range rendered {
		t.Errorf("PrometheusRule group %s is in no file of deploy/prometheus/rules", n)
	}
	sort.Strings(names)
	t.Logf("%d groups: %s", len(names), strings.Join(names, ", "))
}
