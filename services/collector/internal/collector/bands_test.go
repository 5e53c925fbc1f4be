package collector

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"
)

func TestBandLabels(t *testing.T) {
	if got, want := ReportBands.Labels(), []string{"0-10s", "10-20s", "20-30s", "30-40s", "40-60s", "60s+"}; !slices.Equal(got, want) {
		t.Errorf("report bands %v, want %v", got, want)
	}
	if got, want := FineBands.Labels(), []string{"0-0.1s", "0.1-0.25s", "0.25-0.5s", "0.5-1s", "1-10s", "10s+"}; !slices.Equal(got, want) {
		t.Errorf("fine bands %v, want %v", got, want)
	}
}

// The report's baseline distribution table, rebuilt from ledger rows: every band holds
// the report's count, and the counts equal what plain SQL over the expanded rows gives.
func TestBandsReproduceReportTable(t *testing.T) {
	pool := newDB(t)
	report := []struct {
		latency float64
		rows    int64
	}{{5, 142}, {15, 326}, {25, 856}, {35, 945}, {50, 445}, {75, 35}}
	var files []file
	for _, r := range report {
		// Split each band's rows over files of at most 100 rows, the report's file size,
		// with latencies on the band's edges too: bands are [lo, hi).
		left := r.rows
		for i := 0; left > 0; i++ {
			n := min(left, 100)
			lat := r.latency + float64(i%3)
			if i == 0 {
				lat = r.latency - 5 // exactly the lower edge (0, 10, 20, 30, 45, 70)
			}
			files = append(files, file{latency: lat, age: 10, inserted: n})
			left -= n
		}
	}
	files = append(files, file{latency: 0.05, age: 10, inserted: 3}, file{latency: 0.3, age: 10, inserted: 4},
		file{latency: 0.1, age: 10, inserted: 2}, file{latency: 2, age: 3600, inserted: 1000})
	insertFiles(t, pool, files...)

	b := &Bands{DB: pool, Window: time.Minute}
	got, err := b.Count(context.Background(), ReportBands)
	if err != nil {
		t.Fatal(err)
	}
	want := []int64{142 + 9, 326, 856, 945, 445, 35}
	if !slices.Equal(got, want) {
		t.Errorf("report bands: got %v, want %v", got, want)
	}
	// Against SQL over one row per record, band by band.
	for i, set := range []BandSet{ReportBands, FineBands} {
		got, err := b.Count(context.Background(), set)
		if err != nil {
			t.Fatal(err)
		}
		lo := -1e9
		for j, hi := range append(slices.Clone(set.Bounds), 1e18) {
			var n int64
			err := pool.QueryRow(context.Background(), `
				SELECT count(*) FROM (SELECT extract(epoch FROM committed_at - file_created_at)::float8 AS lat
				      FROM ingested_files, generate_series(1, records_inserted)
				      WHERE committed_at >= now() - interval '1 minute') r
				WHERE lat >= $1 AND lat < $2`, lo, hi).Scan(&n)
			if err != nil {
				t.Fatal(err)
			}
			if got[j] != n {
				t.Errorf("set %d band %s: got %d, SQL says %d", i, set.Labels()[j], got[j], n)
			}
			lo = hi
		}
	}
	m := collect(t, b)
	for i, l := range ReportBands.Labels() {
		key := fmt.Sprintf(`ecomstream_collector_latency_band_records{band="%s",set="report"}`, l)
		if m[key] != float64(want[i]) {
			t.Errorf("%s = %v, want %d", key, m[key], want[i])
		}
	}
	if v := m[`ecomstream_collector_latency_band_records{band="0.1-0.25s",set="fine"}`]; v != 2 {
		t.Errorf("fine band 0.1-0.25s = %v, want 2 (the 0.1 s edge belongs to it)", v)
	}
}
