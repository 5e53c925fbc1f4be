package stack

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ecomstream/ecomstream/services/loadtest/internal/measure"
	"github.com/ecomstream/ecomstream/services/loadtest/internal/report"
)

// Compose drives the docker compose stack: it scales it with `docker compose up -d
// --scale`, reads PostgreSQL through psql inside the postgres container and everything
// else from Prometheus. The run is isolated by its time window (files created since the
// run began); Clean truncates the tables first for a schema with nothing else in it.
type Compose struct {
	Root          string // repository root, where docker-compose.yml is
	Project       string // compose project name; empty = the file's (ecomstream)
	Ingesters     int
	Trigger       time.Duration
	Clean         bool
	PrometheusURL string // default http://127.0.0.1:9090
	User, DBName  string // default ecomstream/ecomstream (.env)
	// Run executes a command; tests replace it to see the commands without Docker.
	Run func(ctx context.Context, env []string, args ...string) ([]byte, error)

	since    time.Time
	genSince time.Time
	gen      Gen
	mu       sync.Mutex
	problems []string
}

// Base is the docker compose command every step starts with.
func (c *Compose) Base() []string {
	args := []string{"docker", "compose", "--project-directory", c.Root, "-f", c.Root + "/docker-compose.yml"}
	if c.Project != "" {
		args = append(args, "-p", c.Project)
	}
	return args
}

func (c *Compose) run(ctx context.Context, env []string, args ...string) ([]byte, error) {
	if c.Run != nil {
		return c.Run(ctx, env, args...)
	}
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	cmd.Env = append(os.Environ(), env...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return out, fmt.Errorf("%s: %w: %s", strings.Join(args, " "), err, bytes.TrimSpace(stderr.Bytes()))
	}
	return out, nil
}

// DaemonAvailable tells whether `docker info` reaches a daemon and the Compose v2
// plugin is there to drive it (a bare daemon, as Debian's docker.io installs, has none).
func DaemonAvailable(ctx context.Context) bool {
	if _, err := exec.LookPath("docker"); err != nil {
		return false
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	return exec.CommandContext(ctx, "docker", "info").Run() == nil &&
		exec.CommandContext(ctx, "docker", "compose", "version").Run() == nil
}

// UpArgs is the command that starts the stack with M ingesters and no generator yet.
// (Not --wait: the one-shot migrate service exits, which --wait reports as a failure on
// some Compose versions; Start waits for the schema itself.)
func (c *Compose) UpArgs() []string {
	return append(c.Base(), "up", "-d", "--build",
		"--scale", "generator=0", "--scale", "ingester="+strconv.Itoa(max(c.Ingesters, 1)))
}

// UpEnv is the environment of UpArgs (the compose file reads its settings from it).
func (c *Compose) UpEnv() []string {
	return []string{"INGESTER_TRIGGER_INTERVAL=" + c.Trigger.String()}
}

// SchemaWait bounds the wait for PostgreSQL and the migrations after UpArgs.
var SchemaWait = 3 * time.Minute

// GenerateArgs is the command that (re)creates the generator replicas of one phase.
func (c *Compose) GenerateArgs(g Gen) []string {
	return append(c.Base(), "up", "-d", "--no-deps", "--force-recreate",
		"--scale", "generator="+strconv.Itoa(g.Replicas), "generator")
}

// GenerateEnv is the environment of GenerateArgs: the phase's generator settings.
func (c *Compose) GenerateEnv(g Gen) []string {
	return []string{
		"GENERATOR_MIN_RECORDS=" + strconv.Itoa(g.MinRecords),
		"GENERATOR_MAX_RECORDS=" + strconv.Itoa(g.MaxRecords),
		"GENERATOR_SLEEP=" + strconv.FormatFloat(g.Sleep.Seconds(), 'f', -1, 64),
		"GENERATOR_DURATION=" + g.Duration.String(),
		"GENERATOR_MAX_FILES=0",
		"GENERATOR_BAD_RATE=" + strconv.FormatFloat(g.BadRate, 'f', -1, 64),
		"GENERATOR_DUPLICATE_RATE=" + strconv.FormatFloat(g.DupRate, 'f', -1, 64),
		"INGESTER_TRIGGER_INTERVAL=" + c.Trigger.String(),
	}
}

// PsqlArgs is the command before the SQL of every database read.
func (c *Compose) PsqlArgs() []string {
	user, db := c.User, c.DBName
	if user == "" {
		user = "ecomstream"
	}
	if db == "" {
		db = "ecomstream"
	}
	return append(c.Base(), "exec", "-T", "postgres", "psql", "-U", user, "-d", db, "-X", "-q", "--csv", "-t", "-v", "ON_ERROR_STOP=1", "-c")
}

// CleanSQL empties the product's tables for a clean run.
const CleanSQL = `TRUNCATE events, ingested_files, rejected_records`

// Start implements Stack.
func (c *Compose) Start(ctx context.Context) error {
	if _, err := c.run(ctx, c.UpEnv(), c.UpArgs()...); err != nil {
		return err
	}
	deadline := time.Now().Add(SchemaWait)
	for {
		_, err := c.DB().Query(ctx, `SELECT 1 FROM ingested_files LIMIT 1`)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the stack's database has no schema after %s: %w", SchemaWait, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(2 * time.Second):
		}
	}
	if c.Clean {
		if _, err := c.DB().Query(ctx, CleanSQL); err != nil {
			return fmt.Errorf("clean schema: %w", err)
		}
	}
	c.since = time.Now()
	return nil
}

