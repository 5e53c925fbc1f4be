package stack

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ecomstream/ecomstream/services/common/db"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/ecomstream/ecomstream/services/loadtest/internal/measure"
	"github.com/ecomstream/ecomstream/services/loadtest/internal/report"
)

// Local runs the pipeline as processes of the repository's binaries against a fresh
// PostgreSQL cluster (scripts/pg-local.sh) or, with DatabaseURL set, a fresh database on
// an existing server. Everything lives under Dir, removed by Stop unless Keep.
type Local struct {
	Root        string // repository root (scripts/pg-local.sh)
	BinDir      string // generator, ingester, collector; default Root/bin
	Dir         string // this run's directory
	RunID       string
	Ingesters   int
	Trigger     time.Duration
	Workers     int // 0 = the ingester's default
	DatabaseURL string
	Keep        bool
	// NoCollector leaves the collector out, to tell its cost (its full-table report
	// queries every 30 s) from the pipeline's.
	NoCollector bool
	BulkRows    int // max preset: rows of the 2-stream COPY bulk baseline (0 = not measured)
	// SampleEvery is the /proc sampling period.
	SampleEvery time.Duration

	dbURL      string
	dbName     string
	pool       *pgxpool.Pool
	pgDir      string
	postmaster int
	services   []*proc // ingesters, collector
	gens       []*proc
	genSince   time.Time
	sampler    *measure.ProcSampler
	samples    []report.ResourceSample
	stopSample context.CancelFunc
	sampleDone chan struct{}

	mu       sync.Mutex
	problems []string
	stopping bool
}

type proc struct {
	name, kind string
	addr       string
	cmd        *exec.Cmd
	log        string
	done       chan struct{}
	err        error
	lastRows   int64
}

func (l *Local) bin(name string) string {
	if l.BinDir != "" {
		return filepath.Join(l.BinDir, name)
	}
	return filepath.Join(l.Root, "bin", name)
}

func (l *Local) dataDir(sub string) string { return filepath.Join(l.Dir, "data", sub) }

