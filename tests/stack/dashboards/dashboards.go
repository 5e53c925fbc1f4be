package dashboards

import (
	"fmt"
	"strings"
)

// All returns every dashboard, keyed by its file name under grafana/dashboards/.
func All() map[string]Dashboard {
	return map[string]Dashboard{
		"pipeline-sla.json": PipelineSLA(),
		"resources.json":    Resources(),
		"database.json":     Database(),
	}
}

const (
	recPerSec = "suffix: rec/s"
	gib       = 1 << 30
)

// slaNames are the report's Key Metrics, in its order, as the sla label of the rules.
var slaNames = []struct{ sla, metric, target string }{
	{"latency_p50", "Latency (P50)", "< 30 s"},
	{"latency_p95", "Latency (P95)", "< 60 s"},
	{"latency_p99", "Latency (P99)", "< 90 s"},
	{"throughput", "Throughput", "> 10 rec/s"},
	{"batch_duration", "Batch latency", "< 5 s"},
	{"cpu", "CPU usage", "< 80 %"},
	{"ingester_memory", "Memory (ingester, was Spark)", "< 4 GiB"},
	{"postgres_memory", "Memory (PostgreSQL)", "< 2 GiB"},
	{"error_rate", "Error rate", "< 0.1 %"},
	{"duplicates", "Duplicates in DB", "= 0"},
}

// bandTable is the report's "Latency Distribution Analysis" table for one band set:
// rows, share and cumulative share per band, from the collector's SQL bands.
func bandTable(set string, bands []string, title, desc string) Panel {
	sel := fmt.Sprintf(`ecomstream_collector_latency_band_records{set=%q}`, set)
	total := fmt.Sprintf(`scalar(sum(%s))`, sel)
	var cum []string
	for i, b := range bands {
		cum = append(cum, fmt.Sprintf(`label_replace(100 * sum(ecomstream_collector_latency_band_records{set=%q,band=~%q}) / %s, "band", %q, "", "")`,
			set, strings.Join(bands[:i+1], "|"), total, b))
	}
	return Panel{
		Type: "table", Title: title, Unit: "short", Width: 12, Height: 9,
		Description: desc,
		Targets: []Target{
			{Expr: fmt.Sprintf(`sum by (band) (%s)`, sel), Instant: true, Format: "table"},
			{Expr: fmt.Sprintf(`100 * sum by (band) (%s) / %s`, sel, total), Instant: true, Format: "table"},
			{Expr: strings.Join(cum, "\nor\n"), Instant: true, Format: "table"},
		},
		Transform: joinTable("band", map[string]string{"band": "Latency range", "Value #A": "Count", "Value #B": "Percentage", "Value #C": "Cumulative"}),
		Overrides: []any{
			fieldOverride("Percentage", "unit", "percent", "decimals", 1),
			fieldOverride("Cumulative", "unit", "percent", "decimals", 1),
		},
	}
}

