package dashboards

import (
	"fmt"
	"strings"

	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/stat"
	"github.com/grafana/grafana-foundation-sdk/go/table"
)

// KeyMetric is one row of the report's Key Metrics table, by its sla label in the rules.
type KeyMetric struct {
	SLA, Title, Unit, Description string
}

// KeyMetrics are the report's Key Metrics, in its order.
var KeyMetrics = []KeyMetric{
	{"latency_p50", "Latency P50", unitSeconds, "P50 of commit time − file creation time over the rows committed in the collector's window, computed in SQL from the ledger (the report's methodology)."},
	{"latency_p95", "Latency P95", unitSeconds, "P95, as P50."},
	{"latency_p99", "Latency P99", unitSeconds, "P99, as P50."},
	{"throughput", "Throughput", unitRowsPerSecond, "Rows inserted per second by all ingesters (rate over 1 m)."},
	{"batch_duration", "Batch latency", unitSeconds, "Mean time of one ingester transaction (BEGIN to COMMIT) over 5 m, all replicas."},
	{"cpu", "CPU usage (host)", unitPercent, "Host CPU utilisation (1 − idle) over 1 m: node-exporter, or the collector's /proc/stat in local mode."},
	{"ingester_memory", "Ingester memory", unitBytes, "Largest resident memory of the ingester replicas (the report's Spark memory)."},
	{"postgres_memory", "PostgreSQL memory", unitBytes, "PostgreSQL's container working set (cAdvisor) or the PSS of its processes (collector, local mode)."},
	{"error_rate", "Error rate", unitPercent, "Rejected rows / all rows of the files committed in the collector's window."},
	{"duplicates", "Duplicates in DB", unitNone, "event_ids stored more than once among the window's events; the primary key keeps it 0."},
}

// keyMetricStat shows one Key Metric's current value (the same series the alerts read)
// with its target in the title and coloured by it.
func keyMetricStat(s SLA, k KeyMetric) *stat.PanelBuilder {
	target := TargetText(s, k.SLA, k.Unit)
	return single(k.Title+" · target "+target,
		k.Description+" Target "+target+" (sla-thresholds.rules.yml). Green meets it, yellow within the warning margin, red misses it.",
		k.Unit, 4, 4, Steps(s, k.SLA),
		query(fmt.Sprintf(`ecomstream:sla_current:value{sla=%q}`, k.SLA), k.Title))
}

// bandTable is the report's "Latency Distribution Analysis" table for one band set:
// rows, share and cumulative share per band, from the collector's SQL bands.
func bandTable(set string, bands []string, title, desc string) *table.PanelBuilder {
	sel := fmt.Sprintf(`ecomstream_collector_latency_band_records{set=%q}`, set)
	total := fmt.Sprintf(`scalar(sum(%s))`, sel)
	var cum []string
	for i, b := range bands {
		cum = append(cum, fmt.Sprintf(`label_replace(100 * sum(ecomstream_collector_latency_band_records{set=%q,band=~%q}) / %s, "band", %q, "", "")`,
			set, strings.Join(bands[:i+1], "|"), total, b))
	}
	return grid(title, desc, unitShort, 12, 9, "band",
		map[string]string{"band": "Latency range", "Value #A": "Rows", "Value #B": "Percentage", "Value #C": "Cumulative"},
		tableQuery(fmt.Sprintf(`sum by (band) (%s)`, sel)),
		tableQuery(fmt.Sprintf(`100 * sum by (band) (%s) / %s`, sel, total)),
		tableQuery(strings.Join(cum, "\nor\n"))).
		OverrideByName("Percentage", []dashboard.DynamicConfigValue{{Id: "unit", Value: "percent"}, {Id: "decimals", Value: 1}}).
		OverrideByName("Cumulative", []dashboard.DynamicConfigValue{{Id: "unit", Value: "percent"}, {Id: "decimals", Value: 1}})
}

