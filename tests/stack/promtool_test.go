package stack

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// tool finds a binary of Debian's prometheus package (promtool, prometheus).
func tool(t *testing.T, name string) string {
	t.Helper()
	return debianTool(t, name, "prometheus")
}

// debianTool finds a binary of a Debian package. CI (CI set) installs the packages, so
// there a missing binary fails the test; elsewhere it skips naming the package to install.
func debianTool(t *testing.T, name, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s not installed (Debian package %s)", name, pkg)
		}
		t.Skipf("%s not installed (Debian package %s)", name, pkg)
	}
	return p
}

// promtool check config, check rules and test rules over deploy/prometheus: both configs
// (compose and local mode), every rule file (rules/ and the compose-only rules/compose/),
// every unit test file.
func TestPromtool(t *testing.T) {
	promtool := tool(t, "promtool")
	dir := filepath.Join(root(t), "deploy", "prometheus")
	rules, _ := filepath.Glob(filepath.Join(dir, "rules", "*.rules.yml"))
	compose, _ := filepath.Glob(filepath.Join(dir, "rules", "compose", "*.rules.yml"))
	tests, _ := filepath.Glob(filepath.Join(dir, "tests", "*.test.yml"))
	if len(rules) == 0 || len(compose) == 0 || len(tests) == 0 {
		t.Fatal("no rule files, compose rule files or rule tests in deploy/prometheus")
	}
	for _, args := range [][]string{
		{"check", "config", filepath.Join(dir, "prometheus.yml"), filepath.Join(dir, "prometheus.local.yml")},
		append(append([]string{"check", "rules"}, rules...), compose...),
		append([]string{"test", "rules"}, tests...),
	} {
		out, err := exec.Command(promtool, args...).CombinedOutput()
		if err != nil {
			t.Errorf("promtool %v: %v\n%s", args[:2], err, out)
		}
	}
}

// amtool check-config over the Alertmanager configuration compose mounts.
func TestAmtool(t *testing.T) {
	amtool := debianTool(t, "amtool", "prometheus-alertmanager")
	cfg := filepath.Join(root(t), "deploy", "alertmanager", "alertmanager.yml")
	out, err := exec.Command(amtool, "check-config", cfg).CombinedOutput()
	if err != nil {
		t.Errorf("amtool check-config %s: %v\n%s", cfg, err, out)
	}
}
