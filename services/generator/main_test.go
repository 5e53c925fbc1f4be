package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/ecomstream/ecomstream/services/common/config"
	"github.com/ecomstream/ecomstream/services/common/csvcodec"
	"github.com/ecomstream/ecomstream/services/common/maintest"
	"github.com/ecomstream/ecomstream/services/common/s3test"
	"github.com/ecomstream/ecomstream/services/generator/settings"
)

func TestMain(m *testing.M) { maintest.Main(m, main) }

// A SLEEP, MAX_FILES or OUTPUT_DIR in the shell is not a setting: only GENERATOR_SLEEP
// sets the pace. (Here the bare ones would not even parse.)
func TestABareVariableOfTheShellIsNotASetting(t *testing.T) {
	code, _, stderr := maintest.Run(t, []string{"SLEEP=soon", "MAX_FILES=many", "BAD_RATE=x", "HTTP_ADDR=nowhere"},
		"healthcheck", "--http-addr", maintest.Healthy(t))
	if code != 0 {
		t.Errorf("exit %d: %s; a bare variable was read as a setting", code, stderr)
	}
}

func TestBadSettingsExit2AsAProcess(t *testing.T) {
	for _, env := range [][]string{{"GENERATOR_SLEEP=soon"}, {"GENERATOR_MIN_RECORDS=-1"}, {"LOG_LEVEL=loud"}} {
		code, _, stderr := maintest.Run(t, append(env, "GENERATOR_OUTPUT_DIR="+t.TempDir()))
		name := strings.SplitN(env[0], "=", 2)[0]
		if code != 2 || !strings.Contains(stderr, name) {
			t.Errorf("%s: exit %d, stderr %q; want 2 naming %s", env, code, stderr, name)
		}
	}
}

func TestVersionPrintsTheBuild(t *testing.T) { maintest.CheckVersion(t, "generator") }

