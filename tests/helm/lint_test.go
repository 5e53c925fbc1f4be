package helm

import (
	"maps"
	"slices"
	"strings"
	"testing"

	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/lint"
	"helm.sh/helm/v3/pkg/lint/support"
)

// TestChartLints: `helm lint --strict` for every value set, through Helm's lint package:
// no error and no warning (an informational message such as the missing icon is allowed).
func TestChartLints(t *testing.T) {
	eachSet(t, func(t *testing.T, set string, _ []manifest) {
		vals := readValues(t, valueSets(t)[set])
		kube, err := chartutil.ParseKubeVersion("v1.30.0")
		if err != nil {
			t.Fatal(err)
		}
		res := lint.AllWithKubeVersion(chartDir(t), vals, namespace, kube)
		for _, m := range res.Messages {
			if m.Severity > support.InfoSev {
				t.Errorf("helm lint: %s", m)
			} else {
				t.Logf("helm lint: %s", m)
			}
		}
	})
}

// TestChartRefusesBadValues: values that would break the pipeline are refused at render
// time with a message naming the value, not deployed.
func TestChartRefusesBadValues(t *testing.T) {
	cases := map[string]struct {
		vals chartutil.Values
		want string
	}{
		"two autoscalers": {chartutil.Values{"autoscaling": map[string]any{
			"keda": map[string]any{"enabled": true}, "hpa": map[string]any{"enabled": true}}}, "not both"},
		"grace not longer than the shutdown grace": {chartutil.Values{"ingester": map[string]any{
			"shutdownGrace": "1m", "terminationGracePeriodSeconds": 60}}, "terminationGracePeriodSeconds"},
		"no database":         {chartutil.Values{"database": map[string]any{"url": ""}}, "database.url"},
		"unknown source mode": {chartutil.Values{"source": map[string]any{"mode": "nfs"}}, "source"},
		"keep in a directory": {chartutil.Values{"source": map[string]any{"mode": "volume"}, "onSuccess": "keep"}, "keep"},
		"misspelled value":    {chartutil.Values{"ingester": map[string]any{"replica": 3}}, "replica"},
		"s3 keys without the secret key": {chartutil.Values{"source": map[string]any{
			"s3": map[string]any{"accessKeyId": "AKIA"}}}, "secretAccessKey"},
	}
	names := slices.Sorted(maps.Keys(cases))
	for _, n := range names {
		c := cases[n]
		t.Run(n, func(t *testing.T) {
			_, err := renderValues(t, c.vals)
			if err == nil {
				t.Fatalf("rendered; want an error mentioning %q", c.want)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q does not mention %q", err, c.want)
			}
		})
	}
}