// Start implements Stack.
func (l *Local) Start(ctx context.Context) error {
	for _, d := range []string{"incoming", "archive", "failed"} {
		if err := os.MkdirAll(l.dataDir(d), 0o755); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(filepath.Join(l.Dir, "logs"), 0o755); err != nil {
		return err
	}
	if err := l.startDB(ctx); err != nil {
		return err
	}
	migrate := exec.CommandContext(ctx, l.bin("ingester"), "migrate")
	migrate.Env = append(os.Environ(), "DATABASE_URL="+l.dbURL)
	if out, err := migrate.CombinedOutput(); err != nil {
		return fmt.Errorf("ingester migrate: %w: %s", err, out)
	}
	for i := 1; i <= l.Ingesters; i++ {
		p, err := l.spawn(ctx, "ingester", fmt.Sprintf("ingester-%d", i), l.ingesterEnv())
		if err != nil {
			return err
		}
		l.mu.Lock()
		l.services = append(l.services, p)
		l.mu.Unlock()
	}
	if !l.NoCollector {
		c, err := l.spawn(ctx, "collector", "collector", []string{
			"COLLECTOR_WATCH_DIR=" + l.dataDir("incoming"), "COLLECTOR_INTERVAL=5s"})
		if err != nil {
			return err
		}
		l.mu.Lock()
		l.services = append(l.services, c)
		l.mu.Unlock()
	}
	for _, p := range l.services {
		if err := waitReady(ctx, p, 60*time.Second); err != nil {
			return err
		}
	}
	l.startSampling()
	return nil
}

func (l *Local) ingesterEnv() []string {
	env := []string{
		"INGESTER_INPUT_DIR=" + l.dataDir("incoming"),
		"INGESTER_ARCHIVE_DIR=" + l.dataDir("archive"),
		"INGESTER_FAILED_DIR=" + l.dataDir("failed"),
		"INGESTER_TRIGGER_INTERVAL=" + l.Trigger.String(),
	}
	if l.Workers > 0 {
		env = append(env, "INGESTER_WORKERS="+strconv.Itoa(l.Workers))
	}
	return env
}

// startDB gives the run a database of its own: a fresh cluster, or a fresh database on
// the server the user named.
func (l *Local) startDB(ctx context.Context) error {
	admin := l.DatabaseURL
	if admin == "" {
		port, err := freePort()
		if err != nil {
			return err
		}
		l.pgDir = filepath.Join(l.Dir, "pg")
		out, err := exec.CommandContext(ctx, filepath.Join(l.Root, "scripts", "pg-local.sh"), "start", l.pgDir, strconv.Itoa(port)).Output()
		if err != nil {
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				return fmt.Errorf("scripts/pg-local.sh start: %w: %s", err, ee.Stderr)
			}
			return fmt.Errorf("scripts/pg-local.sh start: %w", err)
		}
		admin = strings.TrimSpace(string(out))
	}
	name := "loadtest_" + strings.NewReplacer("-", "_", ":", "_", ".", "_").Replace(strings.ToLower(l.RunID))
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		return fmt.Errorf("connect %s: %w", admin, err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		return fmt.Errorf("create database %s: %w", name, err)
	}
	if l.pgDir != "" {
		// The cluster is ours: its postmaster is the parent of this connection's backend
		// (wherever pg-local.sh put the data directory), and its processes are sampled.
		var backend int
		if err := conn.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&backend); err == nil {
			l.postmaster = measure.Parent(backend)
		}
	}
	l.dbURL, l.dbName = db.WithDatabase(admin, name), name
	cfg, err := pgxpool.ParseConfig(l.dbURL)
	if err != nil {
		return err
	}
	cfg.MaxConns = 4
	if l.pool, err = pgxpool.NewWithConfig(ctx, cfg); err != nil {
		return err
	}
	return l.pool.Ping(ctx)
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// spawn starts bin/<kind> with its own HTTP port, logging to logs/<name>.log.
func (l *Local) spawn(ctx context.Context, kind, name string, env []string, args ...string) (*proc, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	p := &proc{name: name, kind: kind, addr: fmt.Sprintf("127.0.0.1:%d", port),
		log: filepath.Join(l.Dir, "logs", name+".log"), done: make(chan struct{})}
	logf, err := os.Create(p.log)
	if err != nil {
		return nil, err
	}
	prefix := strings.ToUpper(kind)
	p.cmd = exec.Command(l.bin(kind), args...)
	p.cmd.Env = append(append(os.Environ(), "DATABASE_URL="+l.dbURL, "LOG_LEVEL=info",
		prefix+"_HTTP_ADDR="+p.addr, prefix+"_INSTANCE="+name), env...)
	p.cmd.Stdout, p.cmd.Stderr = logf, logf
	// The services die with the load test even if it is killed.
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if err := p.cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		logf.Close()
		close(p.done)
		l.mu.Lock()
		defer l.mu.Unlock()
		if !l.stopping && (kind != "generator" || p.err != nil) {
			l.problems = append(l.problems, fmt.Sprintf("%s exited during the run (%v); see %s", name, p.err, p.log))
		}
	}()
	return p, nil
}

