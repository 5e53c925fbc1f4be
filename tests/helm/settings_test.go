package helm

import (
	"path"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"

	collector "github.com/ecomstream/ecomstream/services/collector/settings"
	"github.com/ecomstream/ecomstream/services/common/config"
	generator "github.com/ecomstream/ecomstream/services/generator/settings"
	ingester "github.com/ecomstream/ecomstream/services/ingester/settings"
)

// readSettings is every variable program reads, by every name it is read under (its
// prefixed name, and DATABASE_URL and LOG_LEVEL bare), from the program's own settings
// package (services/<program>/settings), as tests/compose reads them. Each call makes a
// fresh Config, so Set may be called on what it returns.
func readSettings(t testing.TB, program string) map[string]config.Setting {
	t.Helper()
	var prefix string
	var spec any
	switch program {
	case "ingester":
		c := ingester.New()
		prefix, spec = ingester.Prefix, &c
	case "generator":
		c := generator.New()
		prefix, spec = generator.Prefix, &c
	case "collector":
		c := collector.New()
		prefix, spec = collector.Prefix, &c
	default:
		t.Fatalf("no settings package for program %q", program)
	}
	out := map[string]config.Setting{}
	for _, s := range config.Settings(prefix, spec) {
		for _, n := range s.Names {
			out[n] = s
		}
	}
	return out
}

// sdkVariables are read by the S3 client (services/common/objstore), bare, by the
// programs that touch S3.
var sdkVariables = map[string]bool{
	"AWS_ENDPOINT_URL": true, "AWS_ACCESS_KEY_ID": true, "AWS_SECRET_ACCESS_KEY": true, "AWS_REGION": true,
}

// envVar is one variable a container gets, with its value when the chart knows it
// (a literal, or a key of a ConfigMap or Secret the chart renders).
type envVar struct {
	Name, Value string
	Known       bool
	From        string
}

// containerEnv resolves a container's env and envFrom against the rendered ConfigMaps
// and Secrets. A reference to a ConfigMap the chart does not render fails the test; a
// Secret may be the user's (existingSecret).
func containerEnv(t testing.TB, ms []manifest, c corev1.Container) []envVar {
	t.Helper()
	configMaps, secrets := map[string]map[string]string{}, map[string]map[string]string{}
	for _, m := range find(ms, "ConfigMap") {
		configMaps[m.Metadata.Name] = decodeAs[corev1.ConfigMap](t, m).Data
	}
	for _, m := range find(ms, "Secret") {
		secrets[m.Metadata.Name] = decodeAs[corev1.Secret](t, m).StringData
	}
	var out []envVar
	for _, from := range c.EnvFrom {
		if from.ConfigMapRef == nil {
			t.Fatalf("container %s: envFrom other than a ConfigMap", c.Name)
		}
		data, ok := configMaps[from.ConfigMapRef.Name]
		if !ok {
			t.Fatalf("container %s: envFrom names ConfigMap %s, which the chart does not render", c.Name, from.ConfigMapRef.Name)
		}
		for k, v := range data {
			out = append(out, envVar{k, v, true, "ConfigMap " + from.ConfigMapRef.Name})
		}
	}
	for _, e := range c.Env {
		switch {
		case e.ValueFrom == nil:
			out = append(out, envVar{e.Name, e.Value, true, "env"})
		case e.ValueFrom.SecretKeyRef != nil:
			ref := e.ValueFrom.SecretKeyRef
			v, ok := secrets[ref.Name][ref.Key]
			out = append(out, envVar{e.Name, v, ok, "Secret " + ref.Name})
		case e.ValueFrom.ConfigMapKeyRef != nil:
			ref := e.ValueFrom.ConfigMapKeyRef
			v, ok := configMaps[ref.Name][ref.Key]
			if !ok {
				t.Fatalf("container %s: %s from ConfigMap %s key %s, which the chart does not render", c.Name, e.Name, ref.Name, ref.Key)
			}
			out = append(out, envVar{e.Name, v, true, "ConfigMap " + ref.Name})
		default:
			out = append(out, envVar{e.Name, "", false, "field"})
		}
	}
	return out
}

// programOf is the program a container runs: the image's last path element, as the
// chart names images <repository>/<program>:<tag>.
func programOf(image string) string {
	return path.Base(strings.SplitN(image, ":", 2)[0])
}

// podSpecs is every pod template the chart renders, by the manifest that holds it.
func podSpecs(t testing.TB, ms []manifest) map[string]corev1.PodSpec {
	t.Helper()
	out := map[string]corev1.PodSpec{}
	for _, m := range find(ms, "Deployment") {
		out[m.String()] = decodeAs[appsv1.Deployment](t, m).Spec.Template.Spec
	}
	for _, m := range find(ms, "Job") {
		out[m.String()] = decodeAs[batchv1.Job](t, m).Spec.Template.Spec
	}
	return out
}

// TestEnvironmentMatchesSettings: every variable the chart gives a container of ours is
// a setting of the program it runs (or an AWS SDK variable where S3 is used), with a
// value of the setting's type; the ingester's pods and the migration Job get a
// DATABASE_URL. Checked for every value set, so the S3 and the volume layouts both are.
func TestEnvironmentMatchesSettings(t *testing.T) {
	eachSet(t, func(t *testing.T, set string, ms []manifest) {
		checked := map[string]int{}
		for where, spec := range podSpecs(t, ms) {
			for _, c := range spec.Containers {
				prog := programOf(c.Image)
				known := readSettings(t, prog)
				names := map[string]bool{}
				env := containerEnv(t, ms, c)
				// The collector reads a bucket (and the SDK's variables) only with a source.
				bucket := prog != "collector" || slices.ContainsFunc(env, func(e envVar) bool { return e.Name == "COLLECTOR_SOURCE" && e.Value != "" })
				for _, e := range env {
					if names[e.Name] {
						t.Errorf("%s: %s is set twice", where, e.Name)
					}
					names[e.Name] = true
					f, ok := known[e.Name]
					if !ok && sdkVariables[e.Name] && bucket {
						continue // the S3 client's
					}
					if !ok {
						t.Errorf("%s sets %s (%s), which %s does not read", where, e.Name, e.From, prog)
						continue
					}
					if !e.Known {
						continue
					}
					// Parsed as the program parses it (its own settings package).
					if err := f.Set(e.Value); err != nil {
						t.Errorf("%s sets %s=%q (%s), not a valid %s: %v", where, e.Name, e.Value, e.From, f.Type, err)
					}
					checked[prog]++
				}
				if prog != "generator" && !names["DATABASE_URL"] {
					t.Errorf("%s: %s gets no DATABASE_URL", where, prog)
				}
			}
		}
		if checked["ingester"] == 0 {
			t.Error("no ingester environment was checked")
		}
		t.Logf("values checked per program: %v", checked)
	})
}
