// Command loadtest reruns the seed performance report's scenarios against ecomstream and
// writes the report: reports/<scenario>-<UTC time>.md, .json and a self-contained .html.
//
//	loadtest --scenario stress --mode local        # processes + a throwaway PostgreSQL
//	loadtest --scenario baseline --mode compose    # the docker compose stack
//	loadtest render reports/stress-20260101T000000Z.json   # re-render a report
//
// It exits 0 when every SLA target and invariant holds, 1 when one fails, 2 when the run
// could not be carried out.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/ecomstream/ecomstream/services/common/config"
	"github.com/ecomstream/ecomstream/services/loadtest/internal/report"
	"github.com/ecomstream/ecomstream/services/loadtest/internal/runner"
	"github.com/ecomstream/ecomstream/services/loadtest/internal/scenario"
	"github.com/ecomstream/ecomstream/services/loadtest/internal/stack"
	"github.com/ecomstream/ecomstream/services/loadtest/settings"
)

// Config is the command's settings (package settings).
type Config = settings.Config

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "render" {
		return render(args[1:], stdout, stderr)
	}
	cfg, err := settings.Load(args, stdout)
	if err == nil {
		err = cfg.Validate()
	}
	if err != nil {
		if errors.Is(err, config.ErrVersion) {
			return 0
		}
		if config.IsHelp(err) {
			fmt.Fprintf(stdout, "\nSubcommand:\n  loadtest render FILE.json...      re-render a report's .md and .html from its JSON\n")
			fmt.Fprintf(stdout, "\nExit status: 0 every target holds, 1 an SLA target or invariant failed, 2 the run could not be done.\n")
			return 0
		}
		fmt.Fprintln(stderr, "loadtest:", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	rep, err := execute(ctx, cfg, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "loadtest:", err)
		return 2
	}
	paths, err := write(rep, cfg.Reports)
	if err != nil {
		fmt.Fprintln(stderr, "loadtest:", err)
		return 2
	}
	fmt.Fprint(stdout, summary(rep, paths))
	if !rep.Passed {
		return 1
	}
	return 0
}

func execute(ctx context.Context, cfg Config, stderr io.Writer) (*report.Report, error) {
	root, err := repoRoot(cfg.Root)
	if err != nil {
		return nil, err
	}
	set, err := scenario.Preset(cfg.Scenario)
	if err != nil {
		return nil, err
	}
	if set, err = set.Apply(scenario.Overrides{Duration: cfg.Duration, Generators: cfg.Generators, Ingesters: cfg.Ingesters,
		MinRecords: cfg.MinRecords, MaxRecords: cfg.MaxRecords, Sleep: cfg.Sleep.D(), TriggerInterval: cfg.TriggerInterval,
		BadRate: cfg.BadRate, DupRate: cfg.DuplicateRate, StepDuration: cfg.StepDuration, StartRate: cfg.StartRate}); err != nil {
		return nil, err
	}
	th, err := thresholds(root, cfg.Thresholds)
	if err != nil {
		return nil, err
	}
	mode := cfg.Mode
	if mode == "auto" {
		mode = "local"
		if stack.DaemonAvailable(ctx) {
			mode = "compose"
		} else {
			fmt.Fprintln(stderr, "loadtest: no Docker daemon with the compose plugin (`docker info`, `docker compose version`); running in local mode")
		}
	}
	runID := fmt.Sprintf("%s-%s", set.Name, time.Now().UTC().Format("20060102T150405Z"))
	var st stack.Stack
	switch mode {
	case "local":
		bin := cfg.BinDir
		if bin == "" {
			bin = filepath.Join(root, "bin")
		}
		for _, b := range []string{"generator", "ingester", "collector"} {
			if _, err := os.Stat(filepath.Join(bin, b)); err != nil {
				return nil, fmt.Errorf("%s missing: run make build first", filepath.Join(bin, b))
			}
		}
		work := cfg.WorkDir
		if work == "" {
			work = filepath.Join(root, "tmp", "loadtest")
		}
		st = &stack.Local{Root: root, BinDir: bin, Dir: filepath.Join(work, runID), RunID: runID, Ingesters: set.Ingesters,
			Trigger: set.TriggerInterval, Workers: cfg.Workers, DatabaseURL: cfg.AdminURL, Keep: cfg.Keep, NoCollector: !cfg.Collector, BulkRows: cfg.BulkRows}
	case "compose":
		st = &stack.Compose{Root: root, Project: cfg.Project, Ingesters: set.Ingesters, Trigger: set.TriggerInterval,
			Clean: cfg.Clean, PrometheusURL: cfg.PrometheusURL}
	default: // Validate refuses any other mode
		return nil, fmt.Errorf("unknown mode %q (want local, compose or auto)", cfg.Mode)
	}
	var progress io.Writer
	if !cfg.Quiet {
		progress = stderr
	}
	return runner.Run(ctx, st, set, runner.Options{RunID: runID, Mode: mode, DrainTimeout: cfg.DrainTimeout,
		Progress: progress, Interactive: isTerminal(stderr), Thresholds: th})
}