func TestReportCommandLine(t *testing.T) {
	s, err := load(strings.Fields("--min-records 50 --max-records 200 --sleep 0.5"), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if s.MinRecords != 50 || s.MaxRecords != 200 || s.Sleep.D() != 500*time.Millisecond {
		t.Fatalf("parsed %+v", s)
	}
	if s.HTTPAddr != ":8081" || s.OutputDir != "/data/incoming" || s.LogLevel != "info" || s.BadRate != 0 {
		t.Fatalf("defaults %+v", s)
	}
}

func TestEnvironmentAndFlags(t *testing.T) {
	t.Setenv("GENERATOR_SLEEP", "0.1")
	t.Setenv("GENERATOR_MIN_RECORDS", "1000")
	t.Setenv("GENERATOR_MAX_RECORDS", "1000")
	t.Setenv("GENERATOR_BAD_RATE", "0.05")
	t.Setenv("GENERATOR_DURATION", "20")
	t.Setenv("GENERATOR_INSTANCE", "gen-7")
	t.Setenv("LOG_LEVEL", "debug")
	s, err := load([]string{"--bad-rate", "0.01", "--duplicate-rate", "0.02", "--max-files", "9", "--seed", "5", "--start-at", "2026-12-02T16:00:00.5Z"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	want := settings.Config{Base: config.Base{LogLevel: "debug", HTTPAddr: ":8081", Instance: "gen-7"}, OutputDir: "/data/incoming",
		MinRecords: 1000, MaxRecords: 1000, BadRate: 0.01, DuplicateRate: 0.02, MaxFiles: 9, Seed: 5, Compress: "none",
		StartAt: "2026-12-02T16:00:00.5Z"}
	want.Sleep.Set("0.1")
	want.Duration.Set("20s")
	if s != want {
		t.Fatalf("got  %+v\nwant %+v", s, want)
	}
}

func TestHelpAndBadSettings(t *testing.T) {
	var out, errs bytes.Buffer
	if code := run([]string{"--help"}, &out, &errs); code != 0 {
		t.Fatalf("--help exit %d", code)
	}
	for _, s := range []string{"GENERATOR_OUTPUT_DIR", "--min-records", "--duplicate-rate", "healthcheck"} {
		if !strings.Contains(out.String(), s) {
			t.Errorf("--help does not mention %s:\n%s", s, out.String())
		}
	}
	for _, tc := range []struct{ args, want string }{
		{"--min-records 200 --max-records 100", "GENERATOR_MIN_RECORDS (--min-records) 200 is greater than GENERATOR_MAX_RECORDS (--max-records) 100"},
		{"--bad-rate 1", "GENERATOR_BAD_RATE (--bad-rate) 1 is outside [0, 1)"},
		{"--duplicate-rate -0.5", "GENERATOR_DUPLICATE_RATE (--duplicate-rate) -0.5 is outside [0, 1)"},
		{"--sleep soon", "soon"},
		{"--start-at 16:00", "GENERATOR_START_AT (--start-at) must be an instant in RFC 3339"},
		{"--log-level loud", "LOG_LEVEL (--log-level) must be debug, info, warn or error"},
		{"--instance .x", "GENERATOR_INSTANCE (--instance) instance \".x\" must not start"},
		{"--no-such-flag", "no-such-flag"},
		{"extra", "unexpected argument"},
	} {
		errs.Reset()
		if code := run(strings.Fields(tc.args+" --output-dir "+t.TempDir()), io.Discard, &errs); code != 2 {
			t.Errorf("%s: exit %d, want 2", tc.args, code)
		}
		if !strings.Contains(errs.String(), tc.want) {
			t.Errorf("%s: error %q does not say %q", tc.args, errs.String(), tc.want)
		}
	}
}

// processTest marks a test that runs the generator as a process (main in a child of the
// test binary, maintest.Command): not in the fast tier.
func processTest(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("process-level test")
	}
}

// proc is a running generator whose JSON log lines are collected.
type proc struct {
	cmd   *exec.Cmd
	mu    sync.Mutex
	lines []map[string]any
	done  chan struct{}
}

func start(t *testing.T, args ...string) *proc {
	t.Helper()
	processTest(t)
	cmd := maintest.Command(context.Background(), append([]string{"--http-addr", "127.0.0.1:0", "--instance", "proc"}, args...)...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: cmd, done: make(chan struct{})}
	go func() {
		defer close(p.done)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			var m map[string]any
			if json.Unmarshal(sc.Bytes(), &m) != nil {
				m = map[string]any{"message": sc.Text(), "raw": true}
			}
			p.mu.Lock()
			p.lines = append(p.lines, m)
			p.mu.Unlock()
		}
	}()
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	return p
}

// find waits for a log line with this message.
func (p *proc) find(t *testing.T, msg string, wait time.Duration) map[string]any {
	t.Helper()
	deadline := time.Now().Add(wait)
	for time.Now().Before(deadline) {
		p.mu.Lock()
		for _, l := range p.lines {
			if l["message"] == msg {
				p.mu.Unlock()
				return l
			}
		}
		p.mu.Unlock()
		time.Sleep(10 * time.Millisecond)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	t.Fatalf("no %q log line within %v; got %v", msg, wait, p.lines)
	return nil
}

func (p *proc) wait(t *testing.T, limit time.Duration) int {
	t.Helper()
	errc := make(chan error, 1)
	go func() { errc <- p.cmd.Wait() }()
	select {
	case err := <-errc:
		<-p.done
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode()
		}
		if err != nil {
			t.Fatal(err)
		}
		return 0
	case <-time.After(limit):
		t.Fatalf("generator still running after %v", limit)
		return -1
	}
}

// onDisk counts the placed files and their rows and lists leftover dotfiles.
func onDisk(t *testing.T, dir string) (files, rows int, tmps []string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".") {
			tmps = append(tmps, e.Name())
			continue
		}
		files++
		f, err := os.Open(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		r := csvcodec.NewReader(f)
		for {
			rec, err := r.Next()
			if err == io.EOF {
				break
			}
			if err != nil || rec.Err != nil {
				t.Fatalf("%s: %v %v", e.Name(), err, rec.Err)
			}
			rows++
		}
		rows-- // the header
		f.Close()
	}
	return files, rows, tmps
}

func count(l map[string]any, field string) int {
	v, _ := l[field].(float64)
	return int(v)
}

