package collector

import (
	"context"
	"fmt"
	"sort"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/procfs"
)

// Memory is PostgreSQL's memory, the report's "Memory (PostgreSQL)" and its "PostgreSQL
// Memory Breakdown": the memory settings (shared_buffers, work_mem, ...) from the server,
// and — when the server runs on this machine in a /proc the collector can read (local mode,
// the tests, a collector sharing the server's PID namespace) — the proportional set size
// (PSS, /proc/<pid>/smaps_rollup) summed over the postmaster and every process
// pg_stat_activity lists. PSS divides shared pages (shared_buffers) among the processes
// that map them, so the sum counts shared memory once, where a sum of RSS would count it
// per backend. A pid is used only when /proc says it is a "postgres" process, so a pid from
// another namespace is never mistaken for one. Under compose the container's memory comes
// from cAdvisor instead (see the Resources dashboard).
type Memory struct {
	DB   *pgxpool.Pool
	Proc string // /proc mount; "/proc" when empty
}

var (
	pgSettingDesc = Desc("postgres_setting_bytes",
		"PostgreSQL memory settings in bytes (shared_buffers, work_mem, maintenance_work_mem, effective_cache_size, wal_buffers).", "setting")
	pgMemoryDesc = Desc("postgres_memory_bytes",
		"Proportional set size (PSS) summed over PostgreSQL's processes, read from /proc; absent when they are not visible to the collector.")
	pgCPUDesc = Desc("postgres_cpu_seconds_total",
		"User and system CPU time of the PostgreSQL processes alive now, read from /proc; a backend that exits takes its time with it, which rate() treats as a counter reset. Absent when they are not visible.")
	pgProcsDesc = Desc("postgres_processes",
		"PostgreSQL processes whose memory was read from /proc (0 when the server is not visible to the collector).")
)

// MemorySettings are reported in bytes.
var MemorySettings = []string{"shared_buffers", "work_mem", "maintenance_work_mem", "effective_cache_size", "wal_buffers"}

// Name implements Measurement.
func (*Memory) Name() string { return "memory" }

// Describe implements Measurement.
func (*Memory) Describe(ch chan<- *prometheus.Desc) {
	ch <- pgSettingDesc
	ch <- pgMemoryDesc
	ch <- pgProcsDesc
}

// Measure implements Measurement.
func (m *Memory) Measure(ctx context.Context, ch chan<- prometheus.Metric) error {
	for _, s := range MemorySettings {
		var b int64
		// current_setting gives the value with its unit ("128MB"), which pg_size_bytes reads.
		if err := m.DB.QueryRow(ctx, `SELECT pg_size_bytes(current_setting($1))`, s).Scan(&b); err != nil {
			return fmt.Errorf("setting %s: %w", s, err)
		}
		gauge(ch, pgSettingDesc, float64(b), s)
	}
	var pids []int
	rows, err := m.DB.Query(ctx, `SELECT pid FROM pg_stat_activity UNION SELECT pg_backend_pid()`)
	if err != nil {
		return fmt.Errorf("postgres pids: %w", err)
	}
	for rows.Next() {
		var pid int
		if err := rows.Scan(&pid); err != nil {
			rows.Close()
			return fmt.Errorf("postgres pids: %w", err)
		}
		pids = append(pids, pid)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("postgres pids: %w", err)
	}
	pss, cpu, n := m.pss(pids)
	gauge(ch, pgProcsDesc, float64(n))
	if n > 0 {
		gauge(ch, pgMemoryDesc, float64(pss))
		counter(ch, pgCPUDesc, cpu)
	}
	return nil
}

// pss sums the PSS and CPU time of the postgres processes among pids and their parent (the
// postmaster), skipping any it cannot read.
func (m *Memory) pss(pids []int) (uint64, float64, int) {
	mount := m.Proc
	if mount == "" {
		mount = procfs.DefaultMountPoint
	}
	fs, err := procfs.NewFS(mount)
	if err != nil {
		return 0, 0, 0
	}
	seen := map[int]bool{}
	var all []int
	add := func(pid int) {
		if pid > 1 && !seen[pid] {
			seen[pid] = true
			all = append(all, pid)
		}
	}
	for _, pid := range pids {
		add(pid)
		if p, err := fs.Proc(pid); err == nil {
			if st, err := p.Stat(); err == nil && st.Comm == "postgres" {
				add(st.PPID)
			}
		}
	}
	sort.Ints(all)
	var sum uint64
	var cpu float64
	n := 0
	for _, pid := range all {
		p, err := fs.Proc(pid)
		if err != nil {
			continue
		}
		st, err := p.Stat()
		if err != nil || st.Comm != "postgres" {
			continue
		}
		r, err := p.ProcSMapsRollup()
		if err != nil {
			continue
		}
		sum += r.Pss
		cpu += st.CPUTime()
		n++
	}
	return sum, cpu, n
}