func waitReady(ctx context.Context, p *proc, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		select {
		case <-p.done:
			return fmt.Errorf("%s exited at start (%v): %s", p.name, p.err, tail(p.log))
		case <-ctx.Done():
			return ctx.Err()
		default:
		}
		if r, err := http.Get("http://" + p.addr + "/readyz"); err == nil {
			r.Body.Close()
			if r.StatusCode == 200 {
				return nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("%s not ready after %s: %s", p.name, timeout, tail(p.log))
}

func tail(path string) string {
	b, _ := os.ReadFile(path)
	if len(b) > 1500 {
		b = b[len(b)-1500:]
	}
	return string(b)
}

// DB implements Stack.
func (l *Local) DB() measure.Querier { return measure.PGX{Pool: l.pool} }

// Window implements Stack: the database is the run's own, so every file is the run's.
func (l *Local) Window() measure.Window { return measure.Window{} }

// Generate implements Stack.
func (l *Local) Generate(ctx context.Context, g Gen) error {
	// The sampler goroutine reads gens and services (groups), so they change under l.mu.
	l.mu.Lock()
	l.gens = nil
	l.mu.Unlock()
	l.genSince = time.Now()
	for i := 1; i <= g.Replicas; i++ {
		name := fmt.Sprintf("%s-g%d", g.Tag, i)
		p, err := l.spawn(ctx, "generator", name, []string{
			"GENERATOR_OUTPUT_DIR=" + l.dataDir("incoming"),
			"GENERATOR_MIN_RECORDS=" + strconv.Itoa(g.MinRecords),
			"GENERATOR_MAX_RECORDS=" + strconv.Itoa(g.MaxRecords),
			"GENERATOR_SLEEP=" + strconv.FormatFloat(g.Sleep.Seconds(), 'f', -1, 64),
			"GENERATOR_DURATION=" + g.Duration.String(),
			"GENERATOR_BAD_RATE=" + strconv.FormatFloat(g.BadRate, 'f', -1, 64),
			"GENERATOR_DUPLICATE_RATE=" + strconv.FormatFloat(g.DupRate, 'f', -1, 64),
		})
		if err != nil {
			return err
		}
		l.mu.Lock()
		l.gens = append(l.gens, p)
		l.mu.Unlock()
	}
	return nil
}

// GeneratorsDone implements Stack.
func (l *Local) GeneratorsDone(context.Context) bool {
	for _, p := range l.gens {
		select {
		case <-p.done:
		default:
			return false
		}
	}
	return true
}

// Generated implements Stack: the generators' record counters while they run, their
// final counts once they have exited.
func (l *Local) Generated(ctx context.Context) int64 {
	var n int64
	for _, p := range l.gens {
		select {
		case <-p.done:
			f, _ := os.Open(p.log)
			if f != nil {
				prod, _ := parseFinished(f, time.Time{})
				f.Close()
				if prod.Rows > 0 {
					p.lastRows = prod.Rows
				}
			}
		default:
			if fams, err := scrape(ctx, p.addr); err == nil {
				p.lastRows = int64(sum(fams, "ecomstream_generator_records_total"))
			}
		}
		n += p.lastRows
	}
	return n
}

// Finals implements Stack.
func (l *Local) Finals(context.Context) (report.Produced, error) {
	var total report.Produced
	for _, p := range l.gens {
		f, err := os.Open(p.log)
		if err != nil {
			return total, err
		}
		prod, n := parseFinished(f, time.Time{})
		f.Close()
		if n == 0 {
			return total, fmt.Errorf("%s logged no \"generator finished\" line; see %s", p.name, p.log)
		}
		total.AddCounts(prod)
	}
	return total, nil
}

// Backlog implements Stack.
func (l *Local) Backlog(context.Context) int64 {
	n, _ := countCSV(l.dataDir("incoming"))
	return n
}

func countCSV(dir string) (int64, []string) {
	ents, _ := os.ReadDir(dir)
	var n int64
	var names []string
	for _, e := range ents {
		if e.Type().IsRegular() && strings.HasSuffix(e.Name(), ".csv") && !strings.HasPrefix(e.Name(), ".") {
			n++
			names = append(names, filepath.Join(dir, e.Name()))
		}
	}
	return n, names
}

// Batches implements Stack, from the ingesters' histograms.
func (l *Local) Batches(ctx context.Context) (count, seconds, rows float64, err error) {
	for _, p := range l.services {
		if p.kind != "ingester" {
			continue
		}
		fams, err := scrape(ctx, p.addr)
		if err != nil {
			return 0, 0, 0, err
		}
		c, s := histogram(fams, "ecomstream_ingester_batch_duration_seconds")
		_, r := histogram(fams, "ecomstream_ingester_batch_records")
		count, seconds, rows = count+c, seconds+s, rows+r
	}
	return count, seconds, rows, nil
}

func (l *Local) startSampling() {
	start := time.Now()
	l.sampler = &measure.ProcSampler{Start: start, Groups: l.groups}
	ctx, cancel := context.WithCancel(context.Background())
	l.stopSample, l.sampleDone = cancel, make(chan struct{})
	every := l.SampleEvery
	if every <= 0 {
		every = time.Second
	}
	go func() {
		defer close(l.sampleDone)
		t := time.NewTicker(every)
		defer t.Stop()
		l.sampler.Sample(time.Now())
		for {
			select {
			case <-ctx.Done():
				return
			case now := <-t.C:
				s := l.sampler.Sample(now)
				l.mu.Lock()
				l.samples = append(l.samples, s)
				l.mu.Unlock()
			}
		}
	}()
}

func (l *Local) groups() map[string][]int {
	g := map[string][]int{"ingester": nil, "generator": nil, "collector": nil, "postgres": nil}
	l.mu.Lock()
	procs := append(append([]*proc(nil), l.services...), l.gens...)
	l.mu.Unlock()
	for _, p := range procs {
		if p.cmd != nil && p.cmd.Process != nil {
			g[p.kind] = append(g[p.kind], p.cmd.Process.Pid)
		}
	}
	if l.postmaster > 0 {
		g["postgres"] = append([]int{l.postmaster}, measure.Children(l.postmaster)...)
	}
	return g
}

// Resources implements Stack: the /proc samples taken since Start, re-based to from.
func (l *Local) Resources(_ context.Context, from, to time.Time) (report.Resources, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	res := report.Resources{Source: "/proc (CPU: utime+stime; memory: PSS from smaps_rollup)",
		Components: []string{"ingester", "postgres", "generator", "collector"}}
	if l.sampler == nil {
		return res, nil
	}
	shift := from.Sub(l.sampler.Start).Seconds()
	end := to.Sub(from).Seconds()
	for _, s := range l.samples {
		s.T -= shift
		if s.T >= 0 && s.T <= end {
			res.Samples = append(res.Samples, s)
		}
	}
	if l.postmaster == 0 {
		res.Source += "; PostgreSQL is an external server, not sampled"
	}
	return res, nil
}

// CountFiles implements Stack: the rows of every file in archive, failed and incoming,
// read with a CSV reader (a quoted field may hold a line break).
func (l *Local) CountFiles(ctx context.Context) (report.Produced, bool, error) {
	var p report.Produced
	p.CountedFromFiles = true
	for _, sub := range []string{"archive", "failed", "incoming"} {
		n, names := countCSV(l.dataDir(sub))
		switch sub {
		case "archive":
			p.ArchiveFiles = n
		case "failed":
			p.FailedFiles = n
		case "incoming":
			p.IncomingFiles = n
		}
		for _, name := range names {
			if err := ctx.Err(); err != nil {
				return p, true, err
			}
			rows, err := csvRows(name)
			if err != nil {
				return p, true, fmt.Errorf("count rows of %s: %w", name, err)
			}
			p.FilesOnDisk++
			p.RowsOnDisk += rows
		}
	}
	return p, true, nil
}

func csvRows(name string) (int64, error) {
	f, err := os.Open(name)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	r := csv.NewReader(f)
	r.FieldsPerRecord = -1
	r.ReuseRecord = true
	var n int64
	for {
		_, err := r.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return n, err
		}
		n++
	}
	return max(n-1, 0), nil // the header
}

// Problems implements Stack.
func (l *Local) Problems() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.problems...)
}