// PipelineSLA is the report's Key Metrics table live, with the Results and Latency
// Distribution tables of its test sections.
func PipelineSLA() Dashboard {
	statusMap := valueMap(0, "✓", "green", 1, "⚠", "yellow", 2, "✗", "red")
	var rename = map[string]string{"sla": "Metric", "Value #A": "Current", "Value #B": "Target", "Value #C": "Status"}
	ps := []Panel{
		{Type: "row", Title: "Key Metrics (the report's SLA table, live)", Description: "Targets come from deploy/prometheus/rules/sla-thresholds.rules.yml."},
		{
			Type: "table", Title: "Key Metrics: current value, target, status", Unit: "none", Width: 12, Height: 11,
			Description: "Each of the report's Key Metrics: its current value (ecomstream:sla_current:value), its target (ecomstream:sla_threshold:value, edited in sla-thresholds.rules.yml) and status: ✓ meets the target, ⚠ within 10 % of it, ✗ misses it (ecomstream:sla_status:value). Values are in base units: seconds, rec/s, ratios (0.8 = 80 %), bytes.",
			Targets: []Target{
				{Expr: `ecomstream:sla_current:value`, Instant: true, Format: "table"},
				{Expr: `max by (sla) (ecomstream:sla_threshold:value)`, Instant: true, Format: "table"},
				{Expr: `max by (sla) (ecomstream:sla_status:value)`, Instant: true, Format: "table"},
			},
			Transform: append(joinTable("sla", rename)[:1], map[string]any{"id": "organize", "options": map[string]any{
				"excludeByName": map[string]bool{"Time": true, "__name__": true}, "renameByName": rename}}),
			Overrides: []any{fieldOverride("Status", "mappings", statusMap, "custom.cellOptions", map[string]any{"type": "color-background"})},
		},
	}
	// One stat per Key Metric, in its unit, coloured by the report's target.
	type stat struct {
		title, desc, expr, unit string
		steps                   []Step
	}
	for _, s := range []stat{
		{"Latency P50", "P50 of commit time − file creation time over rows committed in the collector's window, computed in SQL from the ledger (the report's methodology). Target < 30 s.", `max(ecomstream_collector_end_to_end_latency_seconds{quantile="0.5"})`, "s", upper(27, 30)},
		{"Latency P95", "P95, as P50. Target < 60 s.", `max(ecomstream_collector_end_to_end_latency_seconds{quantile="0.95"})`, "s", upper(54, 60)},
		{"Latency P99", "P99, as P50. Target < 90 s.", `max(ecomstream_collector_end_to_end_latency_seconds{quantile="0.99"})`, "s", upper(81, 90)},
		{"Throughput", "Rows inserted per second by all ingesters over the last minute. Target > 10 rec/s.", `sum(rate(ecomstream_ingester_records_total{outcome="inserted"}[1m]))`, recPerSec, lower(10, 11)},
		{"Batch latency", "Mean time of one ingester transaction (BEGIN to COMMIT) over 5 m. Target < 5 s.", `max(job:ecomstream_ingester_batch_duration_seconds:mean_rate5m)`, "s", upper(4.5, 5)},
		{"CPU usage", "Host CPU utilisation (1 − idle) over 1 m: node-exporter, or the collector's /proc/stat in local mode. Target < 80 %.", `ecomstream:host_cpu_utilisation:ratio_rate1m`, "percentunit", upper(0.72, 0.8)},
		{"Ingester memory", "Largest resident memory of the ingester replicas (the report's Spark memory). Target < 4 GiB.", `max(process_resident_memory_bytes{job="ingester"})`, "bytes", upper(3.6*gib, 4*gib)},
		{"PostgreSQL memory", "PostgreSQL's container working set (cAdvisor) or the PSS of its processes (collector, local mode). Target < 2 GiB.", `ecomstream:postgres_memory_bytes:max`, "bytes", upper(1.8*gib, 2*gib)},
		{"Error rate", "Rejected rows / all rows of files committed in the collector's window. Target < 0.1 %.", `max(ecomstream_collector_error_ratio)`, "percentunit", upper(0.0009, 0.001)},
		{"Duplicates in DB", "event_ids stored more than once (count(*) − count(DISTINCT event_id) over the window's events). Target = 0.", `max(ecomstream_collector_duplicate_event_ids)`, "none", []Step{{"green", 0}, {"red", 1}}},
	} {
		ps = append(ps, Panel{Type: "stat", Title: s.title, Description: s.desc, Unit: s.unit, Width: 4, Height: 4,
			Targets: []Target{{Expr: s.expr}}, Thresholds: s.steps})
	}
	ps = append(ps,
		Panel{Type: "row", Title: "Results (the report's per-test Results table)", Description: "Totals since the pipeline started."},
		Panel{Type: "stat", Title: "Total records generated", Unit: "short", Width: 6, Height: 4,
			Description: "Rows written by all generator replicas (ecomstream_generator_records_total, all kinds), since they started.",
			Targets:     []Target{{Expr: `sum(ecomstream_generator_records_total)`}}},
		Panel{Type: "stat", Title: "Total records inserted", Unit: "short", Width: 6, Height: 4,
			Description: "Rows inserted into events according to the ledger (sum of records_inserted of ingested_files).",
			Targets:     []Target{{Expr: `max(ecomstream_collector_ledger_records{outcome="inserted"})`}}},
		Panel{Type: "stat", Title: "Skipped/failed records", Unit: "short", Width: 6, Height: 4,
			Description: "Rows rejected by validation plus duplicates skipped, according to the ledger.",
			Targets:     []Target{{Expr: `sum(max by (outcome) (ecomstream_collector_ledger_records{outcome=~"rejected|duplicate"}))`}}},
		Panel{Type: "stat", Title: "Files committed", Unit: "short", Width: 6, Height: 4,
			Description: "Rows of the ingested_files ledger (files whose outcome is committed), ingested and failed.",
			Targets:     []Target{{Expr: `sum(max by (outcome) (ecomstream_collector_ledger_files))`}}},

		Panel{Type: "row", Title: "Throughput and latency", Description: "Live."},
		Panel{Type: "timeseries", Title: "Throughput: generated vs committed", Unit: recPerSec, Thresholds: lower(10, 11),
			Description: "Rows per second written by the generators (by kind) and committed by the ingesters (by outcome), rate over 1 m; and the collector's DB-side count of rows inserted in its window / window. The red zone is below the report's 10 rec/s target.",
			Targets: []Target{
				{Expr: `sum by (kind) (job:ecomstream_generator_records:rate1m)`, Legend: "generated {{kind}}"},
				{Expr: `sum by (outcome) (job:ecomstream_ingester_records:rate1m)`, Legend: "committed {{outcome}}"},
				{Expr: `max(ecomstream_collector_window_records{outcome="inserted"}) / max(ecomstream_collector_window_seconds)`, Legend: "inserted (DB, window)"},
			}},
		Panel{Type: "timeseries", Title: "End-to-end latency P50 / P95 / P99", Unit: "s", Thresholds: upper(30, 60),
			Description: "Solid: percentiles computed in SQL by the collector over its window (commit time − file creation time, per row). Also the ingester histogram's quantiles over 5 m. Threshold lines: the report's P50 30 s and P95 60 s targets.",
			Targets: []Target{
				{Expr: `max by (quantile) (ecomstream_collector_end_to_end_latency_seconds{quantile=~"0.5|0.95|0.99"})`, Legend: "q{{quantile}} (DB)"},
				{Expr: `max by (quantile) (job_quantile:ecomstream_ingester_end_to_end_latency_seconds:histogram_quantile_rate5m)`, Legend: "q{{quantile}} (histogram)"},
			}},
		bandTable("report", []string{"0-10s", "10-20s", "20-30s", "30-40s", "40-60s", "60s+"}, "Latency distribution (the report's bands)",
			"Rows committed in the collector's window per latency band, share and cumulative share — the report's Latency Distribution table, computed in SQL from the ledger."),
		bandTable("fine", []string{"0-0.1s", "0.1-0.25s", "0.25-0.5s", "0.5-1s", "1-10s", "10s+"}, "Latency distribution (sub-second bands)",
			"As the report's table, with the sub-second bands where a continuous ingester's latencies lie."),
		Panel{Type: "heatmap", Title: "Latency heatmap", Unit: "s", Width: 24,
			Description: "Rows committed per latency bucket per minute, from the ingester's ecomstream_ingester_end_to_end_latency_seconds histogram (buckets from 1 ms to 120 s).",
			Targets:     []Target{{Expr: `sum by (le) (increase(ecomstream_ingester_end_to_end_latency_seconds_bucket[1m]))`, Legend: "{{le}}", Format: "heatmap"}},
			Options:     map[string]any{"calculate": false, "yAxis": map[string]any{"unit": "s"}, "cellGap": 1, "color": map[string]any{"scheme": "Oranges", "mode": "scheme"}}},
		Panel{Type: "timeseries", Title: "Batch duration", Unit: "s", Thresholds: upper(4.5, 5),
			Description: "Time of one ingester transaction (COPY events + ledger rows, BEGIN to COMMIT): mean and P95 over 5 m. Red above the report's 5 s batch target.",
			Targets: []Target{
				{Expr: `max(job:ecomstream_ingester_batch_duration_seconds:mean_rate5m)`, Legend: "mean"},
				{Expr: `max(job_quantile:ecomstream_ingester_batch_duration_seconds:histogram_quantile_rate5m)`, Legend: "P95"},
			}},
		Panel{Type: "timeseries", Title: "Error and duplicate rates", Unit: "percentunit", Thresholds: upper(0.0009, 0.001),
			Description: "Share of rows rejected: DB-side over the collector's window, and from the ingesters over 5 m; share of rows skipped as duplicates (already stored event_id). Red above the report's 0.1 % error target.",
			Targets: []Target{
				{Expr: `max(ecomstream_collector_error_ratio)`, Legend: "rejected (DB, window)"},
				{Expr: `sum(job:ecomstream_ingester_records_rejected:ratio_rate5m)`, Legend: "rejected (ingesters)"},
				{Expr: `sum(job:ecomstream_ingester_records_duplicate:ratio_rate5m)`, Legend: "duplicates skipped (ingesters)"},
			}},
		Panel{Type: "timeseries", Title: "Duplicates: stored and skipped", Unit: "short", Thresholds: []Step{{"green", 0}, {"red", 1}},
			Description: "Stored: event_ids in events more than once among the window's events (must be 0; the primary key guarantees it). Skipped: rows of the window's files whose event_id was already stored (ledger records_duplicate).",
			Targets: []Target{
				{Expr: `max(ecomstream_collector_duplicate_event_ids)`, Legend: "stored more than once"},
				{Expr: `max(ecomstream_collector_duplicates_skipped_records)`, Legend: "skipped (window)"},
			}},
		Panel{Type: "timeseries", Title: "Rejected rows by reason", Unit: "short",
			Description: "Rows written to rejected_records in the collector's window, by stable reason code (line 0 = whole file).",
			Targets:     []Target{{Expr: `max by (reason) (ecomstream_collector_rejected_window_records)`, Legend: "{{reason}}"}}},
		Panel{Type: "row", Title: "Backlog on the volume", Description: "Files waiting in the incoming directory."},
		Panel{Type: "timeseries", Title: "Pending files", Unit: "short", Width: 8,
			Description: "*.csv files (not dotfiles) in the incoming directory: counted by the collector and by each ingester.",
			Targets: []Target{
				{Expr: `max(ecomstream_collector_backlog_files)`, Legend: "collector"},
				{Expr: `max(ecomstream_ingester_backlog_files)`, Legend: "ingester"},
			}},
		Panel{Type: "timeseries", Title: "Pending bytes", Unit: "bytes", Width: 8,
			Description: "Bytes of the pending files, counted by the collector.",
			Targets:     []Target{{Expr: `max(ecomstream_collector_backlog_bytes)`, Legend: "pending"}}},
		Panel{Type: "stat", Title: "Oldest pending file", Unit: "s", Width: 8, Thresholds: upper(30, 90),
			Description: "Age (now − modification time) of the oldest pending file: the latency it will have at least. Red beyond the P99 target (90 s).",
			Targets:     []Target{{Expr: `max(ecomstream_collector_backlog_oldest_age_seconds)`}}},
	)
	return Dashboard{UID: "ecomstream-pipeline-sla", Title: "ecomstream / Pipeline SLA", Panels: ps,
		Description: "The performance report's Key Metrics, Results and Latency Distribution tables, live."}
}

