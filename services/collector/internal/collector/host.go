package collector

import (
	"context"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/procfs"
)

// Host is the machine's CPU time and memory from /proc, the report's "CPU Usage: System
// CPU utilization", so the SLA has a source when no node exporter runs (local mode, the
// stack test). /proc/stat and /proc/meminfo are not namespaced, so in a container this is
// still the host. Under compose node-exporter gives the same and the rules prefer it.
type Host struct {
	Proc string // /proc mount; "/proc" when empty
}

var (
	hostCPUDesc  = Desc("host_cpu_seconds_total", "CPU time of the whole machine summed over its CPUs, by mode (/proc/stat).", "mode")
	hostCPUsDesc = Desc("host_cpus", "CPUs of the machine (/proc/stat).")
	hostMemDesc  = Desc("host_memory_bytes", "Memory of the machine, by state: total, available (/proc/meminfo).", "state")
)

// Name implements Measurement.
func (*Host) Name() string { return "host" }

func (*Host) offDatabase() {}

// Describe implements Measurement.
func (*Host) Describe(ch chan<- *prometheus.Desc) {
	ch <- hostCPUDesc
	ch <- hostCPUsDesc
	ch <- hostMemDesc
}

// Measure implements Measurement.
func (h *Host) Measure(_ context.Context, ch chan<- prometheus.Metric) error {
	mount := h.Proc
	if mount == "" {
		mount = procfs.DefaultMountPoint
	}
	fs, err := procfs.NewFS(mount)
	if err != nil {
		return fmt.Errorf("host: %w", err)
	}
	st, err := fs.Stat()
	if err != nil {
		return fmt.Errorf("host cpu: %w", err)
	}
	c := st.CPUTotal
	for _, m := range []struct {
		mode string
		v    float64
	}{
		{"user", c.User}, {"nice", c.Nice}, {"system", c.System}, {"idle", c.Idle},
		{"iowait", c.Iowait}, {"irq", c.IRQ}, {"softirq", c.SoftIRQ}, {"steal", c.Steal},
	} {
		counter(ch, hostCPUDesc, m.v, m.mode)
	}
	gauge(ch, hostCPUsDesc, float64(len(st.CPU)))
	mi, err := fs.Meminfo()
	if err != nil {
		return fmt.Errorf("host memory: %w", err)
	}
	if mi.MemTotalBytes != nil {
		gauge(ch, hostMemDesc, float64(*mi.MemTotalBytes), "total")
	}
	if mi.MemAvailableBytes != nil {
		gauge(ch, hostMemDesc, float64(*mi.MemAvailableBytes), "available")
	}
	return nil
}