// BulkCopyRate implements BulkCopier: BulkRows rows in 2 streams of files of up to
// 10,000 rows (the bench's file size); 0 when BulkRows is 0.
func (l *Local) BulkCopyRate(ctx context.Context) (float64, error) {
	return l.bulk(ctx, measure.BulkCopy)
}

// BulkCopyRateRolledBack implements BulkCopier.
func (l *Local) BulkCopyRateRolledBack(ctx context.Context) (float64, error) {
	return l.bulk(ctx, measure.BulkCopyRolledBack)
}

// BulkCopyRateAt implements BulkCopier.
func (l *Local) BulkCopyRateAt(ctx context.Context, rows int64) (float64, error) {
	return l.bulk(ctx, func(ctx context.Context, pool *pgxpool.Pool, streams, files, perFile int) (float64, error) {
		return measure.BulkCopyAt(ctx, pool, rows, streams, files, perFile)
	})
}

func (l *Local) bulk(ctx context.Context, copy func(context.Context, *pgxpool.Pool, int, int, int) (float64, error)) (float64, error) {
	if l.BulkRows <= 0 {
		return 0, nil
	}
	perStream := (l.BulkRows + 1) / 2
	files := (perStream + 9999) / 10000
	return copy(ctx, l.pool, 2, files, (perStream+files-1)/files)
}

