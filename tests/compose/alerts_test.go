package compose

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"go.yaml.in/yaml/v4"
)

// runbookBase is where every alert's runbook_url points: a section of docs/runbooks.md.
const runbookBase = "https://github.com/ecomstream/ecomstream/blob/main/docs/runbooks.md#"

type ruleFile struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []struct {
			Record      string            `yaml:"record"`
			Alert       string            `yaml:"alert"`
			Expr        string            `yaml:"expr"`
			For         string            `yaml:"for"`
			Labels      map[string]string `yaml:"labels"`
			Annotations map[string]string `yaml:"annotations"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

// ruleFiles reads every rule file Prometheus loads: deploy/prometheus/rules/*.rules.yml
// and the compose-only rules/compose/*.rules.yml.
func ruleFiles(t *testing.T) map[string]ruleFile {
	t.Helper()
	dir := filepath.Join(repoRoot(t), "deploy", "prometheus", "rules")
	a, _ := filepath.Glob(filepath.Join(dir, "*.rules.yml"))
	b, _ := filepath.Glob(filepath.Join(dir, "compose", "*.rules.yml"))
	out := map[string]ruleFile{}
	for _, f := range append(a, b...) {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var rf ruleFile
		if err := yaml.Unmarshal(raw, &rf); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		rel, _ := filepath.Rel(dir, f)
		out[rel] = rf
	}
	if len(out) < 4 {
		t.Fatalf("only %d rule files under %s", len(out), dir)
	}
	return out
}

// githubAnchor is the id GitHub gives a Markdown heading: lower case, punctuation other
// than - and _ dropped, spaces as hyphens.
func githubAnchor(heading string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(strings.TrimSpace(heading)) {
		switch {
		case r == ' ':
			b.WriteRune('-')
		case r == '-' || r == '_' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9':
			b.WriteRune(r)
		}
	}
	return b.String()
}

// runbookSections maps each heading anchor of docs/runbooks.md to its section's text.
func runbookSections(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, sec := range readMarkdown(t, "docs/runbooks.md") {
		out[githubAnchor(sec.title)] = sec.body
	}
	return out
}

// TestEveryAlertHasARunbook: every alert has a summary, a description and a runbook_url
// that is a section of docs/runbooks.md saying what it means, how to confirm it (a query
// or a command) and how to fix it; every alert section of the runbooks is a real alert.
func TestEveryAlertHasARunbook(t *testing.T) {
	sections := runbookSections(t)
	alerts := map[string]bool{}
	for file, rf := range ruleFiles(t) {
		for _, g := range rf.Groups {
			for _, r := range g.Rules {
				if r.Alert == "" {
					continue
				}
				alerts[githubAnchor(r.Alert)] = true
				where := file + ": " + r.Alert
				for _, k := range []string{"summary", "description", "runbook_url"} {
					if strings.TrimSpace(r.Annotations[k]) == "" {
						t.Errorf("%s: no %s annotation", where, k)
					}
				}
				if r.Labels["severity"] != "warning" && r.Labels["severity"] != "critical" {
					t.Errorf("%s: severity %q, want warning or critical (Alertmanager's inhibit rule reads it)", where, r.Labels["severity"])
				}
				url := r.Annotations["runbook_url"]
				anchor, ok := strings.CutPrefix(url, runbookBase)
				if !ok {
					t.Errorf("%s: runbook_url %q is not %s<section>", where, url, runbookBase)
					continue
				}
				body, ok := sections[anchor]
				if !ok {
					t.Errorf("%s: runbook_url anchor #%s is no heading of docs/runbooks.md", where, anchor)
					continue
				}
				for _, part := range []string{"**Means.**", "**Confirm.**", "**Fix.**"} {
					if !strings.Contains(body, part) {
						t.Errorf("docs/runbooks.md #%s: no %s part", anchor, part)
					}
				}
				if !strings.Contains(body, "```") {
					t.Errorf("docs/runbooks.md #%s: no query or command to confirm it with", anchor)
				}
			}
		}
	}
	if len(alerts) < 17 {
		t.Errorf("only %d alerts found", len(alerts))
	}
	for anchor := range sections {
		if strings.HasPrefix(anchor, "ecomstream") && !alerts[anchor] {
			t.Errorf("docs/runbooks.md has a section #%s for an alert that does not exist", anchor)
		}
	}
}

