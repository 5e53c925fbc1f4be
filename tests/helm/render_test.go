package helm

import (
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"

	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/engine"
	"helm.sh/helm/v3/pkg/releaseutil"
	"sigs.k8s.io/yaml"
)

// The release every test renders; the namespace shows up in the KEDA queries.
const (
	releaseName = "shop"
	namespace   = "pipeline"
)

// valueSets are the value files the chart is linted and rendered with: the defaults and
// the chart's ci/ files (each a deployment shape docs/kubernetes.md describes).
func valueSets(t testing.TB) map[string]string {
	t.Helper()
	sets := map[string]string{"default": ""}
	files, err := filepath.Glob(filepath.Join(chartDir(t), "ci", "*-values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		sets[strings.TrimSuffix(filepath.Base(f), "-values.yaml")] = f
	}
	if len(sets) < 3 {
		t.Fatalf("want the defaults and at least two value sets in %s/ci, have %v", chartDir(t), sets)
	}
	return sets
}

func repoRoot(t testing.TB) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("no caller")
	}
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

func chartDir(t testing.TB) string {
	return filepath.Join(repoRoot(t), "deploy", "helm", "ecomstream")
}

// manifest is one rendered document.
type manifest struct {
	Template   string // e.g. ecomstream/templates/deployments.yaml
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name        string            `json:"name"`
		Annotations map[string]string `json:"annotations"`
	} `json:"metadata"`
	YAML string
}

func (m manifest) String() string { return m.Kind + "/" + m.Metadata.Name + " (" + m.Template + ")" }

// readValues reads a value file; "" is the chart's defaults alone.
func readValues(t testing.TB, file string) chartutil.Values {
	t.Helper()
	if file == "" {
		return chartutil.Values{}
	}
	v, err := chartutil.ReadValuesFile(file)
	if err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	return v
}

func loadChart(t testing.TB) *chart.Chart {
	t.Helper()
	c, err := loader.Load(chartDir(t))
	if err != nil {
		t.Fatalf("loading %s: %v", chartDir(t), err)
	}
	return c
}

// renderValues renders the chart as `helm template` does (values schema included) and
// splits the output into documents; NOTES.txt is left out.
func renderValues(t testing.TB, vals chartutil.Values) ([]manifest, error) {
	t.Helper()
	c := loadChart(t)
	opts := chartutil.ReleaseOptions{Name: releaseName, Namespace: namespace, Revision: 1, IsInstall: true}
	rv, err := chartutil.ToRenderValues(c, vals, opts, chartutil.DefaultCapabilities)
	if err != nil {
		return nil, err
	}
	files, err := engine.Render(c, rv)
	if err != nil {
		return nil, err
	}
	names := slices.Sorted(maps.Keys(files))
	var out []manifest
	for _, name := range names {
		if strings.HasSuffix(name, "NOTES.txt") {
			continue
		}
		docs := releaseutil.SplitManifests(files[name])
		keys := slices.Sorted(maps.Keys(docs))
		for _, k := range keys {
			doc := docs[k]
			if strings.TrimSpace(doc) == "" {
				continue
			}
			m := manifest{Template: name, YAML: doc}
			if err := yaml.Unmarshal([]byte(doc), &m); err != nil {
				t.Fatalf("%s: not YAML: %v\n%s", name, err, doc)
			}
			out = append(out, m)
		}
	}
	return out, nil
}

var renderCache sync.Map

// render renders one value set, once per test binary.
func render(t testing.TB, set string) []manifest {
	t.Helper()
	if ms, ok := renderCache.Load(set); ok {
		return ms.([]manifest)
	}
	file, ok := valueSets(t)[set]
	if !ok {
		t.Fatalf("no value set %q", set)
	}
	ms, err := renderValues(t, readValues(t, file))
	if err != nil {
		t.Fatalf("rendering with %s values: %v", set, err)
	}
	renderCache.Store(set, ms)
	return ms
}

// eachSet runs f for every value set as a subtest.
func eachSet(t *testing.T, f func(t *testing.T, set string, ms []manifest)) {
	sets := valueSets(t)
	names := slices.Sorted(maps.Keys(sets))
	for _, n := range names {
		t.Run(n, func(t *testing.T) { f(t, n, render(t, n)) })
	}
}

func find(ms []manifest, kind string) []manifest {
	var out []manifest
	for _, m := range ms {
		if m.Kind == kind {
			out = append(out, m)
		}
	}
	return out
}

func mustRead(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
