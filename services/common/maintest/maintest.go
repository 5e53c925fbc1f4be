// Package maintest runs a service's main as a real process from its own tests: the test
// binary re-executes itself with a marker variable and TestMain calls main instead of the
// tests. The child has only the environment the test gives it (plus PATH), so what it
// reads from a variable is what the test set, and its exit status is main's os.Exit.
//
//	func TestMain(m *testing.M) { maintest.Main(m, main) }
//	code, stdout, stderr := maintest.Run(t, []string{"WINDOW=1"}, "healthcheck")
package maintest

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ecomstream/ecomstream/services/common/buildinfo"
	"github.com/ecomstream/ecomstream/services/common/metrics"
)

const marker = "ECOMSTREAM_MAINTEST_CHILD"

// Main is TestMain: in the child it runs main (which exits), else the tests.
func Main(m *testing.M, main func()) {
	if os.Getenv(marker) == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// Run starts main in a child process with args and env (KEY=VALUE; nothing else of this
// process's environment but PATH) and returns its exit status and output.
func Run(t testing.TB, env []string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append([]string{marker + "=1", "PATH=" + os.Getenv("PATH")}, env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exit):
		code = exit.ExitCode()
	default:
		t.Fatalf("start %s: %v", os.Args[0], err)
	}
	return code, out.String(), errb.String()
}

// Command is main in a child process with args, for a test that starts, signals and waits
// for it itself (a service that runs until stopped). Unlike Run, the child gets this
// process's whole environment; add to cmd.Env to set more.
func Command(ctx context.Context, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, os.Args[0], args...)
	cmd.Env = append(os.Environ(), marker+"=1")
	return cmd
}

// Healthy serves 200 on /healthz until the test ends and returns its host:port, for a
// child's `healthcheck` subcommand: the path of every service that loads its settings
// and needs neither a database nor a directory.
func Healthy(t testing.TB) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/healthz" {
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().String()
}

// CheckVersion runs `program --version` and fails t unless it exits 0 printing the
// build's line (the values of the ecomstream_build_info metric).
func CheckVersion(t *testing.T, program string) {
	t.Helper()
	code, stdout, stderr := Run(t, nil, "--version")
	if want := buildinfo.Line(program); code != 0 || strings.TrimSpace(stdout) != want {
		t.Errorf("--version: exit %d, stdout %q, stderr %q; want 0 and %q", code, stdout, stderr, want)
	}
}

// RegenerateEnv names the variable with which the tests that check a generated file
// (docs/metrics.md, the ingester's row encoder) rewrite it instead (make generate).
const RegenerateEnv = "ECOMSTREAM_REGENERATE"

// MetricsDoc fails t unless the section name of docs/metrics.md lists the metrics rec
// recorded (only those whose name starts with prefix); with ECOMSTREAM_REGENERATE=1 it
// rewrites the section instead (make generate). Tests build rec the way the service's main builds its
// registry, so the page cannot drift from the code.
func MetricsDoc(t *testing.T, name, prefix string, rec *metrics.Recorder) {
	t.Helper()
	var docs []metrics.Doc
	for _, d := range rec.Docs() {
		if strings.HasPrefix(d.Name, prefix) {
			docs = append(docs, d)
		}
	}
	if len(docs) == 0 {
		t.Fatalf("no metric named %s* was registered", prefix)
	}
	path, err := filepath.Abs(filepath.Join(RepoRoot(t), "docs", "metrics.md"))
	if err != nil {
		t.Fatal(err)
	}
	update := os.Getenv(RegenerateEnv) == "1"
	current, err := metrics.Section(path, name, metrics.Table(docs), update)
	switch {
	case err != nil:
		t.Fatal(err)
	case !current && update:
		t.Logf("rewrote the %s section of %s", name, path)
	case !current:
		t.Errorf("the %s section of %s is not what the code registers: run `make generate` (%s=1)", name, path, RegenerateEnv)
	}
}

// RepoRoot is the directory holding go.work, above the working directory.
func RepoRoot(t testing.TB) string {
	t.Helper()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for d := wd; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.work")); err == nil {
			return d
		}
		if filepath.Dir(d) == d {
			t.Fatalf("no go.work above %s", wd)
		}
	}
}
