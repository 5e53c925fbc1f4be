package dashboards

import (
	"github.com/grafana/grafana-foundation-sdk/go/common"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
)

// Database is the report's Database Performance Analysis and Network & I/O sections.
func Database(s SLA) *Builder {
	idx := `{table="events"}`
	d := newDashboard("ecomstream-database", "ecomstream / Database",
		"The report's Query Performance, Index Effectiveness, Insert Performance, cache and PostgreSQL figures: the collector for our tables, postgres_exporter for the server.")
	d.WithRow(row("Queries and indexes (collector)"))
	d.WithPanel(grid("Query performance (the report's five queries)",
		"Wall time of the last run of each of the report's queries (count, lookup by user_id and product_id, one minute of event_time, GROUP BY event_type), rows fetched, run by the collector every COLLECTOR_QUERY_INTERVAL under a statement timeout; and rows returned.",
		unitSeconds, 12, 8, "query",
		map[string]string{"query": "Query", "Value #A": "Time", "Value #B": "Rows"},
		tableQuery(`max by (query) (ecomstream_collector_query_duration_seconds)`),
		tableQuery(`max by (query) (ecomstream_collector_query_rows)`)).
		OverrideByName("Rows", unitOf(unitShort)))
	d.WithPanel(series("Query time over time",
		"The same five query times as a history, to see them grow with the table.",
		unitSeconds, 12, 8, nil,
		query(`max by (query) (ecomstream_collector_query_duration_seconds)`, "{{query}}")))
	d.WithPanel(grid("Index effectiveness",
		"Per index of events: size (pg_relation_size), scans in the dashboard's time range (increase of idx_scan) and hit rate (share of its block requests served from shared buffers since statistics were reset): the report's Index Effectiveness table.",
		unitBytes, 12, 8, "index",
		map[string]string{"index": "Index", "Value #A": "Size", "Value #B": "Scans in range", "Value #C": "Hit rate"},
		tableQuery(`max by (index) (ecomstream_collector_index_size_bytes`+idx+`)`),
		tableQuery(`sum by (index) (increase(ecomstream_collector_index_scans_total`+idx+`[$__range]))`),
		tableQuery(`max by (index) (ecomstream_collector_index_cache_hit_ratio`+idx+`)`)).
		OverrideByName("Scans in range", unitOf(unitShort)).
		OverrideByName("Hit rate", unitOf(unitPercent)))
	d.WithPanel(series("Index scans per second",
		"Scans started on each index of events per second (rate of pg_stat_user_indexes.idx_scan over $__rate_interval).",
		unitOpsPerSecond, 12, 8, nil,
		query(`sum by (index) (rate(ecomstream_collector_index_scans_total`+idx+`[$__rate_interval]))`, "{{index}}")))

	d.WithRow(row("Cache and sizes"))
	d.WithPanel(single("Cache hit ratio",
		"Share of the server's block requests served from shared buffers since statistics were reset (pg_stat_database blks_hit / (blks_hit + blks_read), postgres_exporter). The report measured 98.5 %.",
		unitPercent, 6, 6, []dashboard.Threshold{{Color: "red"}, {Color: "#EAB839", Value: ptr(0.9)}, {Color: "green", Value: ptr(0.98)}},
		query(`sum(pg_stat_database_blks_hit) / (sum(pg_stat_database_blks_hit) + sum(pg_stat_database_blks_read))`, "hit ratio")))
	d.WithPanel(single("Database size",
		"Size on disk of the largest database of the server: ecomstream's (pg_database_size_bytes, postgres_exporter).",
		unitBytes, 6, 6, nil,
		query(`max(pg_database_size_bytes)`, "size")))
	d.WithPanel(series("Table and index sizes",
		"Each table without its indexes (pg_table_size) and its indexes together (pg_indexes_size): the report's index overhead.",
		unitBytes, 12, 6, nil,
		query(`max by (table) (ecomstream_collector_table_size_bytes)`, "{{table}}"),
		query(`max by (table) (ecomstream_collector_table_indexes_size_bytes)`, "{{table}} indexes")))

	d.WithRow(row("Inserts, connections and I/O, per replica"))
	d.WithPanel(series("Insert rate",
		"Rows inserted per second into each table (rate of pg_stat_user_tables.n_tup_ins over $__rate_interval), as PostgreSQL counts them.",
		unitRowsPerSecond, 12, 8, nil,
		query(`sum by (table) (rate(ecomstream_collector_table_inserted_rows_total[$__rate_interval]))`, "{{table}}")))
	d.WithPanel(series("Insert performance: rows per batch",
		"The report's Insert Performance: rows per committed transaction of each ingester replica (ecomstream_ingester_batch_records over $__rate_interval); batch time is on the Pipeline SLA dashboard.",
		unitShort, 12, 8, nil,
		query(named(`sum by (instance) (rate(ecomstream_ingester_batch_records_sum{`+inst+`}[$__rate_interval])) / sum by (instance) (rate(ecomstream_ingester_batch_records_count{`+inst+`}[$__rate_interval]))`), "{{replica}}")))
	d.WithPanel(series("Rows (estimate) and ledger files",
		"Live rows per table as PostgreSQL estimates them (n_live_tup), and ledger rows by outcome.",
		unitShort, 12, 8, nil,
		query(`max by (table) (ecomstream_collector_table_rows_estimate)`, "{{table}} rows"),
		query(`max by (outcome) (ecomstream_collector_ledger_files)`, "ledger {{outcome}}")))
	d.WithPanel(series("Connection pool per replica",
		"The report's Network section (pool size, reuse): each ingester replica's pgxpool connections by state, stacked (the states are parts; the stack's top is the pool's size).",
		unitShort, 12, 8, nil,
		query(named(`max by (instance, state) (ecomstream_ingester_db_connections{`+inst+`})`), "{{replica}} {{state}}")).
		Stacking(common.NewStackingConfigBuilder().Mode(common.StackingModeNormal)))
	d.WithPanel(series("CSV bytes committed per replica",
		"The report's Disk I/O section: bytes of committed files per second by each ingester replica (rate over $__rate_interval).",
		unitBytesPerSecond, 12, 8, nil,
		query(named(`sum by (instance) (rate(ecomstream_ingester_bytes_total{`+inst+`}[$__rate_interval]))`), "{{replica}}")))
	d.WithPanel(series("Mean committed file size",
		"Bytes per committed file over $__rate_interval, all selected replicas.",
		unitBytes, 12, 8, nil,
		query(`sum(rate(ecomstream_ingester_bytes_total{`+inst+`}[$__rate_interval])) / sum(rate(ecomstream_ingester_files_total{outcome="ingested", `+inst+`}[$__rate_interval]))`, "mean file size")))

	d.WithRow(row("The collector itself"))
	d.WithPanel(series("Collector measurements",
		"How long each collector measurement took (ecomstream_collector_scrape_duration_seconds); a failing one also fires its alert.",
		unitSeconds, 12, 8, nil,
		query(`max by (collector) (ecomstream_collector_scrape_duration_seconds)`, "{{collector}}")))
	d.WithPanel(single("Collector measurements failing",
		"Measurements whose last run failed (ecomstream_collector_scrape_success == 0); 0 when all succeed.",
		unitNone, 12, 8, []dashboard.Threshold{{Color: "green"}, {Color: "red", Value: ptr(1.0)}},
		query(`count(ecomstream_collector_scrape_success == 0) or vector(0)`, "failing")))
	return d
}
