package collector

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ecomstream/ecomstream/services/common/table"
)

// Tables are the product's tables; statistics are reported for these only.
var Tables = []string{table.Events.Name, "ingested_files", "rejected_records"}

// Indexes is the report's "Index Effectiveness" table: each index's size, how often it
// was scanned (pg_stat_user_indexes.idx_scan, the report's "Usage Count"), tuples read
// through it, and its buffer cache hits and reads (pg_statio_user_indexes, the report's
// "Hit Rate" = hit / (hit + read)). The counters are PostgreSQL's own, cumulative since
// its statistics were last reset.
type Indexes struct {
	DB *pgxpool.Pool
}

var (
	indexSizeDesc   = Desc("index_size_bytes", "Size of the index on disk (pg_relation_size).", "table", "index")
	indexScansDesc  = Desc("index_scans_total", "Index scans started on the index (pg_stat_user_indexes.idx_scan).", "table", "index")
	indexTupDesc    = Desc("index_tuples_read_total", "Index entries returned by scans of the index (idx_tup_read).", "table", "index")
	indexBlocksDesc = Desc("index_blocks_total",
		"Index blocks requested, by outcome: hit = found in shared buffers, read = read from the operating system (pg_statio_user_indexes).",
		"table", "index", "outcome")
	indexHitDesc = Desc("index_cache_hit_ratio",
		"Share of the index's block requests served from shared buffers, hit / (hit + read), since statistics were reset; absent before the first request.",
		"table", "index")
)

// Name implements Measurement.
func (*Indexes) Name() string { return "indexes" }

// Describe implements Measurement.
func (*Indexes) Describe(ch chan<- *prometheus.Desc) {
	ch <- indexSizeDesc
	ch <- indexScansDesc
	ch <- indexTupDesc
	ch <- indexBlocksDesc
	ch <- indexHitDesc
}

// A partitioned table's indexes are reported under the parent's names, summed over its
// partitions (pg_partition_root): sizes add up, and a lookup that probes every
// partition's index counts one scan per partition probed.
const indexesSQL = `
SELECT t.relname, i.relname, sum(pg_relation_size(s.indexrelid))::bigint, sum(s.idx_scan)::bigint,
       sum(s.idx_tup_read)::bigint, sum(coalesce(io.idx_blks_hit, 0))::bigint, sum(coalesce(io.idx_blks_read, 0))::bigint
FROM pg_stat_user_indexes s JOIN pg_statio_user_indexes io USING (indexrelid)
JOIN pg_class t ON t.oid = coalesce(pg_partition_root(s.relid), s.relid)
JOIN pg_class i ON i.oid = coalesce(pg_partition_root(s.indexrelid), s.indexrelid)
WHERE t.relname = ANY($1) GROUP BY t.relname, i.relname ORDER BY t.relname, i.relname`

// Measure implements Measurement.
func (x *Indexes) Measure(ctx context.Context, ch chan<- prometheus.Metric) error {
	rows, err := x.DB.Query(ctx, indexesSQL, Tables)
	if err != nil {
		return fmt.Errorf("index statistics: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var table, index string
		var size, scans, tup, hit, read int64
		if err := rows.Scan(&table, &index, &size, &scans, &tup, &hit, &read); err != nil {
			return fmt.Errorf("index statistics: %w", err)
		}
		gauge(ch, indexSizeDesc, float64(size), table, index)
		counter(ch, indexScansDesc, float64(scans), table, index)
		counter(ch, indexTupDesc, float64(tup), table, index)
		counter(ch, indexBlocksDesc, float64(hit), table, index, "hit")
		counter(ch, indexBlocksDesc, float64(read), table, index, "read")
		if hit+read > 0 {
			gauge(ch, indexHitDesc, float64(hit)/float64(hit+read), table, index)
		}
	}
	return rows.Err()
}
