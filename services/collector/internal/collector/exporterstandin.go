package collector

import (
	"context"
	"fmt"
	"strconv"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
)

// ExporterStandIn serves, under postgres_exporter's own names and labels, the few facts
// of PostgreSQL's views that the dashboards and rules read from the exporter: the
// database's block hits and reads (pg_stat_database, the cache hit ratio), its size
// (pg_database_size) and the memory settings (pg_settings). PostgreSQL's views have one
// owner, postgres_exporter (docs/metrics.md); this measurement exists only for where no
// exporter runs — `make run-local` and the stack test — so that the same dashboards work
// there. It is off unless COLLECTOR_EXPORTER_STAND_IN is set; never turn it on beside a
// real exporter, or each fact would be scraped twice under different jobs.
type ExporterStandIn struct {
	DB *pgxpool.Pool
}

// Names and labels as postgres_exporter (v0.18) exports them.
var (
	pgBlksHitDesc = prometheus.NewDesc("pg_stat_database_blks_hit",
		"Number of times disk blocks were found already in the buffer cache (collector's stand-in for postgres_exporter).",
		[]string{"datid", "datname"}, nil)
	pgBlksReadDesc = prometheus.NewDesc("pg_stat_database_blks_read",
		"Number of disk blocks read in this database (collector's stand-in for postgres_exporter).",
		[]string{"datid", "datname"}, nil)
	pgDatabaseSizeDesc = prometheus.NewDesc("pg_database_size_bytes",
		"Disk space used by the database (collector's stand-in for postgres_exporter).",
		[]string{"datname"}, nil)
	pgSettingDescs = func() map[string]*prometheus.Desc {
		m := map[string]*prometheus.Desc{}
		for _, s := range MemorySettings {
			m[s] = prometheus.NewDesc("pg_settings_"+s+"_bytes",
				"Server parameter: "+s+" [Units converted to bytes.] (collector's stand-in for postgres_exporter).", nil, nil)
		}
		return m
	}()
)

// MemorySettings are the memory settings exported in bytes.
var MemorySettings = []string{"shared_buffers", "work_mem", "maintenance_work_mem", "effective_cache_size", "wal_buffers"}

// Name implements Measurement.
func (*ExporterStandIn) Name() string { return "exporter_stand_in" }

// Describe implements Measurement.
func (*ExporterStandIn) Describe(ch chan<- *prometheus.Desc) {
	ch <- pgBlksHitDesc
	ch <- pgBlksReadDesc
	ch <- pgDatabaseSizeDesc
	for _, s := range MemorySettings {
		ch <- pgSettingDescs[s]
	}
}

// Measure implements Measurement.
func (e *ExporterStandIn) Measure(ctx context.Context, ch chan<- prometheus.Metric) error {
	var datid uint32
	var datname string
	var hit, read, size int64
	err := e.DB.QueryRow(ctx, `
		SELECT datid, datname, blks_hit, blks_read, pg_database_size(datid)
		FROM pg_stat_database WHERE datname = current_database()`).Scan(&datid, &datname, &hit, &read, &size)
	if err != nil {
		return fmt.Errorf("pg_stat_database: %w", err)
	}
	id := strconv.FormatUint(uint64(datid), 10)
	counter(ch, pgBlksHitDesc, float64(hit), id, datname)
	counter(ch, pgBlksReadDesc, float64(read), id, datname)
	gauge(ch, pgDatabaseSizeDesc, float64(size), datname)
	for _, s := range MemorySettings {
		var b int64
		// current_setting gives the value with its unit ("128MB"), which pg_size_bytes reads.
		if err := e.DB.QueryRow(ctx, `SELECT pg_size_bytes(current_setting($1))`, s).Scan(&b); err != nil {
			return fmt.Errorf("setting %s: %w", s, err)
		}
		gauge(ch, pgSettingDescs[s], float64(b))
	}
	return nil
}