// Environment implements Stack.
func (l *Local) Environment(ctx context.Context) report.Environment {
	e := measure.Host()
	if l.pool != nil {
		var v string
		if l.pool.QueryRow(ctx, "SELECT current_setting('server_version')").Scan(&v) == nil {
			e.PostgreSQL = v
		}
	}
	if l.NoCollector {
		e.Notes = append(e.Notes, "run without the collector (--collector=false)")
	}
	if l.DatabaseURL == "" {
		e.Notes = append(e.Notes, "PostgreSQL: a fresh cluster per run (scripts/pg-local.sh)")
	}
	if l.pool != nil {
		// Read from the server, not assumed: the figures hold for these settings only.
		var sc, fsync, sb string
		if l.pool.QueryRow(ctx, "SELECT current_setting('synchronous_commit'), current_setting('fsync'), current_setting('shared_buffers')").Scan(&sc, &fsync, &sb) == nil {
			e.Notes = append(e.Notes, fmt.Sprintf("PostgreSQL durability: synchronous_commit=%s, fsync=%s, shared_buffers=%s", sc, fsync, sb))
		}
	}
	return e
}

// Stop implements Stack.
func (l *Local) Stop(ctx context.Context) error {
	l.mu.Lock()
	l.stopping = true
	l.mu.Unlock()
	if l.stopSample != nil {
		l.stopSample()
		<-l.sampleDone
	}
	for _, p := range append(append([]*proc(nil), l.gens...), l.services...) {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
	}
	for _, p := range append(append([]*proc(nil), l.gens...), l.services...) {
		select {
		case <-p.done:
		case <-time.After(30 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	}
	if l.pool != nil {
		l.pool.Close()
	}
	var err error
	if l.pgDir != "" {
		if out, e := exec.Command(filepath.Join(l.Root, "scripts", "pg-local.sh"), "stop", l.pgDir).CombinedOutput(); e != nil {
			err = fmt.Errorf("pg-local.sh stop: %w: %s", e, out)
		}
		// pg-local.sh keeps a cluster the postgres user cannot reach in DIR under /tmp,
		// linked from DIR/cluster: that directory is this run's too.
		if real, e := os.Readlink(filepath.Join(l.pgDir, "cluster")); e == nil && !l.Keep && err == nil {
			_ = os.RemoveAll(real)
		}
	} else if l.DatabaseURL != "" && !l.Keep {
		if conn, e := pgx.Connect(ctx, l.DatabaseURL); e == nil {
			_, _ = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{l.dbName}.Sanitize())
			conn.Close(ctx)
		}
	}
	if !l.Keep {
		_ = os.RemoveAll(filepath.Join(l.Dir, "data"))
		_ = os.RemoveAll(filepath.Join(l.Dir, "pg"))
	}
	return err
}

func scrape(ctx context.Context, addr string) (map[string]*dtoFamily, error) {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/metrics", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	p := expfmt.NewTextParser(model.UTF8Validation)
	return p.TextToMetricFamilies(resp.Body)
}
