package stack

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/ecomstream/ecomstream/services/common/pgtest"
	"github.com/ecomstream/ecomstream/tests/stack/dashboards"
)

// binDir holds bin/generator, bin/ingester and bin/collector built by TestMain.
var binDir string

func TestMain(m *testing.M) {
	os.Exit(func() int {
		dir, err := os.MkdirTemp("", "ecomstream-stack-bin-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
		binDir = dir
		cmd := exec.Command("go", "build", "-o", dir+"/", "./services/generator", "./services/ingester", "./services/collector")
		cmd.Dir = "../.."
		if out, err := cmd.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "building the services: %v\n%s", err, out)
			return 1
		}
		return pgtest.Main(m)
	}())
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// start runs a program until the test ends (SIGTERM, then SIGKILL), its output in a log
// file that is printed when the test fails.
func start(t *testing.T, name, bin string, env []string, args ...string) {
	t.Helper()
	logPath := filepath.Join(t.TempDir(), name+".log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
		logf.Close()
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			if len(b) > 3000 {
				b = b[len(b)-3000:]
			}
			t.Logf("--- %s log (tail) ---\n%s", name, b)
		}
	})
}

// promQuery evaluates expr at now through Prometheus' HTTP API and returns the number of
// series (or 1 for a scalar) it returned.
func promQuery(ctx context.Context, base, expr string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/api/v1/query?query="+url.QueryEscape(expr), nil)
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var r struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			ResultType string          `json:"resultType"`
			Result     json.RawMessage `json:"result"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return 0, fmt.Errorf("%s: %s", resp.Status, body)
	}
	if r.Status != "success" {
		return 0, fmt.Errorf("query error: %s", r.Error)
	}
	if r.Data.ResultType == "scalar" {
		return 1, nil
	}
	var series []json.RawMessage
	if err := json.Unmarshal(r.Data.Result, &series); err != nil {
		return 0, err
	}
	return len(series), nil
}

// query is one PromQL expression to prove, and where it comes from.
type query struct{ where, expr string }

// ruleQueries reads every rule file: recording rules as they are; alerts with `bool`
// after their one comparison, so the expression returns data whenever its operands do,
// firing or not.
func ruleQueries(t *testing.T) []query {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(root(t), "deploy", "prometheus", "rules", "*.rules.yml"))
	var out []query
	for _, f := range files {
		var doc struct {
			Groups []struct {
				Name  string `yaml:"name"`
				Rules []struct {
					Record string `yaml:"record"`
					Alert  string `yaml:"alert"`
					Expr   string `yaml:"expr"`
				} `yaml:"rules"`
			} `yaml:"groups"`
		}
		if err := yaml.Unmarshal([]byte(readFile(t, f)), &doc); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for _, g := range doc.Groups {
			for i, r := range g.Rules {
				where := fmt.Sprintf("%s: %s #%d %s%s", filepath.Base(f), g.Name, i+1, r.Record, r.Alert)
				expr := r.Expr
				if r.Alert != "" {
					var err error
					if expr, err = withBool(expr); err != nil {
						t.Errorf("%s: %v", where, err)
						continue
					}
				}
				out = append(out, query{where, expr})
			}
		}
	}
	return out
}

// withBool inserts `bool` after the one top-level comparison of an alert expression.
func withBool(expr string) (string, error) {
	depth, at, n := 0, -1, 0
	var quote byte
	for i := 0; i < len(expr); i++ {
		c := expr[i]
		switch {
		case quote != 0:
			if c == '\\' {
				i++
			} else if c == quote {
				quote = 0
			}
		case c == '"' || c == '\'' || c == '`':
			quote = c
		case c == '(' || c == '{' || c == '[':
			depth++
		case c == ')' || c == '}' || c == ']':
			depth--
		case depth == 0 && (c == '>' || c == '<' || c == '=' || c == '!'):
			l := 1
			if i+1 < len(expr) && expr[i+1] == '=' {
				l = 2
			}
			if (c == '=' || c == '!') && l == 1 {
				continue // =~ or !~ never stand at the top level; a lone = is not PromQL
			}
			n++
			at = i + l
			i += l - 1
		}
	}
	if n != 1 {
		return "", fmt.Errorf("alert expression must have exactly one top-level comparison, has %d: %s", n, expr)
	}
	return expr[:at] + " bool" + expr[at:], nil
}