// PipelineSLA is the report's Key Metrics with their targets on the first screen, then
// throughput and latency over time, per replica; below, the Results and Latency
// Distribution tables and the backlog.
func PipelineSLA(s SLA) *Builder {
	d := newDashboard("ecomstream-pipeline-sla", "ecomstream / Pipeline SLA",
		"The performance report's Key Metrics (with their targets), Results and Latency Distribution tables, live, per replica.")
	d.WithRow(row("Key Metrics: the report's SLA table, live (targets from sla-thresholds.rules.yml)"))
	for _, k := range KeyMetrics {
		d.WithPanel(keyMetricStat(s, k))
	}
	d.WithPanel(single("Key Metrics missing their target", "Key Metrics whose status is ✗ (ecomstream:sla_status:value = 2); each also fires its alert.",
		unitNone, 4, 4, []dashboard.Threshold{{Color: "green"}, {Color: "red", Value: ptr(1.0)}},
		query(`count(ecomstream:sla_status:value == 2) or vector(0)`, "missed")))
	d.WithPanel(single("Key Metrics approaching their target", "Key Metrics within the warning margin of their target (ecomstream:sla_status:value = 1).",
		unitNone, 4, 4, []dashboard.Threshold{{Color: "green"}, {Color: "#EAB839", Value: ptr(1.0)}},
		query(`count(ecomstream:sla_status:value == 1) or vector(0)`, "approaching")))

	d.WithRow(row("Throughput and latency, per replica"))
	d.WithPanel(series("Throughput: generated vs inserted",
		"Rows per second written by each generator replica and inserted by each ingester replica (rate over $__rate_interval), all ingesters together, and the collector's DB-side count of rows inserted in its window / window. The dashed lines are the report's target ("+TargetText(s, "throughput", unitRowsPerSecond)+") for all ingesters together.",
		unitRowsPerSecond, 12, 9, Steps(s, "throughput"),
		query(`sum(rate(ecomstream_ingester_records_total{outcome="inserted", `+inst+`}[$__rate_interval]))`, "inserted, selected ingesters"),
		query(named(`sum by (instance) (rate(ecomstream_ingester_records_total{outcome="inserted", `+inst+`}[$__rate_interval]))`), "inserted {{replica}}"),
		query(named(`sum by (instance) (rate(ecomstream_generator_records_total{`+inst+`}[$__rate_interval]))`), "generated {{replica}}"),
		query(`max(ecomstream_collector_window_records{outcome="inserted"}) / max(ecomstream_collector_window_seconds)`, "inserted (DB, window)")).
		AxisLabel("rows/s"))
	d.WithPanel(series("End-to-end latency",
		"P50 / P95 / P99 computed in SQL by the collector over its window (commit time − file creation time, per row), and each ingester replica's P95 from its histogram (rate over $__rate_interval). Dashed lines: the P95 target ("+TargetText(s, "latency_p95", unitSeconds)+") and its warning margin.",
		unitSeconds, 12, 9, Steps(s, "latency_p95"),
		query(`max by (quantile) (ecomstream_collector_end_to_end_latency_seconds{quantile=~"0.5|0.95|0.99"})`, "DB q{{quantile}}"),
		query(named(`histogram_quantile(0.95, sum by (instance, le) (rate(ecomstream_ingester_end_to_end_latency_seconds_bucket{`+inst+`}[$__rate_interval])))`), "p95 {{replica}}")))

	d.WithRow(row("Results (the report's per-test Results table)"))
	d.WithPanel(single("Records generated in the time range", "Rows written by the selected generator replicas during the dashboard's time range (increase of ecomstream_generator_records_total, all kinds; restarts do not lower it).",
		unitShort, 6, 4, nil, query(`sum(increase(ecomstream_generator_records_total{`+inst+`}[$__range]))`, "generated")))
	d.WithPanel(single("Records inserted (ledger)", "Rows inserted into events according to the ledger (sum of records_inserted of ingested_files), since the pipeline started.",
		unitShort, 6, 4, nil, query(`max(ecomstream_collector_ledger_records{outcome="inserted"})`, "inserted")))
	d.WithPanel(single("Skipped or failed records (ledger)", "Rows rejected by validation plus duplicates skipped, according to the ledger.",
		unitShort, 6, 4, nil, query(`sum(max by (outcome) (ecomstream_collector_ledger_records{outcome=~"rejected|duplicate"}))`, "skipped")))
	d.WithPanel(single("Files committed (ledger)", "Rows of the ingested_files ledger (files whose outcome is committed), ingested and failed.",
		unitShort, 6, 4, nil, query(`sum(max by (outcome) (ecomstream_collector_ledger_files))`, "files")))

	d.WithRow(row("Latency distribution, batches, errors"))
	d.WithPanel(bandTable("report", []string{"0-10s", "10-20s", "20-30s", "30-40s", "40-60s", "60s+"}, "Latency distribution (the report's bands)",
		"Rows committed in the collector's window per latency band, share and cumulative share: the report's Latency Distribution table, computed in SQL from the ledger."))
	d.WithPanel(bandTable("fine", []string{"0-0.1s", "0.1-0.25s", "0.25-0.5s", "0.5-1s", "1-10s", "10s+"}, "Latency distribution (sub-second bands)",
		"As the report's table, with the sub-second bands where a continuous ingester's latencies lie."))
	d.WithPanel(heat("Latency heatmap",
		"Rows committed per latency bucket per interval by the selected ingesters, from the ecomstream_ingester_end_to_end_latency_seconds histogram (buckets from 1 ms to 120 s).",
		`sum by (le) (increase(ecomstream_ingester_end_to_end_latency_seconds_bucket{`+inst+`}[$__rate_interval]))`))
	d.WithPanel(series("Batch duration per replica",
		"Mean time of one ingester transaction (COPY events + ledger rows, BEGIN to COMMIT) per replica over $__rate_interval. Dashed: the report's batch target ("+TargetText(s, "batch_duration", unitSeconds)+").",
		unitSeconds, 12, 8, Steps(s, "batch_duration"),
		query(named(`sum by (instance) (rate(ecomstream_ingester_batch_duration_seconds_sum{`+inst+`}[$__rate_interval])) / sum by (instance) (rate(ecomstream_ingester_batch_duration_seconds_count{`+inst+`}[$__rate_interval]))`), "mean {{replica}}"),
		query(named(`histogram_quantile(0.95, sum by (instance, le) (rate(ecomstream_ingester_batch_duration_seconds_bucket{`+inst+`}[$__rate_interval])))`), "p95 {{replica}}")))
	d.WithPanel(series("Error and duplicate rates",
		"Share of rows rejected: DB-side over the collector's window, and per ingester replica over $__rate_interval; share of rows skipped as duplicates (already stored event_id). Dashed: the report's error target ("+TargetText(s, "error_rate", unitPercent)+").",
		unitPercent, 12, 8, Steps(s, "error_rate"),
		query(`max(ecomstream_collector_error_ratio)`, "rejected (DB, window)"),
		query(named(`sum by (instance) (rate(ecomstream_ingester_records_total{outcome="rejected", `+inst+`}[$__rate_interval])) / sum by (instance) (rate(ecomstream_ingester_records_total{`+inst+`}[$__rate_interval]))`), "rejected {{replica}}"),
		query(named(`sum by (instance) (rate(ecomstream_ingester_records_total{outcome="duplicate", `+inst+`}[$__rate_interval])) / sum by (instance) (rate(ecomstream_ingester_records_total{`+inst+`}[$__rate_interval]))`), "duplicates skipped {{replica}}")))
	d.WithPanel(series("Duplicates: stored and skipped",
		"Stored: event_ids in events more than once among the window's events (must be 0). Skipped: rows of the window's files whose event_id was already stored (ledger records_duplicate).",
		unitShort, 12, 8, Steps(s, "duplicates"),
		query(`max(ecomstream_collector_duplicate_event_ids)`, "stored more than once"),
		query(`max(ecomstream_collector_duplicates_skipped_records)`, "skipped (window)")))
	d.WithPanel(series("Rejected rows by reason",
		"Rows written to rejected_records in the collector's window, by stable reason code (line 0 = whole file).",
		unitShort, 12, 8, nil,
		query(`max by (reason) (ecomstream_collector_rejected_window_records)`, "{{reason}}")))

	d.WithRow(row("Backlog, per replica (the volume's files or the bucket's objects)"))
	d.WithPanel(series("Pending files or objects",
		"Input waiting (*.csv, *.csv.gz, *.csv.zst, not dotfiles): counted by the collector in the incoming directory, and by each ingester replica in its queue, whichever its source (a directory, or a bucket's listing).",
		unitShort, 8, 8, nil,
		query(`max(ecomstream_collector_backlog_files)`, "collector (directory or bucket)"),
		query(named(`max by (instance) (ecomstream_ingester_backlog_files{`+inst+`})`), "{{replica}}")))
	d.WithPanel(series("Pending bytes",
		"Stored bytes of the pending input (compressed ones as stored): the collector's count of the directory and each ingester replica's queue, either source.",
		unitBytes, 8, 8, nil,
		query(`max(ecomstream_collector_backlog_bytes)`, "collector (directory or bucket)"),
		query(named(`max by (instance) (ecomstream_ingester_backlog_bytes{`+inst+`})`), "{{replica}}")))
	d.WithPanel(series("Oldest pending file or object",
		"Age (now − modification time, or the object's Last-Modified) of the oldest pending input: the latency it will have at least. Dashed: the P99 target ("+TargetText(s, "latency_p99", unitSeconds)+"), which the stale-backlog alert also uses.",
		unitSeconds, 8, 8, Steps(s, "latency_p99"),
		query(`max(ecomstream_collector_backlog_oldest_age_seconds)`, "collector (directory or bucket)"),
		query(named(`max by (instance) (ecomstream_ingester_backlog_oldest_age_seconds{`+inst+`})`), "{{replica}}")))

	d.WithRow(row("Bucket source (docker compose --profile s3): listing, notifications, S3 errors"))
	d.WithPanel(series("Bucket listing duration",
		"Time of one full listing of the bucket's prefix (ListObjectsV2, every page) per ingester replica reading a bucket: P95 and mean over $__rate_interval. A listing runs every INGESTER_RESCAN_INTERVAL; one that takes longer than the interval delays every object that no notification announced.",
		unitSeconds, 6, 8, nil,
		query(named(`histogram_quantile(0.95, sum by (instance, le) (rate(ecomstream_ingester_source_list_duration_seconds_bucket{`+inst+`}[$__rate_interval])))`), "p95 {{replica}}"),
		query(named(`sum by (instance) (rate(ecomstream_ingester_source_list_duration_seconds_sum{`+inst+`}[$__rate_interval])) / sum by (instance) (rate(ecomstream_ingester_source_list_duration_seconds_count{`+inst+`}[$__rate_interval]))`), "mean {{replica}}")))
	d.WithPanel(series("Objects listed",
		"Objects under the prefix in each replica's last listing (pending and not yet moved out; the pending ones are the backlog panels above).",
		unitShort, 6, 8, nil,
		query(named(`max by (instance) (ecomstream_ingester_source_listed_items{`+inst+`})`), "{{replica}}")))
	d.WithPanel(series("Notification lag",
		"Time from an object's creation to the arrival of its bucket notification (NATS) at each replica: P50 and P99 over $__rate_interval. No line: notifications are off or lost, and the listing alone finds new objects (within one listing interval).",
		unitSeconds, 6, 8, nil,
		query(named(`histogram_quantile(0.5, sum by (instance, le) (rate(ecomstream_ingester_notification_lag_seconds_bucket{`+inst+`}[$__rate_interval])))`), "p50 {{replica}}"),
		query(named(`histogram_quantile(0.99, sum by (instance, le) (rate(ecomstream_ingester_notification_lag_seconds_bucket{`+inst+`}[$__rate_interval])))`), "p99 {{replica}}")))
	d.WithPanel(series("S3 errors by operation",
		"Failed calls to the bucket and to NATS per second, by operation (list, get, copy, delete, put, notify), all selected replicas. Each is retried: a file is never rejected for a transient S3 error, so a steady rate means the server or the network, not the data.",
		unitOpsPerSecond, 6, 8, nil,
		query(`sum by (operation) (rate(ecomstream_ingester_source_errors_total{`+inst+`}[$__rate_interval]))`, "{{operation}}")))
	d.WithPanel(series("Bucket listings: made and left to another replica",
		"Periodic listings per second each replica made, and those it left because another replica of the same prefix began one within the interval (the replicas take turns: about one listing per INGESTER_RESCAN_INTERVAL in all, whatever their number). Several replicas and no left line: the database cannot say whose turn it is, and each replica lists every interval.",
		unitOpsPerSecond, 12, 8, nil,
		query(named(`sum by (instance) (rate(ecomstream_ingester_source_list_duration_seconds_count{`+inst+`}[$__rate_interval]))`), "made {{replica}}"),
		query(named(`sum by (instance) (rate(ecomstream_ingester_source_listings_left_total{`+inst+`}[$__rate_interval]))`), "left {{replica}}")))
	d.WithPanel(series("Workers allowed to hold a batch",
		"Per replica: INGESTER_WORKERS, or fewer while its batches find every load slot (INGESTER_LOAD_SLOTS) taken: more replicas and workers than the slots only queue, and each batch that waited holds one more worker back (down to one).",
		unitShort, 12, 8, nil,
		query(named(`max by (instance) (ecomstream_ingester_workers_limit{`+inst+`})`), "{{replica}}")))
	d.WithPanel(series("Files another replica committed: forgotten or claimed",
		"Per replica, per second: files it dropped from its queue because the ledger showed another replica had committed them (forgotten: no claim, no read), and files it claimed only to find another replica held them (locked: tried again later) or had finished them (gone). Replicas of one source all queue every file; a steady gone line means commits reach a replica's queue late (its ledger reads failing: errors_total{stage=\"database\"}).",
		unitOpsPerSecond, 12, 8, nil,
		query(named(`sum by (instance) (rate(ecomstream_ingester_files_committed_elsewhere_total{`+inst+`}[$__rate_interval]))`), "forgotten {{replica}}"),
		query(named(`sum by (instance, outcome) (rate(ecomstream_ingester_files_skipped_total{`+inst+`}[$__rate_interval]))`), "{{outcome}} {{replica}}")))
	return d
}