func thresholds(root, path string) (report.Thresholds, error) {
	if path == "" {
		path = filepath.Join(root, "deploy", "prometheus", "rules", "sla-thresholds.rules.yml")
		if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
			return report.DefaultThresholds(), nil
		}
	}
	return report.LoadThresholds(path)
}

// repoRoot is the directory holding go.work, from dir or the working directory upwards.
func repoRoot(dir string) (string, error) {
	if dir != "" {
		return filepath.Abs(dir)
	}
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for d := wd; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.work")); err == nil {
			return d, nil
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("no go.work above %s: run from the repository or give --root", wd)
		}
	}
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// write puts the report's three files in dir (default <repo>/reports).
func write(r *report.Report, dir string) ([]string, error) {
	if dir == "" {
		root, err := repoRoot("")
		if err != nil {
			return nil, err
		}
		dir = filepath.Join(root, "reports")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	base := filepath.Join(dir, r.BaseName())
	js, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return nil, err
	}
	files := map[string][]byte{".json": append(js, '\n'), ".md": []byte(report.Markdown(r)), ".html": []byte(report.HTML(r))}
	var paths []string
	for _, ext := range []string{".md", ".json", ".html"} {
		if err := os.WriteFile(base+ext, files[ext], 0o644); err != nil {
			return nil, err
		}
		paths = append(paths, base+ext)
	}
	return paths, nil
}

// render re-renders reports from their JSON (after a change to the templates).
func render(files []string, stdout, stderr io.Writer) int {
	if len(files) == 0 {
		fmt.Fprintln(stderr, "usage: loadtest render FILE.json...")
		return 2
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			fmt.Fprintln(stderr, "loadtest:", err)
			return 2
		}
		var r report.Report
		if err := json.Unmarshal(b, &r); err != nil {
			fmt.Fprintf(stderr, "loadtest: %s: %v\n", f, err)
			return 2
		}
		base := strings.TrimSuffix(f, ".json")
		if err := os.WriteFile(base+".md", []byte(report.Markdown(&r)), 0o644); err != nil {
			fmt.Fprintln(stderr, "loadtest:", err)
			return 2
		}
		if err := os.WriteFile(base+".html", []byte(report.HTML(&r)), 0o644); err != nil {
			fmt.Fprintln(stderr, "loadtest:", err)
			return 2
		}
		fmt.Fprintf(stdout, "rendered %s.md and %s.html\n", base, base)
	}
	return 0
}

// summary is what a person reads at the end of the run.
func summary(r *report.Report, paths []string) string {
	var b strings.Builder
	verdict := "PASS"
	if !r.Passed {
		verdict = "FAIL"
	}
	fmt.Fprintf(&b, "\n%s %s (%s mode): %s generated, %s accounted, %s lost; throughput %s; latency P50 %s P95 %s P99 %s\n",
		verdict, r.Scenario, r.Mode, report.Int(r.Produced.Rows), report.Int(r.Accounted.Rows), report.Int(r.Accounted.Lost),
		report.Rate(r.Results.ThroughputRowsPerSec), report.Dur(r.Latency.P50), report.Dur(r.Latency.P95), report.Dur(r.Latency.P99))
	if r.MaxRate != nil {
		fmt.Fprintf(&b, "highest sustained rate: %s (P99 %s)\n", report.Rate(r.MaxRate.RowsPerSec), report.Dur(r.MaxRate.P99))
		if bulk := r.MaxRate.BulkCopy; bulk > 0 {
			fmt.Fprintf(&b, "2-stream \\copy bulk rate (same run): %s; ratio %.2f\n", report.Rate(bulk), r.MaxRate.RowsPerSec/bulk)
		}
		if at := r.MaxRate.BulkCopyAtBest; at > 0 {
			fmt.Fprintf(&b, "the same into a copy of events at the best step's size (%s rows): %s; ratio %.2f\n", report.Int(r.MaxRate.EventsAtBest), report.Rate(at), r.MaxRate.RowsPerSec/at)
		}
		if end := r.MaxRate.BulkCopyAtEnd; end > 0 {
			fmt.Fprintf(&b, "the same into events at the end (%s rows, rolled back): %s; ratio %.2f\n", report.Int(r.MaxRate.EventsAtEnd), report.Rate(end), r.MaxRate.RowsPerSec/end)
		}
	}
	for _, f := range r.Failed() {
		fmt.Fprintf(&b, "  ✗ %s\n", f)
	}
	for _, p := range paths {
		fmt.Fprintf(&b, "  %s\n", p)
	}
	return b.String()
}