// DB implements Stack.
func (c *Compose) DB() measure.Querier {
	return measure.Command{Args: c.PsqlArgs(), Run: c.Run}
}

// Window implements Stack: the run's files are those created since it began.
func (c *Compose) Window() measure.Window { return measure.Window{Since: c.since} }

// Generate implements Stack.
func (c *Compose) Generate(ctx context.Context, g Gen) error {
	c.gen, c.genSince = g, time.Now()
	_, err := c.run(ctx, c.GenerateEnv(g), c.GenerateArgs(g)...)
	return err
}

// PsArgs lists the generator containers, running or exited, as JSON.
func (c *Compose) PsArgs() []string {
	return append(c.Base(), "ps", "-a", "--format", "json", "generator")
}

// GeneratorsDone implements Stack.
func (c *Compose) GeneratorsDone(ctx context.Context) bool {
	out, err := c.run(ctx, nil, c.PsArgs()...)
	if err != nil {
		return false
	}
	states := psStates(out)
	if len(states) == 0 {
		return false
	}
	for _, s := range states {
		if s != "exited" {
			return false
		}
	}
	return true
}

// psStates reads `docker compose ps --format json` (one object per line, or an array).
func psStates(out []byte) []string {
	var states []string
	var arr []struct{ State string }
	if json.Unmarshal(bytes.TrimSpace(out), &arr) == nil {
		for _, a := range arr {
			states = append(states, a.State)
		}
		return states
	}
	for _, line := range bytes.Split(out, []byte("\n")) {
		var o struct{ State string }
		if json.Unmarshal(line, &o) == nil && o.State != "" {
			states = append(states, o.State)
		}
	}
	return states
}

// Generated implements Stack, from Prometheus.
func (c *Compose) Generated(ctx context.Context) int64 {
	v, _ := c.promScalar(ctx, `sum(ecomstream_generator_records_total)`, time.Now())
	return int64(v)
}

// LogsArgs is the generators' logs, whose last lines are their final counts.
func (c *Compose) LogsArgs() []string {
	return append(c.Base(), "logs", "--no-log-prefix", "--no-color", "generator")
}

// Finals implements Stack.
func (c *Compose) Finals(ctx context.Context) (report.Produced, error) {
	out, err := c.run(ctx, nil, c.LogsArgs()...)
	if err != nil {
		return report.Produced{}, err
	}
	p, n := parseFinished(bytes.NewReader(out), c.genSince)
	if n < c.gen.Replicas {
		return p, fmt.Errorf("%d of %d generators logged their final counts", n, c.gen.Replicas)
	}
	return p, nil
}

// Backlog implements Stack, from the collector's view of the volume.
func (c *Compose) Backlog(ctx context.Context) int64 {
	v, _ := c.promScalar(ctx, `max(ecomstream_collector_backlog_files)`, time.Now())
	return int64(v)
}

// Batches implements Stack, from Prometheus (counters since the ingesters started).
func (c *Compose) Batches(ctx context.Context) (count, seconds, rows float64, err error) {
	now := time.Now()
	if count, err = c.promScalar(ctx, `sum(ecomstream_ingester_batch_duration_seconds_count)`, now); err != nil {
		return
	}
	if seconds, err = c.promScalar(ctx, `sum(ecomstream_ingester_batch_duration_seconds_sum)`, now); err != nil {
		return
	}
	rows, err = c.promScalar(ctx, `sum(ecomstream_ingester_batch_records_sum)`, now)
	return
}

// ResourceQueries are the PromQL of the resource charts: cAdvisor's per-container CPU (%
// of one core) and working set per compose service, and node-exporter's host CPU.
var ResourceQueries = map[string]string{
	"cpu":  `sum by (container_label_com_docker_compose_service) (rate(container_cpu_usage_seconds_total{container_label_com_docker_compose_service=~"ingester|generator|collector|postgres"}[30s])) * 100`,
	"mem":  `sum by (container_label_com_docker_compose_service) (container_memory_working_set_bytes{container_label_com_docker_compose_service=~"ingester|generator|collector|postgres"})`,
	"host": `(1 - avg(rate(node_cpu_seconds_total{mode="idle"}[30s]))) * 100`,
}