// TestSIGTERM runs the binary at a pace where it is often in the middle of a file, stops
// it with SIGTERM and checks: exit 0, no dotfile left, and the summary line counts what
// is on disk.
func TestSIGTERM(t *testing.T) {
	for i := 0; i < 3; i++ {
		dir := filepath.Join(t.TempDir(), "incoming")
		p := start(t, "--output-dir", dir, "--sleep", "0.005", "--min-records", "2000", "--max-records", "20000",
			"--bad-rate", "0.02", "--duplicate-rate", "0.03", "--log-level", "debug")
		listening := p.find(t, "http server listening", 10*time.Second)
		addr, _ := listening["addr"].(string)
		p.find(t, "file placed", 10*time.Second)

		for _, path := range []string{"/healthz", "/readyz", "/metrics"} {
			resp, err := http.Get("http://" + addr + path)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Fatalf("%s: %s %s", path, resp.Status, body)
			}
			if path == "/metrics" && !bytes.Contains(body, []byte(`ecomstream_generator_records_total{kind="valid"}`)) {
				t.Fatalf("/metrics lacks the records counter:\n%s", body)
			}
		}
		hc := maintest.Command(context.Background(), "healthcheck", "--http-addr", addr)
		if out, err := hc.CombinedOutput(); err != nil {
			t.Fatalf("healthcheck of a running generator: %v %s", err, out)
		}

		time.Sleep(time.Duration(50+i*37) * time.Millisecond)
		if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		if code := p.wait(t, 10*time.Second); code != 0 {
			t.Fatalf("exit %d after SIGTERM", code)
		}
		files, rows, tmps := onDisk(t, dir)
		if len(tmps) > 0 {
			t.Fatalf("left behind %v", tmps)
		}
		sum := p.find(t, "generator finished", time.Second)
		if count(sum, "files") != files || count(sum, "records") != rows || sum["reason"] != "signal" ||
			count(sum, "valid")+count(sum, "invalid")+count(sum, "duplicate") != rows {
			t.Fatalf("summary %v, on disk %d files %d rows", sum, files, rows)
		}
	}
}

// --max-files and --duration end the run with exit 0; --output names a directory as
// --output-dir does (a bucket is an s3:// URL).
func TestMaxFilesAndDurationExitZero(t *testing.T) {
	for _, flag := range []string{"--output-dir", "--output"} {
		dir := t.TempDir()
		p := start(t, flag, dir, "--sleep", "0.01", "--max-files", "7")
		if code := p.wait(t, 10*time.Second); code != 0 {
			t.Fatalf("%s DIR --max-files: exit %d", flag, code)
		}
		if files, _, tmps := onDisk(t, dir); files != 7 || len(tmps) > 0 {
			t.Fatalf("%s DIR --max-files 7: %d files there, tmps %v", flag, files, tmps)
		}
		if sum := p.find(t, "generator finished", time.Second); sum["reason"] != "max_files" {
			t.Fatalf("summary %v", sum)
		}
	}

	dir := t.TempDir()
	begin := time.Now()
	p := start(t, "--output-dir", dir, "--sleep", "0.1", "--duration", "0.5")
	if code := p.wait(t, 10*time.Second); code != 0 {
		t.Fatalf("--duration: exit %d", code)
	}
	if took := time.Since(begin); took < 500*time.Millisecond {
		t.Fatalf("--duration 0.5 stopped after %v", took)
	}
	// Files are due at 0, 100, ..., 400 ms: at most 5 (the exact count on a simulated
	// clock is the producer's TestDurationStops; a busy machine may start fewer here).
	if files, _, _ := onDisk(t, dir); files < 1 || files > 5 {
		t.Fatalf("--duration 0.5 --sleep 0.1: %d files, want 1 to 5", files)
	}
}

func TestHealthcheckOfNothing(t *testing.T) {
	processTest(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := maintest.Command(ctx, "healthcheck", "--http-addr", "127.0.0.1:1").Run()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Fatalf("healthcheck with nothing listening: %v, want exit 1", err)
	}
}

func TestUnwritableDirFails(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	p := start(t, "--output-dir", filepath.Join(file, "sub"), "--max-files", "1")
	if code := p.wait(t, 10*time.Second); code != 1 {
		t.Fatalf("output dir under a file: exit %d, want 1", code)
	}
}

// --output s3://BUCKET/PREFIX places the files in the bucket, endpoint and keys taken
// from the AWS SDKs' variables, and wins over --output-dir.
func TestOutputToABucket(t *testing.T) {
	g := s3test.StartGateway(t, s3test.Options{}, "out")
	c := g.Client(t) // also sets AWS_* for the child process
	dir := t.TempDir()
	p := start(t, "--output-dir", dir, "--output", "s3://out/incoming", "--sleep", "0.01", "--max-files", "5")
	if code := p.wait(t, time.Minute); code != 0 {
		t.Fatalf("exit %d", code)
	}
	n := 0
	for o := range c.ListObjects(context.Background(), "out", minio.ListObjectsOptions{Prefix: "incoming/", Recursive: true}) {
		if o.Err != nil {
			t.Fatal(o.Err)
		}
		if !strings.HasPrefix(o.Key, "incoming/proc-") || !strings.HasSuffix(o.Key, ".csv") || o.Size == 0 {
			t.Fatalf("object %q (%d bytes)", o.Key, o.Size)
		}
		n++
	}
	if files, _, _ := onDisk(t, dir); n != 5 || files != 0 {
		t.Fatalf("%d objects in the bucket, %d files in --output-dir; want 5 and 0", n, files)
	}
}
