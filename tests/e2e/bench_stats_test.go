package e2e

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
)

// drainStats, with ECOMSTREAM_BENCH_STATS set, tells where a drain's work went: the CPU
// seconds of each process (the ingesters, PostgreSQL's backends and its own processes,
// the S3 gateway, NATS), the database's transactions and, when the server loads
// pg_stat_statements (PG_LOCAL_OPTS="-c shared_preload_libraries=pg_stat_statements"),
// its statements: calls, rows and time. A claim's rows over the files drained is how
// often a file was claimed (1 when no replica ever took another's). Without it, it does
// nothing.
type drainStats struct {
	tb      testing.TB
	admin   string
	pgss    bool
	pg0     float64
	others0 map[string]float64
	kinds0  map[string]float64
	// wal0, checkpoints0: the server's WAL position and checkpoints begun, at the start
	wal0         string
	checkpoints0 int64
	// kinds: PostgreSQL's live processes' CPU by kind, before the ingesters stop
	kinds map[string]float64
}

func startDrainStats(tb testing.TB, admin string) *drainStats {
	if os.Getenv("ECOMSTREAM_BENCH_STATS") == "" {
		return nil
	}
	s := &drainStats{tb: tb, admin: admin}
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		tb.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE EXTENSION IF NOT EXISTS pg_stat_statements"); err == nil {
		_, err = conn.Exec(ctx, "SELECT pg_stat_statements_reset()")
		s.pgss = err == nil
	}
	s.wal0, s.checkpoints0 = walAndCheckpoints(tb, conn)
	s.pg0, s.others0 = s.pgCPU(), childrenCPU()
	_, s.kinds0 = s.pgCPUByKind()
	return s
}

// walAndCheckpoints is the server's WAL insert position and the checkpoints it has
// begun (timed or requested).
func walAndCheckpoints(tb testing.TB, conn *pgx.Conn) (lsn string, checkpoints int64) {
	if err := conn.QueryRow(context.Background(), `SELECT pg_current_wal_insert_lsn()::text,
		checkpoints_timed + checkpoints_req FROM pg_stat_bgwriter`).Scan(&lsn, &checkpoints); err != nil {
		tb.Fatal(err)
	}
	return lsn, checkpoints
}

// clockTicks is USER_HZ, the unit of /proc's CPU times (100 on every Linux port Go runs on).
const clockTicks = 100

// stat returns a process's parent and its CPU seconds: its own and, with reaped, its
// waited-for children's.
func stat(pid int, reaped bool) (ppid int, comm string, cpu float64, ok bool) {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return 0, "", 0, false
	}
	s := string(b)
	open, end := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
	if open < 0 || end < 0 {
		return 0, "", 0, false
	}
	f := strings.Fields(s[end+2:]) // f[0] is field 3 (state)
	if len(f) < 15 {
		return 0, "", 0, false
	}
	ppid, _ = strconv.Atoi(f[1])
	n := 0.0
	for i, k := range []int{11, 12, 13, 14} { // utime, stime, cutime, cstime
		if i >= 2 && !reaped {
			break
		}
		v, _ := strconv.ParseFloat(f[k], 64)
		n += v
	}
	return ppid, s[open+1 : end], n / clockTicks, true
}

// minorFaults is a process's minor page faults so far (its first touches of shared
// memory, PostgreSQL's buffers among them).
func minorFaults(pid int) float64 {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return 0
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	n, _ := strconv.ParseFloat(f[7], 64)
	return n
}

func eachProc(f func(pid int)) {
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		if pid, err := strconv.Atoi(e.Name()); err == nil {
			f(pid)
		}
	}
}

// pgCPU is the CPU seconds of the PostgreSQL server so far: the postmaster's, those of
// the children it has reaped (backends that ended) and of those alive.
func (s *drainStats) pgCPU() float64 {
	total, _ := s.pgCPUByKind()
	return total
}

// pgCPUByKind is pgCPU and the CPU seconds of the live children by kind: their process
// title's first word (a backend's user, or checkpointer, walwriter, autovacuum...).
func (s *drainStats) pgCPUByKind() (float64, map[string]float64) {
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, s.admin)
	if err != nil {
		s.tb.Fatal(err)
	}
	var backend int
	err = conn.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&backend)
	conn.Close(ctx)
	if err != nil {
		s.tb.Fatal(err)
	}
	pm, _, _, _ := stat(backend, false)
	_, _, total, _ := stat(pm, true)
	kinds := map[string]float64{}
	eachProc(func(pid int) {
		if ppid, _, cpu, ok := stat(pid, false); ok && ppid == pm && pid != backend {
			total += cpu
			title, _ := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "cmdline"))
			f := strings.Fields(strings.TrimPrefix(strings.ReplaceAll(string(title), "\x00", " "), "postgres: "))
			kind := "?"
			if len(f) > 0 {
				kind = f[0]
			}
			kinds[kind] += cpu
			if kind == "ecomstream_ingester" {
				kinds[fmt.Sprintf("session %d", pid)] = cpu
				kinds[fmt.Sprintf("faults %d", pid)] = minorFaults(pid)
			}
		}
	})
	return total, kinds
}

// childrenCPU is the CPU seconds of this process's children by name (the gateway, NATS).
func childrenCPU() map[string]float64 {
	m := map[string]float64{}
	self := os.Getpid()
	eachProc(func(pid int) {
		if ppid, comm, cpu, ok := stat(pid, true); ok && ppid == self {
			m[comm] += cpu
		}
	})
	return m
}