// Resources implements Stack with Prometheus range queries.
func (c *Compose) Resources(ctx context.Context, from, to time.Time) (report.Resources, error) {
	res := report.Resources{Source: "Prometheus (cAdvisor per container, node-exporter for the host)",
		Components: []string{"ingester", "postgres", "generator", "collector"}}
	byT := map[float64]*report.ResourceSample{}
	get := func(t float64) *report.ResourceSample {
		s, ok := byT[t]
		if !ok {
			s = &report.ResourceSample{T: t, CPU: map[string]float64{}, Mem: map[string]float64{}}
			byT[t] = s
		}
		return s
	}
	for _, kind := range []string{"cpu", "mem", "host"} {
		series, err := c.promRange(ctx, ResourceQueries[kind], from, to, 5*time.Second)
		if err != nil {
			return res, err
		}
		for _, s := range series {
			comp := s.Metric["container_label_com_docker_compose_service"]
			for _, v := range s.Values {
				t, x := v.t.Sub(from).Seconds(), v.v
				switch kind {
				case "cpu":
					get(t).CPU[comp] += x
				case "mem":
					get(t).Mem[comp] += x
				case "host":
					get(t).HostCPU = x
				}
			}
		}
	}
	for _, s := range byT {
		res.Samples = append(res.Samples, *s)
	}
	sort.Slice(res.Samples, func(i, j int) bool { return res.Samples[i].T < res.Samples[j].T })
	return res, nil
}

// CountFiles implements Stack: the volume is inside Docker; the generators' counts stand.
func (c *Compose) CountFiles(context.Context) (report.Produced, bool, error) {
	return report.Produced{}, false, nil
}

// Problems implements Stack.
func (c *Compose) Problems() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.problems...)
}

// Environment implements Stack.
func (c *Compose) Environment(ctx context.Context) report.Environment {
	e := measure.Host()
	if rows, err := c.DB().Query(ctx, `SELECT current_setting('server_version')`); err == nil && len(rows) == 1 {
		e.PostgreSQL = rows[0][0]
	}
	e.Notes = append(e.Notes, "docker compose stack; the run is the time window since it began"+
		map[bool]string{true: ", tables truncated first", false: ""}[c.Clean])
	return e
}

// Stop implements Stack: the stack stays up (it is the user's); the generators of the
// run have exited on their own after the run's duration.
func (c *Compose) Stop(context.Context) error { return nil }

func (c *Compose) promURL() string {
	if c.PrometheusURL != "" {
		return strings.TrimRight(c.PrometheusURL, "/")
	}
	return "http://127.0.0.1:9090"
}

type promSample struct {
	t time.Time
	v float64
}

type promSeries struct {
	Metric map[string]string
	Values []promSample
}

func (c *Compose) promScalar(ctx context.Context, q string, at time.Time) (float64, error) {
	u := c.promURL() + "/api/v1/query?" + url.Values{"query": {q}, "time": {strconv.FormatInt(at.Unix(), 10)}}.Encode()
	series, err := promGet(ctx, u)
	if err != nil || len(series) == 0 || len(series[0].Values) == 0 {
		return 0, err
	}
	return series[0].Values[0].v, nil
}

func (c *Compose) promRange(ctx context.Context, q string, from, to time.Time, step time.Duration) ([]promSeries, error) {
	u := c.promURL() + "/api/v1/query_range?" + url.Values{"query": {q},
		"start": {strconv.FormatInt(from.Unix(), 10)}, "end": {strconv.FormatInt(to.Unix(), 10)},
		"step": {strconv.Itoa(int(step.Seconds()))}}.Encode()
	return promGet(ctx, u)
}

// promGet reads an instant or range query answer of Prometheus' HTTP API.
func promGet(ctx context.Context, u string) ([]promSeries, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var body struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			Result []struct {
				Metric map[string]string `json:"metric"`
				Value  []any             `json:"value"`
				Values [][]any           `json:"values"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return nil, fmt.Errorf("prometheus: %w", err)
	}
	if body.Status != "success" {
		return nil, fmt.Errorf("prometheus: %s", body.Error)
	}
	var out []promSeries
	for _, r := range body.Data.Result {
		s := promSeries{Metric: r.Metric}
		vals := r.Values
		if r.Value != nil {
			vals = [][]any{r.Value}
		}
		for _, v := range vals {
			if len(v) != 2 {
				continue
			}
			ts, _ := v[0].(float64)
			str, _ := v[1].(string)
			x, _ := strconv.ParseFloat(str, 64)
			s.Values = append(s.Values, promSample{t: time.Unix(0, int64(ts*1e9)), v: x})
		}
		out = append(out, s)
	}
	return out, nil
}
