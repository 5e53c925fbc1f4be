package collector

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
)

// BandSet is a partition of latency into bands by their upper bounds (seconds): the
// bands are [0, b1), [b1, b2), ..., [bn, +Inf). Rows with a negative latency (a file
// stamped in the future) fall into the first band.
type BandSet struct {
	Name   string
	Bounds []float64
}

// The report's distribution table, and the sub-second bands where our latencies live.
var (
	ReportBands = BandSet{Name: "report", Bounds: []float64{10, 20, 30, 40, 60}}
	FineBands   = BandSet{Name: "fine", Bounds: []float64{0.1, 0.25, 0.5, 1, 10}}
)

// Labels returns the band labels, e.g. "0-10s", "10-20s", ..., "60s+".
func (b BandSet) Labels() []string {
	out := make([]string, 0, len(b.Bounds)+1)
	lo := 0.0
	for _, hi := range b.Bounds {
		out = append(out, f(lo)+"-"+f(hi)+"s")
		lo = hi
	}
	return append(out, f(lo)+"s+")
}

func f(x float64) string { return strconv.FormatFloat(x, 'f', -1, 64) }

// Bands is the latency distribution of rows committed in the window, as the report's
// "Latency Distribution Analysis" table: rows per band, for the report's bands and for
// sub-second ones. Latency per row is as in Latency (ledger, weighted by rows inserted).
type Bands struct {
	DB     *pgxpool.Pool
	Window time.Duration
}

var bandDesc = Desc("latency_band_records",
	"Rows committed in the sliding window whose end-to-end latency falls in the band; set=report are the report's 0-10-20-30-40-60 s bands, set=fine the sub-second ones.",
	"set", "band")

// Name implements Measurement.
func (*Bands) Name() string { return "bands" }

// Describe implements Measurement.
func (*Bands) Describe(ch chan<- *prometheus.Desc) { ch <- bandDesc }

// width_bucket gives 0 below the first bound, i for [b_i, b_i+1), n at or above the last.
const bandsSQL = `
WITH f AS (` + windowFiles + `)
SELECT width_bucket(lat, $2::float8[]) AS b, sum(n)::bigint FROM f GROUP BY b`

// Count returns rows per band of set, in band order.
func (b *Bands) Count(ctx context.Context, set BandSet) ([]int64, error) {
	rows, err := b.DB.Query(ctx, bandsSQL, b.Window.Seconds(), set.Bounds)
	if err != nil {
		return nil, fmt.Errorf("latency bands %s: %w", set.Name, err)
	}
	defer rows.Close()
	counts := make([]int64, len(set.Bounds)+1)
	for rows.Next() {
		var i int
		var n int64
		if err := rows.Scan(&i, &n); err != nil {
			return nil, fmt.Errorf("latency bands %s: %w", set.Name, err)
		}
		counts[i] += n
	}
	return counts, rows.Err()
}

// Measure implements Measurement.
func (b *Bands) Measure(ctx context.Context, ch chan<- prometheus.Metric) error {
	for _, set := range []BandSet{ReportBands, FineBands} {
		counts, err := b.Count(ctx, set)
		if err != nil {
			return err
		}
		for i, l := range set.Labels() {
			gauge(ch, bandDesc, float64(counts[i]), set.Name, l)
		}
	}
	return nil
}
