package dashboards

import (
	"github.com/grafana/grafana-foundation-sdk/go/common"
)

// Resources is CPU and memory per replica, PostgreSQL and the host, each with the report's
// limit for that service only.
func Resources(s SLA) *Builder {
	d := newDashboard("ecomstream-resources", "ecomstream / Resources",
		"The report's CPU and memory rows and its Memory Profiling section: per replica, PostgreSQL and the host.")
	d.WithRow(row("CPU"))
	d.WithPanel(series("Host CPU utilisation",
		"1 − idle share of all CPUs over $__rate_interval: node-exporter under compose, the collector's /proc/stat locally. Dashed: the report's CPU target ("+TargetText(s, "cpu", unitPercent)+"), which is the host's.",
		unitPercent, 12, 8, Steps(s, "cpu"),
		query(`(1 - avg(rate(node_cpu_seconds_total{mode="idle"}[$__rate_interval])))
or
(1 - sum(rate(ecomstream_collector_host_cpu_seconds_total{mode="idle"}[$__rate_interval])) / sum(rate(ecomstream_collector_host_cpu_seconds_total[$__rate_interval])))`, "host")).
		Min(0).Max(1))
	d.WithPanel(series("CPU per replica",
		"CPU time per second of each replica of the selected jobs (1 = 100 % of one core), from process_cpu_seconds_total; PostgreSQL from cAdvisor under compose or its processes' /proc time (collector) locally. The report sets no per-service CPU target.",
		unitPercent, 12, 8, nil,
		query(namedOrInstance(`sum by (job, instance) (rate(process_cpu_seconds_total{`+jobSel+`}[$__rate_interval]))`), "{{job}} {{replica}}"),
		query(`sum(rate(container_cpu_usage_seconds_total{container_label_com_docker_compose_service="postgres"}[$__rate_interval]))
or
sum(rate(ecomstream_collector_postgres_cpu_seconds_total[$__rate_interval]))`, "postgres")))

	d.WithRow(row("Memory"))
	d.WithPanel(series("Ingester memory per replica",
		"Resident memory (RSS) of each ingester replica (process_resident_memory_bytes). Dashed: the report's limit for it ("+TargetText(s, "ingester_memory", unitBytes)+", Spark's row).",
		unitBytes, 8, 8, Steps(s, "ingester_memory"),
		query(named(`max by (instance) (process_resident_memory_bytes{job="ingester", `+inst+`})`), "{{replica}}")))
	d.WithPanel(series("PostgreSQL memory",
		"PostgreSQL's container working set (cAdvisor) or the PSS of its processes (collector, local), and its shared_buffers setting (postgres_exporter). Dashed: the report's target ("+TargetText(s, "postgres_memory", unitBytes)+").",
		unitBytes, 8, 8, Steps(s, "postgres_memory"),
		query(`ecomstream:postgres_memory_bytes:max`, "used"),
		query(`max(pg_settings_shared_buffers_bytes)`, "shared_buffers")))
	d.WithPanel(series("Memory of the other replicas",
		"Resident memory of each replica of the other selected jobs (generator, collector, exporters). The report sets no target for them.",
		unitBytes, 8, 8, nil,
		query(namedOrInstance(`max by (job, instance) (process_resident_memory_bytes{`+jobSel+`, job!="ingester"})`), "{{job}} {{replica}}")))
	d.WithPanel(series("Host memory",
		"Memory of the machine in use (total − available) and total: node-exporter under compose, the collector's /proc/meminfo locally.",
		unitBytes, 12, 8, nil,
		query(`max(node_memory_MemTotal_bytes - node_memory_MemAvailable_bytes) or max(ecomstream_collector_host_memory_bytes{state="total"} - ignoring(state) ecomstream_collector_host_memory_bytes{state="available"})`, "used"),
		query(`max(node_memory_MemTotal_bytes) or max(ecomstream_collector_host_memory_bytes{state="total"})`, "total")))
	d.WithPanel(series("Ingester memory breakdown per replica",
		"The report's Spark driver memory breakdown, for each ingester replica's Go runtime: heap in use and all memory obtained from the OS (go_memstats_*).",
		unitBytes, 12, 8, nil,
		query(named(`max by (instance) (go_memstats_heap_inuse_bytes{job="ingester", `+inst+`})`), "heap in use {{replica}}"),
		query(named(`max by (instance) (go_memstats_sys_bytes{job="ingester", `+inst+`})`), "from OS {{replica}}")))

	d.WithRow(row("Go runtime"))
	d.WithPanel(series("Time in garbage collection",
		"The report's GC row: share of wall time each replica spends in GC pauses (rate of go_gc_duration_seconds_sum over $__rate_interval).",
		unitPercent, 12, 8, nil,
		query(namedOrInstance(`sum by (job, instance) (rate(go_gc_duration_seconds_sum{`+jobSel+`}[$__rate_interval]))`), "{{job}} {{replica}}")))
	d.WithPanel(series("Goroutines",
		"Goroutines per replica (go_goroutines): a leak shows as a steady climb.",
		unitShort, 12, 8, nil,
		query(namedOrInstance(`sum by (job, instance) (go_goroutines{`+jobSel+`})`), "{{job}} {{replica}}")).
		Stacking(common.NewStackingConfigBuilder().Mode(common.StackingModeNone)))
	return d
}
