package stack

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// tool finds a Prometheus binary; CI installs Debian's prometheus package, elsewhere a
// missing binary skips the test with the reason.
func tool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s not installed (Debian package prometheus)", name)
		}
		t.Skipf("%s not installed (Debian package prometheus)", name)
	}
	return p
}

// promtool check config, check rules and test rules over deploy/prometheus.
func TestPromtool(t *testing.T) {
	promtool := tool(t, "promtool")
	dir := filepath.Join(root(t), "deploy", "prometheus")
	rules, _ := filepath.Glob(filepath.Join(dir, "rules", "*.rules.yml"))
	tests, _ := filepath.Glob(filepath.Join(dir, "tests", "*.test.yml"))
	if len(rules) == 0 || len(tests) == 0 {
		t.Fatal("no rule files or rule tests in deploy/prometheus")
	}
	for _, args := range [][]string{
		{"check", "config", filepath.Join(dir, "prometheus.yml"), filepath.Join(dir, "prometheus.local.yml")},
		append([]string{"check", "rules"}, rules...),
		append([]string{"test", "rules"}, tests...),
	} {
		out, err := exec.Command(promtool, args...).CombinedOutput()
		if err != nil {
			t.Errorf("promtool %v: %v\n%s", args[:2], err, out)
		}
	}
}
