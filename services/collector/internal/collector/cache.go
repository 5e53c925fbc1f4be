package collector

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
)

// Cache is the report's "Cache hit ratio": the share of the database's block requests
// served from shared buffers (pg_stat_database blks_hit / (blks_hit + blks_read)), for
// the database the collector is connected to.
type Cache struct {
	DB *pgxpool.Pool
}

var (
	cacheBlocksDesc = Desc("database_blocks_total",
		"Blocks requested in this database, by outcome: hit = found in shared buffers, read = read from the operating system (pg_stat_database).",
		"outcome")
	cacheHitDesc = Desc("cache_hit_ratio",
		"Share of this database's block requests served from shared buffers since statistics were reset: hit / (hit + read).")
)

// Name implements Measurement.
func (*Cache) Name() string { return "cache" }

// Describe implements Measurement.
func (*Cache) Describe(ch chan<- *prometheus.Desc) { ch <- cacheBlocksDesc; ch <- cacheHitDesc }

// Measure implements Measurement.
func (c *Cache) Measure(ctx context.Context, ch chan<- prometheus.Metric) error {
	var hit, read int64
	err := c.DB.QueryRow(ctx, `SELECT blks_hit, blks_read FROM pg_stat_database WHERE datname = current_database()`).
		Scan(&hit, &read)
	if err != nil {
		return fmt.Errorf("cache statistics: %w", err)
	}
	counter(ch, cacheBlocksDesc, float64(hit), "hit")
	counter(ch, cacheBlocksDesc, float64(read), "read")
	if hit+read > 0 {
		gauge(ch, cacheHitDesc, float64(hit)/float64(hit+read))
	}
	return nil
}