func TestWithBool(t *testing.T) {
	for in, want := range map[string]string{
		`a{x="1"} > on (sla) b`: `a{x="1"} > bool on (sla) b`,
		`up{job=~"a|b"} == 0`:   `up{job=~"a|b"} == bool 0`,
		`sum(x > 1) >= 2`:       `sum(x > 1) >= bool 2`,
	} {
		if got, err := withBool(in); err != nil || got != want {
			t.Errorf("withBool(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := withBool(`a > b > c`); err == nil {
		t.Error("two comparisons accepted")
	}
}

// grafanaVariables are what Grafana puts in place of the dashboards' variables when every
// replica is selected ($job and $instance "All" = .+) over a short range.
var grafanaVariables = strings.NewReplacer(
	"$__rate_interval", "30s", "${__rate_interval}", "30s",
	"$__range", "5m", "${__range}", "5m",
	"$job", ".+", "${job}", ".+",
	"$instance", ".+", "${instance}", ".+",
)

// dashboardQueries lists every query of every dashboard panel, its variables expanded.
func dashboardQueries(t *testing.T) []query {
	var out []query
	for name, d := range loadDashboards(t) {
		for _, p := range d.Panels {
			for i, q := range p.Targets {
				expr := grafanaVariables.Replace(q.Expr)
				if strings.Contains(expr, "$") {
					t.Errorf("%s: %q: a variable the test does not expand: %s", name, p.Title, q.Expr)
				}
				out = append(out, query{fmt.Sprintf("%s: %q query %c", name, p.Title, 'A'+i), expr})
			}
		}
	}
	return out
}

// The whole pipeline as processes — PostgreSQL, generator, ingester, collector and a real
// Prometheus loading our rule files, scraping every second — and then every PromQL
// expression of every dashboard and rule file must return data: no dead panels, no rule
// that can never evaluate.
func TestStackEveryQueryReturnsData(t *testing.T) {
	prometheus := tool(t, "prometheus")
	dbURL := pgtest.DB(t)
	work := t.TempDir()
	incoming, archive, failed := filepath.Join(work, "incoming"), filepath.Join(work, "archive"), filepath.Join(work, "failed")
	for _, d := range []string{incoming, archive, failed} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	genPort, ingPort, colPort, promPort := freePort(t), freePort(t), freePort(t), freePort(t)
	addr := func(p int) string { return fmt.Sprintf("127.0.0.1:%d", p) }

	start(t, "ingester", filepath.Join(binDir, "ingester"), []string{
		"DATABASE_URL=" + dbURL, "INGESTER_INPUT_DIR=" + incoming, "INGESTER_ARCHIVE_DIR=" + archive,
		"INGESTER_FAILED_DIR=" + failed, "INGESTER_HTTP_ADDR=" + addr(ingPort), "INGESTER_INSTANCE=ingester-1"})
	start(t, "collector", filepath.Join(binDir, "collector"), []string{
		"DATABASE_URL=" + dbURL, "COLLECTOR_WATCH_DIR=" + incoming, "COLLECTOR_HTTP_ADDR=" + addr(colPort),
		"COLLECTOR_INTERVAL=1s", "COLLECTOR_QUERY_INTERVAL=2s", "COLLECTOR_WINDOW=5m",
		"COLLECTOR_EXPORTER_STAND_IN=true"}) // no postgres_exporter process here

	// Invalid and repeated rows make the error, rejection and duplicate panels non-empty.
	start(t, "generator", filepath.Join(binDir, "generator"), []string{
		"GENERATOR_OUTPUT_DIR=" + incoming, "GENERATOR_HTTP_ADDR=" + addr(genPort), "GENERATOR_SLEEP=0.1",
		"GENERATOR_MIN_RECORDS=50", "GENERATOR_MAX_RECORDS=100", "GENERATOR_BAD_RATE=0.02",
		"GENERATOR_DUPLICATE_RATE=0.02", "GENERATOR_DURATION=5m", "GENERATOR_INSTANCE=gen-1"})

	// The s3 profile's pair beside the directory pair, scraped in the same jobs under
	// their own DNS names (compose: the generator and ingester aliases).
	vgw, nats, s3ok := s3Binaries(t)
	genTargets := fmt.Sprintf(`{targets: [%q], labels: {__meta_dns_name: generator}}`, addr(genPort))
	ingTargets := fmt.Sprintf(`{targets: [%q], labels: {__meta_dns_name: ingester}}`, addr(ingPort))
	if s3ok {
		s3 := startS3(t, vgw, nats, dbURL)
		genTargets += fmt.Sprintf(`, {targets: [%q], labels: {__meta_dns_name: generator-s3}}`, s3.genAddr)
		ingTargets += fmt.Sprintf(`, {targets: [%q], labels: {__meta_dns_name: ingester-s3}}`, s3.ingAddr)
	}

	rules := filepath.Join(root(t), "deploy", "prometheus", "rules", "*.rules.yml")
	// The services' jobs are relabelled as compose's prometheus.yml does, the DNS name
	// that DNS-SD would give as a target label, so the dashboards see compose's instances.
	relabel := composeRelabelling(t)
	cfg := fmt.Sprintf(`global: {scrape_interval: 1s, evaluation_interval: 1s}
rule_files: [%q]
scrape_configs:
  - {job_name: generator, static_configs: [%s], relabel_configs: %s}
  - {job_name: ingester, static_configs: [%s], relabel_configs: %s}
  - {job_name: collector, static_configs: [{targets: [%q], labels: {__meta_dns_name: collector}}], relabel_configs: %s}
  - {job_name: prometheus, static_configs: [{targets: [%q]}]}
`, rules, genTargets, relabel["generator"], ingTargets, relabel["ingester"], addr(colPort), relabel["collector"], addr(promPort))
	cfgPath := filepath.Join(work, "prometheus.yml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	start(t, "prometheus", prometheus, nil, "--config.file="+cfgPath, "--storage.tsdb.path="+filepath.Join(work, "tsdb"),
		"--web.listen-address="+addr(promPort), "--log.level=warn")
	base := "http://" + addr(promPort)

	var queries []query
	for _, q := range append(ruleQueries(t), dashboardQueries(t)...) {
		if s3ok || !s3Metric(q.expr) {
			queries = append(queries, q)
		}
	}
	if len(queries) < 50 {
		t.Fatalf("only %d queries found", len(queries))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Second)
	defer cancel()
	// Rates over 1 m need two samples and the 5 m windows a few; poll until every query
	// has data or the deadline passes, then name the ones that never had any.
	pending := map[string]query{}
	for _, q := range queries {
		pending[q.where] = q
	}
	errs := map[string]string{}
	for len(pending) > 0 && ctx.Err() == nil {
		select {
		case <-ctx.Done():
		case <-time.After(2 * time.Second):
		}
		for k, q := range pending {
			n, err := promQuery(ctx, base, q.expr)
			switch {
			case err != nil:
				errs[k] = err.Error()
			case n > 0:
				delete(pending, k)
				delete(errs, k)
			}
		}
	}
	for _, job := range []string{"generator", "ingester", "collector"} {
		got, err := promLabel(context.Background(), base, `up{job="`+job+`"}`, "instance")
		sort.Strings(got)
		want := []string{job + "/127.0.0.1"}
		if s3ok && job != "collector" {
			want = append(want, job+"-s3/127.0.0.1")
			sort.Strings(want)
		}
		if err != nil || strings.Join(got, " ") != strings.Join(want, " ") {
			t.Errorf("job %s: instances %v (%v), want the readable %v", job, got, err, want)
		}
	}
	// The dashboards' $instance list, as Grafana builds it from this Prometheus: each of
	// our services by the name its logs use (the INSTANCE setting, else the host name
	// outside compose), Prometheus (no build_info) by its instance label.
	shown, err := instanceOptions(context.Background(), base)
	if err != nil {
		t.Fatal(err)
	}
	host, _ := os.Hostname()
	for value, text := range map[string]string{"ingester/127.0.0.1": "ingester-1", "generator/127.0.0.1": "gen-1",
		"collector/127.0.0.1": host, addr(promPort): addr(promPort)} {
		if shown[value] != text {
			t.Errorf("$instance shows %q for %s, want %q (all options: %v)", shown[value], value, text, shown)
		}
	}
	// Every legend that names a replica has a name for each of its series (the join with
	// ecomstream_build_info keeps every series and labels each), and the CPU panel names
	// each process as the $instance list does.
	for name, d := range loadDashboards(t) {
		for _, p := range d.Panels {
			for _, q := range p.Targets {
				if !strings.Contains(q.LegendFormat, "{{replica}}") {
					continue
				}
				res, err := promInstant(context.Background(), base, grafanaVariables.Replace(q.Expr))
				if err != nil {
					t.Errorf("%s: %q: %v", name, p.Title, err)
					continue
				}
				names := map[string]bool{}
				for _, r := range res {
					if r.Metric["replica"] == "" {
						t.Errorf("%s: %q: a series without a replica name: %v", name, p.Title, r.Metric)
					}
					names[r.Metric["replica"]] = true
				}
				if p.Title == "CPU per replica" {
					for _, want := range []string{"ingester-1", "gen-1", host, addr(promPort)} {
						if !names[want] {
							t.Errorf("%s: %q names %v, not %s", name, p.Title, names, want)
						}
					}
				}
			}
		}
	}
	var dead []string
	for k, q := range pending {
		dead = append(dead, fmt.Sprintf("%s\n      %s %s", k, strings.ReplaceAll(q.expr, "\n", " "), errs[k]))
	}
	sort.Strings(dead)
	for _, d := range dead {
		t.Errorf("no data: %s", d)
	}
	t.Logf("%d PromQL expressions (rules and dashboards) evaluated; %d without data", len(queries), len(dead))
}

// composeRelabelling returns, by job, the relabel_configs of deploy/prometheus/prometheus.yml
// as inline YAML (JSON).
func composeRelabelling(t *testing.T) map[string]string {
	t.Helper()
	var doc struct {
		ScrapeConfigs []struct {
			JobName string `yaml:"job_name"`
			Relabel []any  `yaml:"relabel_configs"`
		} `yaml:"scrape_configs"`
	}
	if err := yaml.Unmarshal([]byte(readFile(t, filepath.Join(root(t), "deploy", "prometheus", "prometheus.yml"))), &doc); err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, sc := range doc.ScrapeConfigs {
		b, err := json.Marshal(sc.Relabel)
		if err != nil {
			t.Fatal(err)
		}
		out[sc.JobName] = string(b)
	}
	for _, job := range []string{"generator", "ingester", "collector"} {
		if out[job] == "" || out[job] == "null" {
			out[job] = "[]"
		}
	}
	return out
}

// promSample is one series of an instant query's result.
type promSample struct {
	Metric map[string]string `json:"metric"`
	Value  [2]any            `json:"value"`
}

// promInstant runs expr as an instant query and returns its series.
func promInstant(ctx context.Context, base, expr string) ([]promSample, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/api/v1/query?query="+url.QueryEscape(expr), nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var r struct {
		Status string
		Error  string
		Data   struct {
			Result []promSample `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		return nil, err
	}
	if r.Status != "success" {
		return nil, fmt.Errorf("%s: %s", expr, r.Error)
	}
	return r.Data.Result, nil
}

// promLabel returns the values of label in the series expr returns now.
func promLabel(ctx context.Context, base, expr, label string) ([]string, error) {
	res, err := promInstant(ctx, base, expr)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, s := range res {
		out = append(out, s.Metric[label])
	}
	return out, nil
}

// instanceOptions evaluates the dashboards' $instance variable as Grafana does: its
// query_result expression (all jobs) against Prometheus, each series formatted as
// Grafana formats it ({label="value", ...} value time, labels sorted), then its regex's
// value and text groups (text = value when only value matches). It maps value to text.
func instanceOptions(ctx context.Context, base string) (map[string]string, error) {
	expr := strings.TrimSuffix(strings.TrimPrefix(dashboards.InstanceQuery, "query_result("), ")")
	expr = strings.ReplaceAll(expr, "$job", ".+")
	res, err := promInstant(ctx, base, expr)
	if err != nil {
		return nil, err
	}
	re, err := regexp.Compile(strings.TrimSuffix(strings.TrimPrefix(dashboards.InstanceRegex, "/"), "/"))
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, s := range res {
		var labels []string
		for k, v := range s.Metric {
			labels = append(labels, fmt.Sprintf("%s=%q", k, v))
		}
		sort.Strings(labels)
		line := fmt.Sprintf("{%s} %v %v", strings.Join(labels, ", "), s.Value[1], s.Value[0])
		m := re.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		value, text := m[re.SubexpIndex("value")], m[re.SubexpIndex("text")]
		if text == "" {
			text = value
		}
		out[value] = text
	}
	return out, nil
}