var (
	slaMatcher    = regexp.MustCompile(`sla="([a-z0-9_]+)"`)
	literalNumber = regexp.MustCompile(`(\d+(?:\.\d+)?)(\s?m\b)?`)
)

// TestAlertsReadTheirThresholds: an alert compared with an SLA threshold names no number
// of its own: its description reads the threshold series of that SLA at alert time, so
// sla-thresholds.rules.yml stays the one place a target is written.
func TestAlertsReadTheirThresholds(t *testing.T) {
	th := thresholds(t)
	n := 0
	for file, rf := range ruleFiles(t) {
		for _, g := range rf.Groups {
			for _, r := range g.Rules {
				if r.Alert == "" || !strings.Contains(r.Expr, "ecomstream:sla_threshold:value") {
					continue
				}
				n++
				slas := slaMatcher.FindAllStringSubmatch(r.Expr, -1)
				if len(slas) == 0 {
					t.Errorf("%s: %s compares with a threshold but names no sla", file, r.Alert)
					continue
				}
				sla := slas[0][1]
				if _, ok := th[sla]; !ok {
					t.Errorf("%s: %s reads sla %q, which sla-thresholds.rules.yml does not define", file, r.Alert, sla)
				}
				want := `ecomstream:sla_threshold:value{sla='` + sla + `'}`
				if !strings.Contains(r.Annotations["description"], want) {
					t.Errorf("%s: %s: the description must read its target with query %q", file, r.Alert, want)
				}
				// A number outside the templates that equals the target repeats it (window
				// lengths such as "over 5 m" are not targets).
				for k, v := range r.Annotations {
					for _, m := range literalNumber.FindAllStringSubmatch(stripTemplates(v), -1) {
						f, _ := strconv.ParseFloat(m[1], 64)
						if m[2] == "" && f == th[sla] && f != 0 && f != 1 {
							t.Errorf("%s: %s %s repeats the threshold %s; read it from the series", file, r.Alert, k, m[1])
						}
					}
				}
			}
		}
	}
	if n < 11 {
		t.Errorf("only %d alerts compare with a threshold", n)
	}
}

func stripTemplates(s string) string {
	return regexp.MustCompile(`\{\{.*?\}\}`).ReplaceAllString(s, "")
}

// thresholds parses sla-thresholds.rules.yml the way a reader outside Prometheus (the
// dashboard generator) does: each ecomstream:sla_threshold:value rule is vector(NUMBER)
// with an sla and a direction label.
func thresholds(t *testing.T) map[string]float64 {
	t.Helper()
	rf, ok := ruleFiles(t)["sla-thresholds.rules.yml"]
	if !ok {
		t.Fatal("deploy/prometheus/rules/sla-thresholds.rules.yml not found")
	}
	vec := regexp.MustCompile(`^vector\(([0-9.eE+-]+)\)$`)
	out := map[string]float64{}
	for _, g := range rf.Groups {
		for _, r := range g.Rules {
			m := vec.FindStringSubmatch(strings.TrimSpace(r.Expr))
			if m == nil {
				t.Errorf("sla-thresholds.rules.yml: %s: expr %q is not vector(NUMBER)", r.Record, r.Expr)
				continue
			}
			v, err := strconv.ParseFloat(m[1], 64)
			if err != nil {
				t.Errorf("sla-thresholds.rules.yml: %s: %v", r.Record, err)
			}
			if r.Record != "ecomstream:sla_threshold:value" {
				continue
			}
			sla, dir := r.Labels["sla"], r.Labels["direction"]
			if sla == "" || (dir != "max" && dir != "min") {
				t.Errorf("sla-thresholds.rules.yml: threshold %v has labels %v; want sla and direction max|min", v, r.Labels)
			}
			if _, dup := out[sla]; dup {
				t.Errorf("sla-thresholds.rules.yml: sla %q twice", sla)
			}
			out[sla] = v
		}
	}
	if len(out) < 10 {
		t.Errorf("sla-thresholds.rules.yml: %d thresholds, the report has 10 Key Metrics", len(out))
	}
	return out
}