// Resources is CPU and memory per service and for the host, with the report's limits.
func Resources() Dashboard {
	svc := `job=~"generator|ingester|collector"`
	return Dashboard{UID: "ecomstream-resources", Title: "ecomstream / Resources",
		Description: "The report's CPU and memory rows and its Memory Profiling section: per service, PostgreSQL and the host.",
		Panels: []Panel{
			{Type: "timeseries", Title: "Host CPU utilisation", Unit: "percentunit", Thresholds: upper(0.72, 0.8), Max: ptr(1), Min: ptr(0),
				Description: "1 − idle share of all CPUs over 1 m (node-exporter under compose, the collector's /proc/stat locally). Red above the report's 80 % CPU target.",
				Targets:     []Target{{Expr: `ecomstream:host_cpu_utilisation:ratio_rate1m`, Legend: "host"}}},
			{Type: "timeseries", Title: "CPU per service", Unit: "percentunit", Thresholds: upper(0.72, 0.8),
				Description: "CPU time per second of each service (1 = one core fully used), summed over replicas, from process_cpu_seconds_total; PostgreSQL from cAdvisor under compose or its processes' /proc time (collector) locally.",
				Targets: []Target{
					{Expr: `job:process_cpu_seconds:rate1m{` + svc + `}`, Legend: "{{job}}"},
					{Expr: `sum(rate(container_cpu_usage_seconds_total{container_label_com_docker_compose_service="postgres"}[1m])) or sum(rate(ecomstream_collector_postgres_cpu_seconds_total[1m]))`, Legend: "postgres"},
				}},
			{Type: "timeseries", Title: "Memory per service", Unit: "bytes", Thresholds: upper(3.6*gib, 4*gib),
				Description: "Largest resident memory (RSS) of each service's replicas, from process_resident_memory_bytes. Red above the report's 4 GiB limit for the ingester (Spark's row).",
				Targets:     []Target{{Expr: `job:process_resident_memory_bytes:max{` + svc + `}`, Legend: "{{job}}"}}},
			{Type: "timeseries", Title: "PostgreSQL memory", Unit: "bytes", Thresholds: upper(1.8*gib, 2*gib),
				Description: "PostgreSQL's memory: its container's working set (cAdvisor) or the PSS of its processes (collector, local), with its shared_buffers and work_mem settings. Red above the report's 2 GiB target.",
				Targets: []Target{
					{Expr: `ecomstream:postgres_memory_bytes:max`, Legend: "used"},
					{Expr: `max(pg_settings_shared_buffers_bytes)`, Legend: "{{setting}}"},
				}},
			{Type: "timeseries", Title: "Host memory", Unit: "bytes",
				Description: "Memory of the machine in use (total − available) and total: node-exporter under compose, the collector's /proc/meminfo locally.",
				Targets: []Target{
					{Expr: `max(node_memory_MemTotal_bytes - node_memory_MemAvailable_bytes) or max(ecomstream_collector_host_memory_bytes{state="total"} - ignoring(state) ecomstream_collector_host_memory_bytes{state="available"})`, Legend: "used"},
					{Expr: `max(node_memory_MemTotal_bytes) or max(ecomstream_collector_host_memory_bytes{state="total"})`, Legend: "total"},
				}},
			{Type: "timeseries", Title: "Ingester memory breakdown", Unit: "bytes",
				Description: "The report's Spark driver memory breakdown, for the ingester's Go runtime: heap in use, stacks, and all memory obtained from the OS (go_memstats_*), largest replica.",
				Targets: []Target{
					{Expr: `max(go_memstats_heap_inuse_bytes{job="ingester"})`, Legend: "heap in use"},
					{Expr: `max(go_memstats_stack_inuse_bytes{job="ingester"})`, Legend: "stacks"},
					{Expr: `max(go_memstats_sys_bytes{job="ingester"})`, Legend: "from OS"},
				}},
			{Type: "timeseries", Title: "Garbage collection", Unit: "s",
				Description: "The report's GC row: time spent in GC pauses per second by service (go_gc_duration_seconds sum, rate over 1 m).",
				Targets:     []Target{{Expr: `sum by (job) (rate(go_gc_duration_seconds_sum{` + svc + `}[1m]))`, Legend: "{{job}}"}}},
			{Type: "timeseries", Title: "Goroutines", Unit: "short",
				Description: "Goroutines per service (go_goroutines), summed over replicas: a leak shows as a steady climb.",
				Targets:     []Target{{Expr: `sum by (job) (go_goroutines{` + svc + `})`, Legend: "{{job}}"}}},
		}}
}

