package helm

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	kedav1alpha1 "github.com/kedacore/keda/v2/apis/keda/v1alpha1"
	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	sigsjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"
)

// apiTypes is every kind the chart may render, as the API server (or the operator's CRD)
// defines it. A kind missing here fails the test rather than going unchecked.
var apiTypes = map[string]func() any{
	"v1/ConfigMap":                            func() any { return new(corev1.ConfigMap) },
	"v1/Secret":                               func() any { return new(corev1.Secret) },
	"v1/ServiceAccount":                       func() any { return new(corev1.ServiceAccount) },
	"v1/PersistentVolumeClaim":                func() any { return new(corev1.PersistentVolumeClaim) },
	"apps/v1/Deployment":                      func() any { return new(appsv1.Deployment) },
	"batch/v1/Job":                            func() any { return new(batchv1.Job) },
	"policy/v1/PodDisruptionBudget":           func() any { return new(policyv1.PodDisruptionBudget) },
	"autoscaling/v2/HorizontalPodAutoscaler":  func() any { return new(autoscalingv2.HorizontalPodAutoscaler) },
	"monitoring.coreos.com/v1/PodMonitor":     func() any { return new(monitoringv1.PodMonitor) },
	"monitoring.coreos.com/v1/PrometheusRule": func() any { return new(monitoringv1.PrometheusRule) },
	"keda.sh/v1alpha1/ScaledObject":           func() any { return new(kedav1alpha1.ScaledObject) },
}

// decodeStrict decodes a YAML document into its API type the way the API server reads
// JSON: field names match case-sensitively, and an unknown or duplicate field is an
// error. (encoding/json's DisallowUnknownFields alone, which sigs.k8s.io/yaml's
// UnmarshalStrict uses, matches names case-insensitively: "readinessprobe" would pass.)
func decodeStrict(doc []byte, into any) error {
	js, err := yaml.YAMLToJSONStrict(doc)
	if err != nil {
		return err
	}
	strict, err := sigsjson.UnmarshalStrict(js, into)
	if err != nil {
		return err
	}
	if len(strict) > 0 {
		msgs := make([]string, len(strict))
		for i, e := range strict {
			msgs[i] = e.Error()
		}
		return fmt.Errorf("%s", strings.Join(msgs, "; "))
	}
	return nil
}

// decode decodes a rendered manifest into a new value of its kind's type.
func decode(m manifest) (any, error) {
	newObj, ok := apiTypes[m.APIVersion+"/"+m.Kind]
	if !ok {
		return nil, fmt.Errorf("%s: no Go type known for %s %s", m.Template, m.APIVersion, m.Kind)
	}
	obj := newObj()
	if err := decodeStrict([]byte(m.YAML), obj); err != nil {
		return nil, fmt.Errorf("%s: %w", m, err)
	}
	return obj, nil
}

// decodeAs decodes a manifest into T, failing the test when it does not fit.
func decodeAs[T any](t testing.TB, m manifest) *T {
	t.Helper()
	obj, err := decode(m)
	if err != nil {
		t.Fatal(err)
	}
	v, ok := obj.(*T)
	if !ok {
		t.Fatalf("%s decoded as %T", m, obj)
	}
	return v
}

// TestEveryManifestDecodesStrictly: every document of every value set is a kind we know
// and fits its real Go type with no unknown, misspelled or duplicate field.
func TestEveryManifestDecodesStrictly(t *testing.T) {
	eachSet(t, func(t *testing.T, set string, ms []manifest) {
		if len(ms) == 0 {
			t.Fatal("nothing rendered")
		}
		kinds := map[string]int{}
		for _, m := range ms {
			if _, err := decode(m); err != nil {
				t.Error(err)
			}
			if m.Metadata.Name == "" {
				t.Errorf("%s has no name", m)
			}
			kinds[m.Kind]++
		}
		t.Logf("%s: %v", set, kinds)
	})
}

// TestStrictDecodingCatchesMisspelledFields: the decoder the test above relies on
// rejects, in a document of every kind the chart renders, a field renamed to a
// misspelling (a letter doubled) and one renamed to a different case.
func TestStrictDecodingCatchesMisspelledFields(t *testing.T) {
	seen := map[string]manifest{}
	for set := range valueSets(t) {
		for _, m := range render(t, set) {
			seen[m.APIVersion+"/"+m.Kind] = m
		}
	}
	keys := slices.Sorted(maps.Keys(seen))
	for _, k := range keys {
		m := seen[k]
		for _, how := range []struct {
			name   string
			rename func(string) string
		}{
			{"doubled", func(s string) string { return s + s[len(s)-1:] }},
			{"case", strings.ToLower},
		} {
			t.Run(k+"/"+how.name, func(t *testing.T) {
				bad, field := misspell(t, m, how.rename)
				if field == "" {
					t.Skipf("%s has no camelCase field to misspell by case", m)
				}
				if _, err := decode(bad); err == nil {
					t.Errorf("%s with %s decoded without error", m, field)
				} else {
					t.Logf("%s: %v", field, err)
				}
			})
		}
	}
	// And one deep inside a pod template, where a typo would silently drop a probe.
	dep := find(render(t, "default"), "Deployment")[0]
	bad := strings.Replace(dep.YAML, "readinessProbe:", "readinessprobe:", 1)
	if bad == dep.YAML {
		t.Fatalf("%s has no readinessProbe", dep)
	}
	dep.YAML = bad
	if _, err := decode(dep); err == nil || !strings.Contains(err.Error(), "readinessprobe") {
		t.Errorf("readinessprobe in a Deployment: got %v, want an unknown-field error", err)
	}
}

// misspell renames one field of m (under spec, or at the top level for kinds without
// one) and returns the document and the path of the renamed field.
func misspell(t *testing.T, m manifest, rename func(string) string) (manifest, string) {
	t.Helper()
	var doc map[string]any
	if err := yaml.Unmarshal([]byte(m.YAML), &doc); err != nil {
		t.Fatal(err)
	}
	parent, path := doc, ""
	if spec, ok := doc["spec"].(map[string]any); ok {
		parent, path = spec, "spec."
	}
	keys := slices.Sorted(maps.Keys(parent))
	for _, k := range keys {
		if k == "apiVersion" || k == "kind" || rename(k) == k {
			continue
		}
		parent[rename(k)] = parent[k]
		delete(parent, k)
		out, err := yaml.Marshal(doc)
		if err != nil {
			t.Fatal(err)
		}
		m.YAML = string(out)
		return m, path + rename(k)
	}
	return m, ""
}
