// Package e2e runs the real binaries as processes against a real PostgreSQL and checks
// the pipeline's one invariant: every row of every produced file is accounted for
// exactly once — inserted, rejected with its reason, or counted as a duplicate — and the
// counts match the generator's own.
package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ecomstream/ecomstream/services/common/compress"
	"github.com/ecomstream/ecomstream/services/common/csvcodec"
	"github.com/ecomstream/ecomstream/services/common/pgtest"
)

var binDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "ecomstream-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	// ECOMSTREAM_E2E_BUILD_FROM builds the services from another checkout (a baseline's
	// worktree): an A/B of a benchmark runs the same bench against both.
	from := os.Getenv("ECOMSTREAM_E2E_BUILD_FROM")
	if from == "" {
		from = "."
	}
	for _, s := range []string{"generator", "ingester", "collector"} {
		cmd := exec.Command("go", "build", "-C", from, "-o", filepath.Join(dir, s), "github.com/ecomstream/ecomstream/services/"+s)
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			fmt.Fprintf(os.Stderr, "build %s: %v\n", s, err)
			os.Exit(1)
		}
	}
	code := pgtest.Main(m)
	os.RemoveAll(dir)
	os.Exit(code)
}

// dirs is one pipeline's shared volume.
type dirs struct{ In, Archive, Failed string }

func newDirs(t testing.TB) dirs {
	root := t.TempDir()
	d := dirs{filepath.Join(root, "incoming"), filepath.Join(root, "archive"), filepath.Join(root, "failed")}
	for _, p := range []string{d.In, d.Archive, d.Failed} {
		if err := os.MkdirAll(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return d
}

// proc is a running service process whose JSON log is kept.
type proc struct {
	t    testing.TB
	name string
	cmd  *exec.Cmd
	log  *logBuffer
	done chan struct{}
	err  error
}

type logBuffer struct {
	mu    sync.Mutex
	lines []string
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, l := range strings.Split(strings.TrimRight(string(p), "\n"), "\n") {
		if l != "" {
			b.lines = append(b.lines, l)
		}
	}
	return len(p), nil
}

func (b *logBuffer) all() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.lines...)
}

func start(t testing.TB, name string, env []string, args ...string) *proc {
	t.Helper()
	return startAs(t, nil, name, env, args...)
}

// startAs is start as another user (nil: this one).
func startAs(t testing.TB, cred *syscall.Credential, name string, env []string, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(filepath.Join(binDir, name), args...)
	cmd.Env = append(os.Environ(), env...)
	lb := &logBuffer{}
	cmd.Stdout, cmd.Stderr = lb, lb
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Credential: cred}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	p := &proc{t: t, name: name, cmd: cmd, log: lb, done: make(chan struct{})}
	go func() { p.err = cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.kill()
		if t.Failed() {
			lines := p.log.all()
			if len(lines) > 40 {
				lines = lines[len(lines)-40:]
			}
			t.Logf("last log lines of %s (pid %d):\n%s", name, cmd.Process.Pid, strings.Join(lines, "\n"))
		}
	})
	return p
}

func (p *proc) kill() {
	select {
	case <-p.done:
	default:
		_ = p.cmd.Process.Signal(syscall.SIGKILL)
		<-p.done
	}
}

func (p *proc) stop() error {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return p.err
	case <-time.After(30 * time.Second):
		p.kill()
		return fmt.Errorf("%s did not stop within 30s of SIGTERM", p.name)
	}
}

func (p *proc) wait(timeout time.Duration) error {
	select {
	case <-p.done:
		return p.err
	case <-time.After(timeout):
		return fmt.Errorf("%s still running after %s", p.name, timeout)
	}
}

func freeAddr(t testing.TB) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// startIngester runs an ingester replica as compose does: the database at dbURL (its
// administrator's URL) migrated once by `ingester migrate`, the replica connected as the
// ecomstream_ingester role of sql/0005 and not migrating itself. Every test of this
// package thereby also proves the role is enough for what the ingester does.
func startIngester(t testing.TB, dbURL string, d dirs, instance string, extra ...string) *proc {
	args := append([]string{"--input-dir", d.In, "--archive-dir", d.Archive, "--failed-dir", d.Failed,
		"--http-addr", freeAddr(t), "--instance", instance, "--rescan-interval", "500ms", "--db-wait", "120s",
		"--migrate-at-start=false"}, extra...)
	return start(t, "ingester", []string{"DATABASE_URL=" + ingesterURL(t, dbURL)}, args...)
}

// migratedURLs are the databases `ingester migrate` has run on.
var migratedURLs sync.Map

// ingesterURL migrates the database at adminURL (once per database, as compose's one-shot
// job, with migrateArgs: the retention settings that set the database's policy) and
// returns its URL for the ingester's role.
func ingesterURL(t testing.TB, adminURL string, migrateArgs ...string) string {
	t.Helper()
	if _, done := migratedURLs.Load(adminURL); !done {
		m := start(t, "ingester", []string{"DATABASE_URL=" + adminURL}, append([]string{"migrate", "--db-wait", "120s"}, migrateArgs...)...)
		if err := m.wait(2 * time.Minute); err != nil {
			t.Fatalf("ingester migrate: %v\n%s", err, strings.Join(m.log.all(), "\n"))
		}
		migratedURLs.Store(adminURL, true)
	}
	return pgtest.AsRole(t, adminURL, "ecomstream_ingester")
}

// genCounts is the generator's own account, from its final log line.
type genCounts struct {
	Files, Records, Valid, Invalid, Duplicate int64
}