// Database is the report's Database Performance Analysis and Network & I/O sections.
func Database() Dashboard {
	idx := `{table="events"}`
	return Dashboard{UID: "ecomstream-database", Title: "ecomstream / Database",
		Description: "The report's Query Performance, Index Effectiveness, Insert Performance, cache and PostgreSQL memory figures, measured live by the collector.",
		Panels: []Panel{
			{Type: "table", Title: "Query performance (the report's five queries)", Unit: "s", Width: 12, Height: 8, Thresholds: upper(0.1, 1),
				Description: "Wall time of the last run of each of the report's queries (count, lookup by user_id and product_id, one minute of event_time, GROUP BY event_type), rows fetched, run by the collector every COLLECTOR_QUERY_INTERVAL under a statement timeout; and rows returned.",
				Targets: []Target{
					{Expr: `max by (query) (ecomstream_collector_query_duration_seconds)`, Instant: true, Format: "table"},
					{Expr: `max by (query) (ecomstream_collector_query_rows)`, Instant: true, Format: "table"},
				},
				Transform: joinTable("query", map[string]string{"query": "Query", "Value #A": "Time", "Value #B": "Rows"}),
				Overrides: []any{fieldOverride("Rows", "unit", "short"), fieldOverride("Time", "custom.cellOptions", map[string]any{"type": "color-text"})}},
			{Type: "timeseries", Title: "Query time over time", Unit: "s", Width: 12, Height: 8,
				Description: "The same five query times as a history, to see them grow with the table.",
				Targets:     []Target{{Expr: `max by (query) (ecomstream_collector_query_duration_seconds)`, Legend: "{{query}}"}}},
			{Type: "table", Title: "Index effectiveness", Unit: "bytes", Width: 12, Height: 8,
				Description: "Per index of events: size (pg_relation_size), usage count (idx_scan since statistics reset) and hit rate (share of its block requests served from shared buffers) — the report's Index Effectiveness table, from pg_stat_user_indexes and pg_statio_user_indexes.",
				Targets: []Target{
					{Expr: `max by (index) (ecomstream_collector_index_size_bytes` + idx + `)`, Instant: true, Format: "table"},
					{Expr: `max by (index) (ecomstream_collector_index_scans_total` + idx + `)`, Instant: true, Format: "table"},
					{Expr: `max by (index) (ecomstream_collector_index_cache_hit_ratio` + idx + `)`, Instant: true, Format: "table"},
				},
				Transform: joinTable("index", map[string]string{"index": "Index", "Value #A": "Size", "Value #B": "Usage count", "Value #C": "Hit rate"}),
				Overrides: []any{fieldOverride("Usage count", "unit", "short"), fieldOverride("Hit rate", "unit", "percentunit")}},
			{Type: "timeseries", Title: "Index scans per second", Unit: "ops", Width: 12, Height: 8,
				Description: "Scans started on each index per second (rate of pg_stat_user_indexes.idx_scan over 5 m).",
				Targets:     []Target{{Expr: `sum by (index) (rate(ecomstream_collector_index_scans_total` + idx + `[5m]))`, Legend: "{{index}}"}}},
			{Type: "stat", Title: "Cache hit ratio", Unit: "percentunit", Width: 6, Height: 6, Thresholds: []Step{{"red", 0}, {"yellow", 0.9}, {"green", 0.98}},
				Description: "Share of the database's block requests served from shared buffers since statistics were reset (pg_stat_database blks_hit / (blks_hit + blks_read)). The report measured 98.5 %.",
				Targets:     []Target{{Expr: `sum(pg_stat_database_blks_hit) / (sum(pg_stat_database_blks_hit) + sum(pg_stat_database_blks_read))`}}},
			{Type: "stat", Title: "Database size", Unit: "bytes", Width: 6, Height: 6,
				Description: "Size of the database on disk (pg_database_size).",
				Targets:     []Target{{Expr: `max(pg_database_size_bytes)`}}},
			{Type: "timeseries", Title: "Table and index sizes", Unit: "bytes", Width: 12, Height: 6,
				Description: "Each table without its indexes (pg_table_size) and its indexes together (pg_indexes_size): the report's index overhead.",
				Targets: []Target{
					{Expr: `max by (table) (ecomstream_collector_table_size_bytes)`, Legend: "{{table}}"},
					{Expr: `max by (table) (ecomstream_collector_table_indexes_size_bytes)`, Legend: "{{table}} indexes"},
				}},
			{Type: "timeseries", Title: "Insert rate", Unit: recPerSec,
				Description: "Rows inserted per second into each table (rate over 1 m of pg_stat_user_tables.n_tup_ins), as PostgreSQL counts them.",
				Targets:     []Target{{Expr: `sum by (table) (rate(ecomstream_collector_table_inserted_rows_total[1m]))`, Legend: "{{table}}"}}},
			{Type: "timeseries", Title: "Insert performance: batch time and size", Unit: "s",
				Description: "The report's Insert Performance: mean time of one ingester transaction (5 m) and rows per committed transaction (right axis, ecomstream_ingester_batch_records).",
				Targets: []Target{
					{Expr: `max(job:ecomstream_ingester_batch_duration_seconds:mean_rate5m)`, Legend: "mean batch time"},
					{Expr: `sum(rate(ecomstream_ingester_batch_records_sum[5m])) / sum(rate(ecomstream_ingester_batch_records_count[5m]))`, Legend: "rows per batch"},
				},
				Overrides: []any{fieldOverride("rows per batch", "unit", "short", "custom.axisPlacement", "right")}},
			{Type: "timeseries", Title: "Rows (estimate) and ledger files", Unit: "short",
				Description: "Live rows per table as PostgreSQL estimates them (n_live_tup), and ledger rows by outcome.",
				Targets: []Target{
					{Expr: `max by (table) (ecomstream_collector_table_rows_estimate)`, Legend: "{{table}} rows"},
					{Expr: `max by (outcome) (ecomstream_collector_ledger_files)`, Legend: "ledger {{outcome}}"},
				}},
			{Type: "timeseries", Title: "Connection pool (network)", Unit: "short",
				Description: "The report's Network section (pool size, reuse): the ingesters' pgxpool connections by state, summed over replicas.",
				Targets:     []Target{{Expr: `sum by (state) (ecomstream_ingester_db_connections)`, Legend: "{{state}}"}}},
			{Type: "timeseries", Title: "CSV file reads (I/O)", Unit: "bytes",
				Description: "The report's Disk I/O section: mean size of a committed file (bytes / files over 5 m) and bytes committed per second.",
				Targets: []Target{
					{Expr: `sum(rate(ecomstream_ingester_bytes_total[5m])) / sum(rate(ecomstream_ingester_files_total{outcome="ingested"}[5m]))`, Legend: "mean file size"},
					{Expr: `sum(rate(ecomstream_ingester_bytes_total[1m]))`, Legend: "bytes/s"},
				}},
			{Type: "timeseries", Title: "Collector measurements", Unit: "s",
				Description: "How long each collector measurement took (ecomstream_collector_scrape_duration_seconds); a failing one also fires EcomstreamCollectorMeasurementFailing.",
				Targets:     []Target{{Expr: `max by (collector) (ecomstream_collector_scrape_duration_seconds)`, Legend: "{{collector}}"}}},
			{Type: "stat", Title: "Collector measurements failing", Unit: "short", Thresholds: []Step{{"green", 0}, {"red", 1}},
				Description: "Measurements whose last run failed (ecomstream_collector_scrape_success == 0); 0 when all succeed.",
				Targets:     []Target{{Expr: `count(ecomstream_collector_scrape_success == 0) or vector(0)`}}},
		}}
}
