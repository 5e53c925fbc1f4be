package sla

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func repoFile(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "..", File))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func write(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "sla.rules.yml")
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// The repository's file yields the report's ten targets and the margin.
func TestLoadReadsTheReportsTargets(t *testing.T) {
	got, err := Load(write(t, repoFile(t)))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]Target{
		"latency_p50": {30, true}, "latency_p95": {60, true}, "latency_p99": {90, true},
		"throughput": {10, false}, "batch_duration": {5, true}, "cpu": {0.8, true},
		"ingester_memory": {4 << 30, true}, "postgres_memory": {2 << 30, true},
		"error_rate": {0.001, true}, "duplicates": {0, true},
	}
	for name, w := range want {
		if got.ByName[name] != w {
			t.Errorf("%s = %+v, want %+v", name, got.ByName[name], w)
		}
	}
	if got.Margin != 0.1 {
		t.Errorf("margin %v, want 0.1", got.Margin)
	}
}

// A threshold in another shape, a missing direction or a missing margin is an error.
func TestLoadRejectsAnotherShape(t *testing.T) {
	orig := repoFile(t)
	for name, content := range map[string]string{
		"not a vector":   strings.Replace(orig, "expr: vector(60)", "expr: 60", 1),
		"no direction":   strings.Replace(orig, "{sla: latency_p95, direction: max}", "{sla: latency_p95}", 1),
		"no margin":      strings.Replace(orig, "ecomstream:sla_warning_margin:ratio", "ecomstream:other:ratio", 1),
		"twice":          strings.Replace(orig, "sla: latency_p95,", "sla: latency_p50,", 1),
		"not rule files": "groups: 3\n",
	} {
		if content == orig {
			t.Fatalf("%s: the file is not written as this test expects", name)
		}
		if _, err := Load(write(t, content)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
