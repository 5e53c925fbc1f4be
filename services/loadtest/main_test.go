package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ecomstream/ecomstream/services/common/maintest"
	"github.com/ecomstream/ecomstream/services/common/pgtest"
	"github.com/ecomstream/ecomstream/services/loadtest/internal/report"
)

func TestMain(m *testing.M) { maintest.Main(m, main) }

// A SLEEP, WORKERS or DURATION in the shell is not a setting of the load test (only
// LOADTEST_*): here they would not even parse, and --help still works.
func TestABareVariableOfTheShellIsNotASetting(t *testing.T) {
	code, _, stderr := maintest.Run(t, []string{"SLEEP=soon", "WORKERS=x", "DURATION=x", "MODE=kubernetes"}, "--help")
	if code != 0 {
		t.Errorf("exit %d: %s; a bare variable was read as a setting", code, stderr)
	}
}

func TestBadSettingsExit2AsAProcess(t *testing.T) {
	code, _, stderr := maintest.Run(t, []string{"LOADTEST_WORKERS=-1", "LOADTEST_BAD_RATE=1"})
	for _, want := range []string{"LOADTEST_WORKERS (--workers) must be >= 0", "LOADTEST_BAD_RATE (--bad-rate) 1 is outside [0, 1)"} {
		if code != 2 || !strings.Contains(stderr, want) {
			t.Errorf("exit %d, stderr %q; want 2 and %q", code, stderr, want)
		}
	}
}

func TestVersionPrintsTheBuild(t *testing.T) { maintest.CheckVersion(t, "loadtest") }

// buildServices builds generator, ingester and collector into a temp bin directory (the
// build cache makes this quick), so the test runs what the sources say, not a stale bin/.
func buildServices(t *testing.T, root string) string {
	t.Helper()
	bin := t.TempDir()
	for _, s := range []string{"generator", "ingester", "collector"} {
		cmd := exec.Command("go", "build", "-o", filepath.Join(bin, s), "./services/"+s)
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("build %s: %v\n%s", s, err, out)
		}
	}
	return bin
}

// TestPresetsLocal runs every preset briefly in local mode, in parallel (each with its own
// PostgreSQL cluster), and checks the report's invariants and that every table is filled.
func TestPresetsLocal(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	if _, err := pgtest.BinDir(); err != nil {
		t.Skip(err)
	}
	root, err := repoRoot("")
	if err != nil {
		t.Fatal(err)
	}
	bin := buildServices(t, root)
	cases := []struct {
		scenario string
		cfg      Config
	}{
		{"baseline", Config{Duration: 12 * time.Second}},
		{"high-load", Config{Duration: 12 * time.Second, TriggerInterval: 3 * time.Second}},
		{"stress", Config{Duration: 15 * time.Second}},
		{"custom", Config{Duration: 8 * time.Second, MinRecords: 10, MaxRecords: 20, Sleep: 200e6, Ingesters: 2, Generators: 2, BadRate: 0.01}},
		{"max", Config{Duration: 15 * time.Second, StepDuration: 5 * time.Second, StartRate: 5000, BulkRows: 20000}},
	}
	for _, c := range cases {
		t.Run(c.scenario, func(t *testing.T) {
			t.Parallel()
			cfg := c.cfg
			cfg.Scenario, cfg.Mode, cfg.Root, cfg.BinDir, cfg.Collector = c.scenario, "local", root, bin, true
			// Not t.TempDir(): PostgreSQL runs as postgres under root and must reach it.
			work, err := os.MkdirTemp("", "loadtest-"+c.scenario+"-")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { os.RemoveAll(work) })
			cfg.WorkDir = work
			var progress bytes.Buffer
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			r, err := execute(ctx, cfg, &progress)
			if err != nil {
				t.Fatalf("%v\n%s", err, progress.String())
			}
			checkRun(t, r, c.scenario)
			paths, err := write(r, t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range paths {
				if st, err := os.Stat(p); err != nil || st.Size() < 1000 {
					t.Errorf("%s: %v", p, err)
				}
			}
			if !strings.Contains(progress.String(), "generated") || !strings.Contains(progress.String(), "drained") {
				t.Errorf("no progress line:\n%s", progress.String())
			}
			t.Logf("%s: passed=%v %s", c.scenario, r.Passed, strings.Join(r.Failed(), "; "))
		})
	}
}