// TestRuleFilesLoaded: the compose Prometheus loads every rule file, local mode every one
// but the compose-only directory (its jobs do not run there).
func TestRuleFilesLoaded(t *testing.T) {
	dir := filepath.Join(repoRoot(t), "deploy", "prometheus")
	load := func(name string) []string {
		raw, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		var c promConfig
		if err := yaml.Unmarshal(raw, &c); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		var files []string
		for _, g := range c.RuleFiles {
			m, _ := filepath.Glob(filepath.Join(dir, g))
			for _, f := range m {
				rel, _ := filepath.Rel(filepath.Join(dir, "rules"), f)
				files = append(files, rel)
			}
		}
		slices.Sort(files)
		return files
	}
	var all, local []string
	for f := range ruleFiles(t) {
		all = append(all, f)
		if !strings.HasPrefix(f, "compose"+string(filepath.Separator)) {
			local = append(local, f)
		}
	}
	slices.Sort(all)
	slices.Sort(local)
	if got := load("prometheus.yml"); !slices.Equal(got, all) {
		t.Errorf("prometheus.yml loads %v, want every rule file %v", got, all)
	}
	if got := load("prometheus.local.yml"); !slices.Equal(got, local) {
		t.Errorf("prometheus.local.yml loads %v, want %v (not rules/compose/)", got, local)
	}
}

// TestAlertmanagerWired: Prometheus sends alerts to the alertmanager service on a port
// it listens on; Alertmanager reads the mounted deploy/alertmanager/alertmanager.yml,
// whose default receiver has no integration (a stack started on a laptop pages nobody)
// and which shows how to add a webhook.
func TestAlertmanagerWired(t *testing.T) {
	p := loadProject(t)
	c, _ := readPrometheus(t)
	found := false
	for _, am := range c.Alerting.Alertmanagers {
		for _, d := range am.DNSSDConfigs {
			for _, n := range d.Names {
				port := strconv.Itoa(d.Port)
				if n != "alertmanager" || d.Type != "A" || !slices.Contains(listenPorts(t, p, "alertmanager"), port) {
					t.Errorf("prometheus.yml alerting: %s:%s (type %s); the alertmanager service listens on %v (A records)",
						n, port, d.Type, listenPorts(t, p, "alertmanager"))
					continue
				}
				found = true
			}
		}
		if len(am.StaticConfigs) > 0 {
			t.Errorf("prometheus.yml alerting: static targets %v; find the service through Docker's DNS", am.StaticConfigs)
		}
	}
	if !found {
		t.Fatal("prometheus.yml sends alerts to no Alertmanager")
	}

	s := service(t, p, "alertmanager")
	cfg := ""
	for _, a := range s.Command {
		if v, ok := strings.CutPrefix(a, "--config.file="); ok {
			cfg = v
		}
	}
	host, ro := hostPath(s, cfg)
	if want := filepath.Join(repoRoot(t), "deploy", "alertmanager", "alertmanager.yml"); host != want || !ro {
		t.Fatalf("alertmanager reads --config.file=%q, on the host %q (read-only %v); want %s mounted read-only", cfg, host, ro, want)
	}
	raw, err := os.ReadFile(host)
	if err != nil {
		t.Fatal(err)
	}
	var am struct {
		Route struct {
			Receiver string `yaml:"receiver"`
		} `yaml:"route"`
		Receivers []map[string]any `yaml:"receivers"`
	}
	if err := yaml.Unmarshal(raw, &am); err != nil {
		t.Fatal(err)
	}
	var def map[string]any
	for _, r := range am.Receivers {
		if r["name"] == am.Route.Receiver {
			def = r
		}
	}
	if def == nil {
		t.Fatalf("alertmanager.yml: the route's receiver %q is not defined", am.Route.Receiver)
	}
	if len(def) != 1 {
		t.Errorf("alertmanager.yml: the default receiver %q has integrations %v; by default nothing leaves the machine", am.Route.Receiver, keys(def))
	}
	if !regexp.MustCompile(`(?m)^#\s+webhook_configs:\n#\s+- url: `).Match(raw) {
		t.Error("alertmanager.yml: no commented webhook_configs example to copy")
	}
}

