package helm

import (
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	kedav1alpha1 "github.com/kedacore/keda/v2/apis/keda/v1alpha1"
)

// scalerParam is one trigger metadata key a KEDA scaler reads.
type scalerParam struct {
	GoType   string
	Required bool
}

// prometheusScalerParams reads the metadata keys of KEDA's prometheus scaler from its
// source in the module cache (the version go.mod pins): a trigger's metadata is a plain
// map[string]string in the ScaledObject type, so strict decoding cannot see a misspelled
// key there. Importing pkg/scalers would compile every scaler's cloud SDK.
func prometheusScalerParams(t testing.TB) map[string]scalerParam {
	t.Helper()
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/kedacore/keda/v2").Output()
	if err != nil {
		t.Fatalf("locating the KEDA module: %v", err)
	}
	src := mustRead(t, filepath.Join(strings.TrimSpace(string(out)), "pkg", "scalers", "prometheus_scaler.go"))
	re := regexp.MustCompile("(?m)^\\s*\\w+\\s+([\\w.\\[\\]]+)\\s+`keda:\"name=(\\w+),\\s*order=([^,\"]+)([^\"]*)\"`")
	params := map[string]scalerParam{}
	for _, m := range re.FindAllStringSubmatch(string(src), -1) {
		if !strings.Contains(m[3], "triggerMetadata") {
			continue
		}
		opts := m[4]
		params[m[2]] = scalerParam{GoType: m[1], Required: !strings.Contains(opts, "optional") && !strings.Contains(opts, "default=")}
	}
	if len(params) < 5 || params["query"].GoType == "" {
		t.Fatalf("read only %v from KEDA's prometheus scaler; has its source changed shape?", params)
	}
	return params
}

// TestKEDATriggersUseThePrometheusScalersKeys: every metadata key of every prometheus
// trigger is one KEDA's scaler reads, with a value of its type, and every key it
// requires is there.
func TestKEDATriggersUseThePrometheusScalersKeys(t *testing.T) {
	params := prometheusScalerParams(t)
	ms := render(t, "s3-keda")
	sos := find(ms, "ScaledObject")
	if len(sos) == 0 {
		t.Fatal("the s3-keda value set renders no ScaledObject")
	}
	for _, m := range sos {
		for _, tr := range decodeAs[kedav1alpha1.ScaledObject](t, m).Spec.Triggers {
			if tr.Type != "prometheus" {
				t.Errorf("trigger %s has type %q; this test knows the prometheus scaler", tr.Name, tr.Type)
				continue
			}
			for k, v := range tr.Metadata {
				p, ok := params[k]
				if !ok {
					t.Errorf("trigger %s: KEDA's prometheus scaler reads no %q", tr.Name, k)
					continue
				}
				if err := parses(p.GoType, v); err != nil {
					t.Errorf("trigger %s: %s=%q is not a %s: %v", tr.Name, k, v, p.GoType, err)
				}
			}
			for k, p := range params {
				if _, ok := tr.Metadata[k]; p.Required && !ok {
					t.Errorf("trigger %s lacks %s, which the scaler requires", tr.Name, k)
				}
			}
		}
	}
}

// parses tells whether value reads as goType, the type of a KEDA scaler parameter.
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
