package collector

import (
	"context"
	"fmt"
	"sort"
	"sync"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/procfs"
)

// Memory is PostgreSQL's memory and CPU time, the report's "Memory (PostgreSQL)" — when the
// server runs on this machine in a /proc the collector can read (local mode, the tests, a
// collector sharing the server's PID namespace): the proportional set size
// (PSS, /proc/<pid>/smaps_rollup) summed over the postmaster and every process
// pg_stat_activity lists. PSS divides shared pages (shared_buffers) among the processes
// that map them, so the sum counts shared memory once, where a sum of RSS would count it
// per backend. A pid is used only when /proc says it is a "postgres" process, so a pid from
// another namespace is never mistaken for one. Under compose the container's memory comes
// from cAdvisor instead (see the Resources dashboard). The memory settings are
// postgres_exporter's (pg_settings_*_bytes; ExporterStandIn where none runs).
type Memory struct {
	DB   *pgxpool.Pool
	Proc string // /proc mount; "/proc" when empty

	mu  sync.Mutex
	cpu cpuCounter
}

var (
	pgMemoryDesc = Desc("postgres_memory_bytes",
		"Proportional set size (PSS) summed over PostgreSQL's processes, read from /proc; absent when they are not visible to the collector.")
	pgCPUDesc = Desc("postgres_cpu_seconds_total",
		"User and system CPU time used by PostgreSQL's processes since the collector started watching them, read from /proc: a true counter, a backend that exits keeps the time it was last seen with. Absent when they are not visible.")
	pgProcsDesc = Desc("postgres_processes",
		"PostgreSQL processes whose memory was read from /proc (0 when the server is not visible to the collector).")
)

// Name implements Measurement.
func (*Memory) Name() string { return "memory" }

// Describe implements Measurement.
func (*Memory) Describe(ch chan<- *prometheus.Desc) {
	ch <- pgMemoryDesc
	ch <- pgCPUDesc
	ch <- pgProcsDesc
}

// Measure implements Measurement.
func (m *Memory) Measure(ctx context.Context, ch chan<- prometheus.Metric) error {
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
		m.mu.Lock()
		total := m.cpu.observe(cpu)
		m.mu.Unlock()
		gauge(ch, pgMemoryDesc, float64(pss))
		counter(ch, pgCPUDesc, total)
	}
	return nil
}

// process identifies one process across measurements: a pid can be reused, its start
// time (in clock ticks since boot) cannot be, for the same pid.
type process struct {
	pid   int
	start uint64
}

// cpuCounter turns the CPU times of the processes alive at each measurement into a counter
// that never goes down: it adds what each process used since it was last seen, and a
// process seen for the first time adds all its time. A process that exits between two
// measurements loses only what it used since the last one; the sum of live processes'
// times would instead fall by everything the process ever used.
type cpuCounter struct {
	last  map[process]float64
	total float64
}

func (c *cpuCounter) observe(now map[process]float64) float64 {
	for p, t := range now {
		if prev, ok := c.last[p]; ok && t >= prev {
			c.total += t - prev
		} else if !ok {
			c.total += t
		}
	}
	c.last = now
	return c.total
}

// pss sums the PSS of the postgres processes among pids and their parent (the
// postmaster), skipping any it cannot read, and returns each one's CPU time.
func (m *Memory) pss(pids []int) (uint64, map[process]float64, int) {
	mount := m.Proc
	if mount == "" {
		mount = procfs.DefaultMountPoint
	}
	fs, err := procfs.NewFS(mount)
	if err != nil {
		return 0, nil, 0
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
	cpu := map[process]float64{}
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
		cpu[process{pid, st.Starttime}] = st.CPUTime()
		n++
	}
	return sum, cpu, n
}
