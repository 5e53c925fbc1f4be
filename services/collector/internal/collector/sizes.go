package collector

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
)

// Sizes are the tables' sizes on disk (heap with TOAST, and their indexes together), the
// planner's row estimate, the rows inserted since statistics were reset (the insert rate
// is its rate()). The database's size is postgres_exporter's (pg_database_size_bytes).
type Sizes struct {
	DB *pgxpool.Pool
}

var (
	tableSizeDesc    = Desc("table_size_bytes", "Size of the table without its indexes (pg_table_size: heap, TOAST, maps).", "table")
	tableIdxSizeDesc = Desc("table_indexes_size_bytes", "Size of all indexes of the table (pg_indexes_size).", "table")
	tableRowsDesc    = Desc("table_rows_estimate", "Live rows of the table as estimated by PostgreSQL's statistics (n_live_tup).", "table")
	tableInsDesc     = Desc("table_inserted_rows_total", "Rows inserted into the table since statistics were reset (n_tup_ins).", "table")
)

// Name implements Measurement.
func (*Sizes) Name() string { return "sizes" }

// Describe implements Measurement.
func (*Sizes) Describe(ch chan<- *prometheus.Desc) {
	ch <- tableSizeDesc
	ch <- tableIdxSizeDesc
	ch <- tableRowsDesc
	ch <- tableInsDesc
}

// A partitioned table is the sum of its partitions (pg_partition_root).
const sizesSQL = `
SELECT t.relname, sum(pg_table_size(s.relid))::bigint, sum(pg_indexes_size(s.relid))::bigint,
       sum(s.n_live_tup)::bigint, sum(s.n_tup_ins)::bigint
FROM pg_stat_user_tables s JOIN pg_class t ON t.oid = coalesce(pg_partition_root(s.relid), s.relid)
WHERE t.relname = ANY($1) GROUP BY t.relname ORDER BY t.relname`

// Measure implements Measurement.
func (s *Sizes) Measure(ctx context.Context, ch chan<- prometheus.Metric) error {
	rows, err := s.DB.Query(ctx, sizesSQL, Tables)
	if err != nil {
		return fmt.Errorf("table sizes: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var table string
		var size, idx, live, ins int64
		if err := rows.Scan(&table, &size, &idx, &live, &ins); err != nil {
			return fmt.Errorf("table sizes: %w", err)
		}
		gauge(ch, tableSizeDesc, float64(size), table)
		gauge(ch, tableIdxSizeDesc, float64(idx), table)
		gauge(ch, tableRowsDesc, float64(live), table)
		counter(ch, tableInsDesc, float64(ins), table)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("table sizes: %w", err)
	}
	return nil
}
