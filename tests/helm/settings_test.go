package helm

import (
	"go/ast"
	"go/parser"
	"go/token"
	"go/types"
	"io/fs"
	"path"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
)

// setting is one variable a service reads.
type setting struct {
	Name   string // the full variable name, e.g. INGESTER_WORKERS
	GoType string // e.g. int, time.Duration
}

// sharedKeys are read bare as well as under the service's prefix (services/common/config).
var sharedKeys = map[string]bool{"DATABASE_URL": true, "LOG_LEVEL": true}

// readSettings is every variable services/<program> reads, by name: its envconfig fields
// found with go/ast (the structs live in package main today), under the program's prefix
// and, for the shared keys, bare.
//
// This is the one function to switch to the importable services/<program>/settings
// packages once they exist (tests/compose reads them the same way).
func readSettings(t testing.TB, program string) map[string]setting {
	t.Helper()
	if s, ok := settingsCache.Load(program); ok {
		return s.(map[string]setting)
	}
	prefix := strings.ToUpper(program) + "_"
	out := map[string]setting{}
	dir := filepath.Join(repoRoot(t), "services", program)
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
			return err
		}
		f, err := parser.ParseFile(token.NewFileSet(), p, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		ast.Inspect(f, func(n ast.Node) bool {
			fld, ok := n.(*ast.Field)
			if !ok || fld.Tag == nil {
				return true
			}
			raw, _ := strconv.Unquote(fld.Tag.Value)
			key, ok := reflect.StructTag(raw).Lookup("envconfig")
			if !ok || key == "" {
				return true
			}
			key = strings.Split(key, ",")[0]
			typ := types.ExprString(fld.Type)
			out[prefix+key] = setting{Name: prefix + key, GoType: typ}
			if sharedKeys[key] {
				out[key] = setting{Name: key, GoType: typ}
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatalf("reading the settings of services/%s: %v", program, err)
	}
	if len(out) == 0 {
		t.Fatalf("services/%s: no field tagged `envconfig:\"...\"`; this test reads the settings from there", program)
	}
	settingsCache.Store(program, out)
	return out
}

var settingsCache sync.Map

// sdkVariables are read by the AWS SDK itself, bare, by the programs that touch S3.
var sdkVariables = map[string]bool{
	"AWS_ENDPOINT_URL": true, "AWS_ACCESS_KEY_ID": true, "AWS_SECRET_ACCESS_KEY": true, "AWS_REGION": true,
}

// issue12Settings are the S3 source's settings, their names fixed by issue 12 while its
// code is written on another branch. Until a service reads one, the test accepts it with
// a log line; once it does, its type comes from the source like every other setting.
var issue12Settings = map[string]setting{
	"INGESTER_SOURCE":            {"INGESTER_SOURCE", "string"},
	"INGESTER_S3_ARCHIVE_PREFIX": {"INGESTER_S3_ARCHIVE_PREFIX", "string"},
	"INGESTER_S3_FAILED_PREFIX":  {"INGESTER_S3_FAILED_PREFIX", "string"},
	"INGESTER_NATS_URL":          {"INGESTER_NATS_URL", "string"},
	"INGESTER_NATS_SUBJECT":      {"INGESTER_NATS_SUBJECT", "string"},
	"GENERATOR_OUTPUT":           {"GENERATOR_OUTPUT", "string"},
}

// parses tells whether envconfig decodes value into a field of type goType. Types of
// our own (config.Seconds, partition.Retention) are checked by the services' tests.
func parses(goType, value string) error {
	var err error
	switch goType {
	case "int", "int8", "int16", "int32", "int64":
		_, err = strconv.ParseInt(value, 0, 64)
	case "uint", "uint8", "uint16", "uint32", "uint64":
		_, err = strconv.ParseUint(value, 0, 64)
	case "float32", "float64":
		_, err = strconv.ParseFloat(value, 64)
	case "bool":
		_, err = strconv.ParseBool(value)
	case "time.Duration":
		_, err = time.ParseDuration(value)
	}
	return err
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
				for _, e := range containerEnv(t, ms, c) {
					if names[e.Name] {
						t.Errorf("%s: %s is set twice", where, e.Name)
					}
					names[e.Name] = true
					f, ok := known[e.Name]
					if !ok {
						if f, ok = issue12Settings[e.Name]; ok {
							t.Logf("%s: %s is issue 12's; services/%s does not read it yet", where, e.Name, prog)
						}
					}
					if !ok && sdkVariables[e.Name] && prog != "collector" {
						ok, f = true, setting{e.Name, "string"}
					}
					if !ok {
						t.Errorf("%s sets %s (%s), which %s does not read", where, e.Name, e.From, prog)
						continue
					}
					if !e.Known {
						continue
					}
					if err := parses(f.GoType, e.Value); err != nil {
						t.Errorf("%s sets %s=%q (%s), not a valid %s: %v", where, e.Name, e.Value, e.From, f.GoType, err)
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
