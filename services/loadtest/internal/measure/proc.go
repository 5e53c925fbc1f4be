package measure

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ecomstream/ecomstream/services/loadtest/internal/report"
)

// clockTicks is USER_HZ, 100 on every Linux the pipeline runs on.
const clockTicks = 100

// ProcSampler samples CPU and memory of groups of processes from /proc. Memory is the
// proportional set size (PSS, from smaps_rollup) where readable, so PostgreSQL's shared
// buffers count once across its processes rather than once per backend; RSS otherwise.
type ProcSampler struct {
	// Groups returns each component's processes at the time of the sample.
	Groups func() map[string][]int
	Start  time.Time

	mu       sync.Mutex
	last     time.Time
	lastCPU  map[int]uint64
	lastHost [2]uint64 // busy, total jiffies
}

// Sample takes one sample; the first one has zero CPU (no interval yet).
func (s *ProcSampler) Sample(now time.Time) report.ResourceSample {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := report.ResourceSample{T: now.Sub(s.Start).Seconds(), CPU: map[string]float64{}, Mem: map[string]float64{}}
	dt := now.Sub(s.last).Seconds()
	cpu := map[int]uint64{}
	for name, pids := range s.Groups() {
		var c, m float64
		for _, pid := range pids {
			ticks, ok := procCPU(pid)
			if !ok {
				continue
			}
			cpu[pid] = ticks
			if prev, seen := s.lastCPU[pid]; seen && dt > 0 && ticks >= prev {
				c += float64(ticks-prev) / clockTicks / dt * 100
			} else if !seen && s.lastCPU != nil && dt > 0 {
				// A process born during the interval: all its CPU time is in it.
				c += float64(ticks) / clockTicks / dt * 100
			}
			m += procMem(pid)
		}
		out.CPU[name], out.Mem[name] = c, m
	}
	busy, total := hostCPU()
	if s.lastHost[1] > 0 && total > s.lastHost[1] {
		out.HostCPU = 100 * float64(busy-s.lastHost[0]) / float64(total-s.lastHost[1])
	}
	s.lastHost = [2]uint64{busy, total}
	s.lastCPU, s.last = cpu, now
	return out
}

// procCPU is utime+stime of a process in clock ticks.
func procCPU(pid int) (uint64, bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, false
	}
	// The command name may hold spaces and parentheses; fields start after the last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, false
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, false
	}
	u, _ := strconv.ParseUint(f[11], 10, 64)
	st, _ := strconv.ParseUint(f[12], 10, 64)
	return u + st, true
}

// procMem is the process's PSS, else RSS, in bytes.
func procMem(pid int) float64 {
	dir := "/proc/" + strconv.Itoa(pid)
	if f, err := os.Open(dir + "/smaps_rollup"); err == nil {
		defer f.Close()
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if line := sc.Text(); strings.HasPrefix(line, "Pss:") {
				kb, _ := strconv.ParseFloat(strings.Fields(line)[1], 64)
				return kb * 1024
			}
		}
	}
	b, err := os.ReadFile(dir + "/statm")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return 0
	}
	pages, _ := strconv.ParseFloat(f[1], 64)
	return pages * float64(os.Getpagesize())
}

// hostCPU reads the machine's busy and total jiffies from /proc/stat.
func hostCPU() (busy, total uint64) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	for i, v := range f[1:] {
		n, _ := strconv.ParseUint(v, 10, 64)
		total += n
		if i != 3 && i != 4 { // idle, iowait
			busy += n
		}
	}
	return busy, total
}

// Parent is the parent process of pid (0 when unknown).
func Parent(pid int) int {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 2 {
		return 0
	}
	n, _ := strconv.Atoi(f[1])
	return n
}

// Children lists the direct children of pid (PostgreSQL's backends of its postmaster).
func Children(pid int) []int {
	ents, _ := filepath.Glob("/proc/[0-9]*/stat")
	var out []int
	for _, e := range ents {
		b, err := os.ReadFile(e)
		if err != nil {
			continue
		}
		i := bytes.LastIndexByte(b, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(b[i+1:]))
		if len(f) > 1 && f[1] == strconv.Itoa(pid) {
			n, _ := strconv.Atoi(filepath.Base(filepath.Dir(e)))
			out = append(out, n)
		}
	}
	return out
}

// Host describes the machine.
func Host() report.Environment {
	e := report.Environment{CPUs: runtime.NumCPU(), GoVersion: runtime.Version()}
	e.Host, _ = os.Hostname()
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, "model name") {
				_, v, _ := strings.Cut(l, ":")
				e.CPUModel = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		f := strings.Fields(string(b))
		if len(f) > 1 {
			kb, _ := strconv.ParseFloat(f[1], 64)
			e.MemoryGB = kb / (1 << 20)
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		e.Kernel = "Linux " + strings.TrimSpace(string(b))
	}
	return e
}
