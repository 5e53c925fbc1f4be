package collector

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
)

// Ledger is the whole ledger's totals: files by outcome and their rows by outcome — the
// report's "Total records inserted" and "Skipped/failed records" over the pipeline's life.
// These are gauges, not counters: they are the database's state, which an operator may
// truncate.
type Ledger struct {
	DB *pgxpool.Pool
}

var (
	ledgerFilesDesc   = Desc("ledger_files", "Rows of the ingested_files ledger, by outcome (ingested, failed).", "outcome")
	ledgerRecordsDesc = Desc("ledger_records",
		"Rows of all files in the ledger, by outcome (inserted, rejected, duplicate).", "outcome")
	ledgerBytesDesc = Desc("ledger_bytes", "Bytes of all files in the ledger.")
)

// Name implements Measurement.
func (*Ledger) Name() string { return "ledger" }

// Describe implements Measurement.
func (*Ledger) Describe(ch chan<- *prometheus.Desc) {
	ch <- ledgerFilesDesc
	ch <- ledgerRecordsDesc
	ch <- ledgerBytesDesc
}

const ledgerSQL = `
SELECT count(*) FILTER (WHERE outcome = 'ingested'), count(*) FILTER (WHERE outcome = 'failed'),
       coalesce(sum(records_inserted), 0)::bigint, coalesce(sum(records_rejected), 0)::bigint,
       coalesce(sum(records_duplicate), 0)::bigint, coalesce(sum(bytes), 0)::bigint
FROM ingested_files`

// Measure implements Measurement.
func (l *Ledger) Measure(ctx context.Context, ch chan<- prometheus.Metric) error {
	var ing, failed, ins, rej, dup, bytes int64
	if err := l.DB.QueryRow(ctx, ledgerSQL).Scan(&ing, &failed, &ins, &rej, &dup, &bytes); err != nil {
		return fmt.Errorf("ledger totals: %w", err)
	}
	gauge(ch, ledgerFilesDesc, float64(ing), "ingested")
	gauge(ch, ledgerFilesDesc, float64(failed), "failed")
	gauge(ch, ledgerRecordsDesc, float64(ins), "inserted")
	gauge(ch, ledgerRecordsDesc, float64(rej), "rejected")
	gauge(ch, ledgerRecordsDesc, float64(dup), "duplicate")
	gauge(ch, ledgerBytesDesc, float64(bytes))
	return nil
}