func generatorCounts(t testing.TB, p *proc) genCounts {
	t.Helper()
	for _, l := range p.log.all() {
		var m struct {
			Message                                   string
			Files, Records, Valid, Invalid, Duplicate int64
		}
		if json.Unmarshal([]byte(l), &m) == nil && m.Message == "generator finished" {
			return genCounts{m.Files, m.Records, m.Valid, m.Invalid, m.Duplicate}
		}
	}
	t.Fatalf("generator logged no 'generator finished' line; log:\n%s", strings.Join(p.log.all(), "\n"))
	return genCounts{}
}

func pool(t testing.TB, url string) *pgxpool.Pool {
	t.Helper()
	p, err := pgxpool.New(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

// waitDrained waits until the input directory holds no *.csv and the ledger has n files.
func waitDrained(t *testing.T, db *pgxpool.Pool, d dirs, files int64, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		left, _ := filepath.Glob(filepath.Join(d.In, "*.csv"))
		var n int64
		err := db.QueryRow(context.Background(), "SELECT count(*) FROM ingested_files").Scan(&n)
		if err == nil && len(left) == 0 && n >= files {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not drained after %s: %d files left in %s, ledger has %d of %d files (last error %v)", timeout, len(left), d.In, n, files, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// countRows counts the data records of a CSV file as the ingester must see them.
func countRows(t *testing.T, path string) int64 {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	plain := compress.Reader(path, f) // .csv.gz and .csv.zst by their name
	defer plain.Close()
	r := csvcodec.NewReader(bufio.NewReader(plain))
	var n int64
	for {
		_, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		n++
	}
	return n - 1 // the header
}

// checkInvariant verifies exactly-once accounting against the database, the archived
// files themselves, and (when given) the generator's counts.
func checkInvariant(t *testing.T, db *pgxpool.Pool, d dirs, gen *genCounts) {
	t.Helper()
	ctx := context.Background()
	type ledgerRow struct {
		total, ins, rej, dup int64
	}
	ledger := map[string]ledgerRow{}
	rows, err := db.Query(ctx, `SELECT file_name, records_total, records_inserted, records_rejected, records_duplicate
		FROM ingested_files WHERE outcome = 'ingested'`)
	if err != nil {
		t.Fatal(err)
	}
	var sum ledgerRow
	for rows.Next() {
		var name string
		var r ledgerRow
		if err := rows.Scan(&name, &r.total, &r.ins, &r.rej, &r.dup); err != nil {
			t.Fatal(err)
		}
		if _, dupName := ledger[name]; dupName {
			t.Errorf("file %s committed twice", name)
		}
		ledger[name] = r
		sum.total += r.total
		sum.ins += r.ins
		sum.rej += r.rej
		sum.dup += r.dup
	}
	rows.Close()

	// Every archived file is in the ledger with exactly its rows, and nothing else is.
	archived, _ := filepath.Glob(filepath.Join(d.Archive, "*.csv"))
	if len(archived) != len(ledger) {
		t.Errorf("archive holds %d files, ledger %d", len(archived), len(ledger))
	}
	var produced int64
	for _, p := range archived {
		n := countRows(t, p)
		produced += n
		if r, ok := ledger[filepath.Base(p)]; !ok {
			t.Errorf("archived file %s is not in the ledger", filepath.Base(p))
		} else if r.total != n {
			t.Errorf("file %s has %d rows, ledger says %d", filepath.Base(p), n, r.total)
		}
	}
	var events, rejected, distinctFiles, ledgerRows int64
	if err := db.QueryRow(ctx, `SELECT (SELECT count(*) FROM events),
		(SELECT count(*) FROM rejected_records WHERE line_number > 0),
		(SELECT count(DISTINCT file_name) FROM ingested_files), (SELECT count(*) FROM ingested_files)`).
		Scan(&events, &rejected, &distinctFiles, &ledgerRows); err != nil {
		t.Fatal(err)
	}
	if distinctFiles != ledgerRows {
		t.Errorf("ledger has %d rows for %d distinct files", ledgerRows, distinctFiles)
	}
	if produced != sum.total {
		t.Errorf("files hold %d rows, ledger accounts for %d", produced, sum.total)
	}
	if sum.total != sum.ins+sum.rej+sum.dup {
		t.Errorf("ledger: total %d != inserted %d + rejected %d + duplicate %d", sum.total, sum.ins, sum.rej, sum.dup)
	}
	if events != sum.ins {
		t.Errorf("events table has %d rows, ledger says %d inserted", events, sum.ins)
	}
	if rejected != sum.rej {
		t.Errorf("rejected_records has %d rows, ledger says %d rejected", rejected, sum.rej)
	}
	if gen != nil {
		if gen.Files != int64(len(ledger)) {
			t.Errorf("generator placed %d files, ledger has %d", gen.Files, len(ledger))
		}
		if gen.Records != sum.total || gen.Valid != sum.ins || gen.Invalid != sum.rej || gen.Duplicate != sum.dup {
			t.Errorf("generator counted records=%d valid=%d invalid=%d duplicate=%d; database has total=%d inserted=%d rejected=%d duplicate=%d",
				gen.Records, gen.Valid, gen.Invalid, gen.Duplicate, sum.total, sum.ins, sum.rej, sum.dup)
		}
	}
	t.Logf("accounted: %d files, %d rows = %d inserted + %d rejected + %d duplicate", len(ledger), sum.total, sum.ins, sum.rej, sum.dup)
}

var _ = pgx.Identifier{}