// scrape returns the sum of the samples of the metrics named in the ingester's /metrics.
func scrape(p *proc, names ...string) map[string]float64 {
	out := map[string]float64{}
	addr := ""
	for i, a := range p.cmd.Args {
		if a == "--http-addr" && i+1 < len(p.cmd.Args) {
			addr = p.cmd.Args[i+1]
		}
	}
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return out
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(io.LimitReader(resp.Body, 1<<22))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		l := sc.Text()
		for _, n := range names {
			if strings.HasPrefix(l, n) {
				f := strings.Fields(l)
				v, _ := strconv.ParseFloat(f[len(f)-1], 64)
				out[strings.TrimPrefix(f[0], "ecomstream_ingester_")] += v
			}
		}
	}
	return out
}

// scrapeAll is what every ingester's metrics say, summed (before they stop).
func (s *drainStats) scrapeAll(ings []*proc) map[string]float64 {
	if s == nil {
		return nil
	}
	_, s.kinds = s.pgCPUByKind()
	sum := map[string]float64{}
	for _, p := range ings {
		for k, v := range scrape(p, "ecomstream_ingester_batches_total", "ecomstream_ingester_source_list_duration_seconds_count",
			"ecomstream_ingester_source_errors_total", "ecomstream_ingester_files_total", "ecomstream_ingester_files_skipped_total") {
			sum[k] += v
		}
	}
	return sum
}

// report logs the drain's figures, once its ingesters (stopped) have exited.
func (s *drainStats) report(label, url string, ings []*proc, metrics map[string]float64) {
	if s == nil {
		return
	}
	tb, ctx := s.tb, context.Background()
	var ing []string
	total := 0.0
	for _, p := range ings {
		if st := p.cmd.ProcessState; st != nil {
			c := (st.UserTime() + st.SystemTime()).Seconds()
			total += c
			ing = append(ing, fmt.Sprintf("%.2f", c))
		}
	}
	pg := s.pgCPU() - s.pg0
	others := childrenCPU()
	var b strings.Builder
	fmt.Fprintf(&b, "%s: CPU s: ingesters %.2f (%s), postgres %.2f", label, total, strings.Join(ing, " "), pg)
	for k, v := range others {
		if d := v - s.others0[k]; d > 0.005 && (k == "versitygw" || k == "nats-server") {
			fmt.Fprintf(&b, ", %s %.2f", k, d)
		}
	}
	fmt.Fprintf(&b, "; PostgreSQL's live processes by kind:")
	var sessions []string
	for k, v := range s.kinds {
		switch {
		case strings.HasPrefix(k, "session "):
			sessions = append(sessions, fmt.Sprintf("%.2f/%.0fk", v, s.kinds["faults "+strings.TrimPrefix(k, "session ")]/1000))
		case strings.HasPrefix(k, "faults "):
		case v-s.kinds0[k] > 0.005:
			fmt.Fprintf(&b, " %s %.2f", k, v-s.kinds0[k])
		}
	}
	sort.Strings(sessions)
	fmt.Fprintf(&b, "; the ingesters' %d sessions' CPU s/minor page faults: %s", len(sessions), strings.Join(sessions, " "))
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		tb.Fatal(err)
	}
	defer conn.Close(ctx)
	admin, err := pgx.Connect(ctx, s.admin) // where pg_stat_statements was created
	if err != nil {
		tb.Fatal(err)
	}
	defer admin.Close(ctx)
	var dbName string
	_ = conn.QueryRow(ctx, "SELECT current_database()").Scan(&dbName)
	var xacts, rollbacks, txFiles int64
	_ = conn.QueryRow(ctx, `SELECT xact_commit, xact_rollback FROM pg_stat_database WHERE datname = current_database()`).Scan(&xacts, &rollbacks)
	_ = conn.QueryRow(ctx, `SELECT count(DISTINCT xmin::text) FROM ingested_files`).Scan(&txFiles)
	var walMB float64
	lsn, checkpoints := walAndCheckpoints(tb, admin)
	_ = admin.QueryRow(ctx, "SELECT pg_wal_lsn_diff($1::pg_lsn, $2::pg_lsn) / 1e6", lsn, s.wal0).Scan(&walMB)
	fmt.Fprintf(&b, "; WAL %.0f MB, checkpoints begun %d", walMB, checkpoints-s.checkpoints0)
	fmt.Fprintf(&b, "; xacts %d (rolled back %d), loading transactions %d; metrics %v", xacts, rollbacks, txFiles, metrics)
	if s.pgss {
		rows, err := admin.Query(ctx, `SELECT calls, rows, total_exec_time, regexp_replace(left(query, 70), '\s+', ' ', 'g')
			FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database WHERE datname = $1)
			ORDER BY total_exec_time DESC LIMIT 14`, dbName)
		if err == nil {
			for rows.Next() {
				var calls, n int64
				var ms float64
				var q string
				if rows.Scan(&calls, &n, &ms, &q) == nil {
					fmt.Fprintf(&b, "\n    %6d calls %7d rows %8.1f ms  %s", calls, n, ms, q)
				}
			}
			rows.Close()
		} else {
			fmt.Fprintf(&b, "\n    pg_stat_statements: %v", err)
		}
	}
	// Printed, not logged: a benchmark's log is cut after a few lines.
	fmt.Println(b.String())
}