// TestEveryAlertHasAPromtoolCase: each alert fires in at least one case of
// deploy/prometheus/tests/*.test.yml (promtool test rules proves the case; this proves
// there is one), so no alert is only ever tested for staying quiet.
func TestEveryAlertHasAPromtoolCase(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join(repoRoot(t), "deploy", "prometheus", "tests", "*.test.yml"))
	fires := map[string]bool{}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var doc struct {
			Tests []struct {
				AlertRuleTest []struct {
					Alertname string `yaml:"alertname"`
					ExpAlerts []any  `yaml:"exp_alerts"`
				} `yaml:"alert_rule_test"`
			} `yaml:"tests"`
		}
		if err := yaml.Unmarshal(raw, &doc); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for _, c := range doc.Tests {
			for _, a := range c.AlertRuleTest {
				if len(a.ExpAlerts) > 0 {
					fires[a.Alertname] = true
				}
			}
		}
	}
	for file, rf := range ruleFiles(t) {
		for _, g := range rf.Groups {
			for _, r := range g.Rules {
				if r.Alert != "" && !fires[r.Alert] {
					t.Errorf("%s: %s fires in no case of deploy/prometheus/tests", file, r.Alert)
				}
			}
		}
	}
}

// TestInhibitRulesNameRealAlerts: every alertname matcher of alertmanager.yml's inhibit
// rules matches an alert that exists, and each alternative of a regex matcher does (a
// renamed alert would otherwise silently stop being inhibited, or inhibiting).
func TestInhibitRulesNameRealAlerts(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(repoRoot(t), "deploy", "alertmanager", "alertmanager.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var am struct {
		InhibitRules []struct {
			SourceMatchers []string `yaml:"source_matchers"`
			TargetMatchers []string `yaml:"target_matchers"`
		} `yaml:"inhibit_rules"`
	}
	if err := yaml.Unmarshal(raw, &am); err != nil {
		t.Fatal(err)
	}
	var alerts []string
	for _, rf := range ruleFiles(t) {
		for _, g := range rf.Groups {
			for _, r := range g.Rules {
				if r.Alert != "" {
					alerts = append(alerts, r.Alert)
				}
			}
		}
	}
	matcher := regexp.MustCompile(`^alertname(=~|=)"(.*)"$`)
	n := 0
	for _, ir := range am.InhibitRules {
		for _, m := range append(append([]string{}, ir.SourceMatchers...), ir.TargetMatchers...) {
			p := matcher.FindStringSubmatch(m)
			if p == nil {
				continue
			}
			n++
			// Alternatives of the top-level |, each anchored like Alertmanager's matchers.
			alts := []string{p[2]}
			if p[1] == "=~" {
				alts = topLevelAlternatives(p[2])
			}
			for _, alt := range alts {
				if p[1] == "=" {
					alt = regexp.QuoteMeta(alt)
				}
				re, err := regexp.Compile("^(?:" + alt + ")$")
				if err != nil {
					t.Errorf("alertmanager.yml: matcher %s: %v", m, err)
					continue
				}
				if !slices.ContainsFunc(alerts, re.MatchString) {
					t.Errorf("alertmanager.yml: matcher %s: %q matches no alert", m, alt)
				}
			}
		}
	}
	if n == 0 {
		t.Error("alertmanager.yml: no inhibit rule names an alert")
	}
}

// topLevelAlternatives splits a regular expression at the | outside parentheses.
func topLevelAlternatives(re string) []string {
	var out []string
	depth, start := 0, 0
	for i, c := range re {
		switch {
		case c == '(':
			depth++
		case c == ')':
			depth--
		case c == '|' && depth == 0:
			out = append(out, re[start:i])
			start = i + 1
		}
	}
	return append(out, re[start:])
}