func checkRun(t *testing.T, r *report.Report, scenario string) {
	t.Helper()
	a := r.Accounted
	// The invariants hold whatever the machine's load: nothing lost, nothing twice.
	if a.Lost != 0 || r.Produced.Rows == 0 || a.Rows != r.Produced.Rows || r.Produced.RowsOnDisk != r.Produced.Rows {
		t.Errorf("loss: produced %d (on disk %d), accounted %d, lost %d", r.Produced.Rows, r.Produced.RowsOnDisk, a.Rows, a.Lost)
	}
	if a.DuplicateInDB != 0 || a.FilesCommittedTwice != 0 || r.DrainTimedOut {
		t.Errorf("exactly-once: %+v, drain timed out %v", a, r.DrainTimedOut)
	}
	if a.Inserted+a.Rejected+a.Duplicate != a.Rows || a.EventsRows != a.Inserted || a.RejectedRows != a.Rejected {
		t.Errorf("ledger and tables disagree: %+v", a)
	}
	if r.Settings.BadRate > 0 && a.Rejected == 0 {
		t.Error("invalid rows were generated but none rejected")
	}
	// Every table of the report is filled.
	if r.Latency.Rows != a.Rows || r.Latency.P99 <= 0 || len(r.Latency.Bands) != 6 || len(r.Latency.Fine) == 0 {
		t.Errorf("latency: %+v", r.Latency)
	}
	if r.Results.ThroughputRowsPerSec <= 0 || r.Results.AvgBatchSeconds <= 0 || r.Results.PeakPostgresBytes <= 0 ||
		r.Results.PeakIngesterBytes <= 0 || r.Results.PeakCPUPercent <= 0 {
		t.Errorf("results: %+v", r.Results)
	}
	if len(r.Queries) != 5 || len(r.Indexes) < 5 || len(r.Timeline) == 0 || len(r.Resources.Samples) == 0 || len(r.Checks) < 10 {
		t.Errorf("tables: %d queries, %d indexes, %d timeline points, %d samples, %d checks",
			len(r.Queries), len(r.Indexes), len(r.Timeline), len(r.Resources.Samples), len(r.Checks))
	}
	for _, q := range r.Queries {
		if q.MedianMs <= 0 || q.Plan == "" {
			t.Errorf("query %s: %+v", q.Name, q)
		}
	}
	if scenario == "max" {
		if len(r.Steps) == 0 || r.MaxRate == nil || r.MaxRate.RowsPerSec <= 0 || r.MaxRate.BulkCopy <= 0 ||
			r.MaxRate.BulkCopyAtEnd <= 0 || r.MaxRate.EventsAtEnd != r.Produced.Rows {
			t.Errorf("max: %d steps, %+v", len(r.Steps), r.MaxRate)
		}
		for _, st := range r.Steps {
			if st.CPUPerRow["postgres"] <= 0 || st.CPUPerRow["ingester"] <= 0 {
				t.Errorf("max step %d: CPU per row %v", st.Index, st.CPUPerRow)
			}
		}
	}
	md := report.Markdown(r)
	if _, ok := report.SparkFor(scenario); ok && !strings.Contains(md, "Side by side") {
		t.Error("no Spark comparison")
	}
	// Latency is measured, not asserted: how fast rows land depends on the machine's
	// load (the report's ✓/⚠/✗ judge it against the targets); the tables above prove
	// it was measured.
}

func TestModeAndScenarioErrors(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"--scenario", "nope"}, &out, &errb); code != 2 || !strings.Contains(errb.String(), "unknown scenario") {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	errb.Reset()
	if code := run([]string{"--mode", "kubernetes", "--bin-dir", t.TempDir()}, &out, &errb); code != 2 || !strings.Contains(errb.String(), `LOADTEST_MODE (--mode) must be local, compose or auto, got "kubernetes"`) {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	errb.Reset()
	if code := run([]string{"--help"}, &out, &errb); code != 0 || !strings.Contains(out.String(), "LOADTEST_SCENARIO") {
		t.Fatalf("exit %d: %s %s", code, out.String(), errb.String())
	}
}

func TestRender(t *testing.T) {
	dir := t.TempDir()
	b, err := os.ReadFile(filepath.Join("internal", "report", "testdata", "report.json"))
	if err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(dir, "x.json")
	if err := os.WriteFile(f, b, 0o644); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	if code := run([]string{"render", f}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	for _, ext := range []string{".md", ".html"} {
		if _, err := os.Stat(filepath.Join(dir, "x"+ext)); err != nil {
			t.Error(err)
		}
	}
}
