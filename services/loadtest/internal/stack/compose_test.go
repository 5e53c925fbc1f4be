package stack

import (
	"context"
	"strings"
	"testing"
	"time"
)

// recorder stands in for docker: it records every command and answers from a table.
type recorder struct {
	cmds    []string
	envs    [][]string
	answers map[string]string // substring of the command -> stdout
}

func (r *recorder) run(_ context.Context, env []string, args ...string) ([]byte, error) {
	cmd := strings.Join(args, " ")
	r.cmds = append(r.cmds, cmd)
	r.envs = append(r.envs, env)
	for k, v := range r.answers {
		if strings.Contains(cmd, k) {
			return []byte(v), nil
		}
	}
	return nil, nil
}

func TestComposeCommands(t *testing.T) {
	rec := &recorder{answers: map[string]string{
		"ps -a": `{"Service":"generator","State":"exited"}` + "\n" + `{"Service":"generator","State":"exited"}`,
		"logs": `{"level":"info","service":"generator","instance":"a1","files":10,"records":700,"valid":700,"invalid":0,"duplicate":0,"bytes":9000,"time":"2099-01-01T00:00:00Z","message":"generator finished"}
{"level":"info","service":"generator","instance":"b2","files":5,"records":300,"valid":290,"invalid":10,"duplicate":0,"bytes":4000,"time":"2099-01-01T00:00:01Z","message":"generator finished"}`,
		"SELECT 1": "1\n",
	}}
	c := &Compose{Root: "/repo", Ingesters: 3, Trigger: 10 * time.Second, Clean: true, Run: rec.run}
	ctx := context.Background()
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	g := Gen{Tag: "run", Replicas: 2, MinRecords: 200, MaxRecords: 500, Sleep: 500 * time.Millisecond, Duration: 10 * time.Minute}
	if err := c.Generate(ctx, g); err != nil {
		t.Fatal(err)
	}
	if !c.GeneratorsDone(ctx) {
		t.Error("two exited generators are done")
	}
	p, err := c.Finals(ctx)
	if err != nil || p.Rows != 1000 || p.Files != 15 || p.Invalid != 10 {
		t.Fatalf("finals %+v %v", p, err)
	}
	want := []string{
		"docker compose --project-directory /repo -f /repo/docker-compose.yml up -d --build --scale generator=0 --scale ingester=3",
		"docker compose --project-directory /repo -f /repo/docker-compose.yml exec -T postgres psql -U ecomstream -d ecomstream -X -q --csv -t -v ON_ERROR_STOP=1 -c SELECT 1 FROM ingested_files LIMIT 1",
		"docker compose --project-directory /repo -f /repo/docker-compose.yml exec -T postgres psql -U ecomstream -d ecomstream -X -q --csv -t -v ON_ERROR_STOP=1 -c TRUNCATE events, ingested_files, rejected_records",
		"docker compose --project-directory /repo -f /repo/docker-compose.yml up -d --no-deps --force-recreate --scale generator=2 generator",
		"docker compose --project-directory /repo -f /repo/docker-compose.yml ps -a --format json generator",
		"docker compose --project-directory /repo -f /repo/docker-compose.yml logs --no-log-prefix --no-color generator",
	}
	if len(rec.cmds) != len(want) {
		t.Fatalf("commands:\n%s", strings.Join(rec.cmds, "\n"))
	}
	for i := range want {
		if rec.cmds[i] != want[i] {
			t.Errorf("command %d:\n got %s\nwant %s", i, rec.cmds[i], want[i])
		}
	}
	env := strings.Join(rec.envs[3], " ")
	for _, kv := range []string{"GENERATOR_MIN_RECORDS=200", "GENERATOR_MAX_RECORDS=500", "GENERATOR_SLEEP=0.5",
		"GENERATOR_DURATION=10m0s", "GENERATOR_MAX_FILES=0", "INGESTER_TRIGGER_INTERVAL=10s"} {
		if !strings.Contains(env, kv) {
			t.Errorf("generator environment lacks %s: %s", kv, env)
		}
	}
	if !strings.Contains(strings.Join(rec.envs[0], " "), "INGESTER_TRIGGER_INTERVAL=10s") {
		t.Error("the stack must start with the scenario's trigger")
	}
	// The database reads go through psql in the postgres container, as CSV.
	rows, err := c.DB().Query(ctx, "SELECT 1")
	if err != nil || len(rows) != 1 || rows[0][0] != "1" {
		t.Fatalf("query: %v %v", rows, err)
	}
	if w := c.Window(); w.Since.IsZero() {
		t.Error("a compose run is isolated by its time window")
	}
}

func TestComposeProject(t *testing.T) {
	c := &Compose{Root: "/r", Project: "lt"}
	if got := strings.Join(c.Base(), " "); got != "docker compose --project-directory /r -f /r/docker-compose.yml -p lt" {
		t.Error(got)
	}
}

func TestPsStatesArray(t *testing.T) {
	if s := psStates([]byte(`[{"State":"running"},{"State":"exited"}]`)); len(s) != 2 || s[0] != "running" {
		t.Fatal(s)
	}
}

func TestParseFinishedKeepsTheLastLinePerInstance(t *testing.T) {
	logs := `{"instance":"g","records":5,"files":1,"message":"generator finished","time":"2026-01-01T00:00:00Z"}
not json
{"instance":"g","records":7,"files":2,"message":"generator finished","time":"2026-01-01T00:01:00Z"}`
	p, n := parseFinished(strings.NewReader(logs), time.Time{})
	if n != 1 || p.Rows != 7 {
		t.Fatalf("%+v %d", p, n)
	}
	since, _ := time.Parse(time.RFC3339, "2026-01-01T00:02:00Z")
	if _, n := parseFinished(strings.NewReader(logs), since); n != 0 {
		t.Fatal("lines before the phase belong to an earlier run")
	}
}
