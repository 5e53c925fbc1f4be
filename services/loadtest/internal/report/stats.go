package report

import (
	"fmt"
	"math"
	"sort"
)

// FileLatency is one committed file: its rows share its latency, so percentiles over
// files weighted by rows are exactly the per-row percentiles of the report's methodology.
type FileLatency struct {
	Created   float64 // file_created_at, unix seconds
	Committed float64 // committed_at, unix seconds
	Rows      int64
}

// Seconds is the file's end-to-end latency.
func (f FileLatency) Seconds() float64 { return f.Committed - f.Created }

// ReportBands are the seed report's latency ranges (seconds).
var ReportBands = []float64{0, 10, 20, 30, 40, 60}

// FineBands resolve what ecomstream's latencies actually are (seconds).
var FineBands = []float64{0, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10}

// Summarize computes the per-row latency statistics of files.
func Summarize(files []FileLatency) Latency {
	var l Latency
	fs := make([]FileLatency, 0, len(files))
	for _, f := range files {
		if f.Rows > 0 {
			fs = append(fs, f)
		}
	}
	sort.Slice(fs, func(i, j int) bool { return fs[i].Seconds() < fs[j].Seconds() })
	var total int64
	var sum float64
	for _, f := range fs {
		total += f.Rows
		sum += f.Seconds() * float64(f.Rows)
	}
	l.Rows = total
	l.Bands = bands(fs, ReportBands, total, secondsLabel)
	l.Fine = bands(fs, FineBands, total, fineLabel)
	if total == 0 {
		return l
	}
	l.Mean = sum / float64(total)
	l.Min, l.Max = fs[0].Seconds(), fs[len(fs)-1].Seconds()
	l.P50 = Percentile(fs, total, 0.50)
	l.P75 = Percentile(fs, total, 0.75)
	l.P90 = Percentile(fs, total, 0.90)
	l.P95 = Percentile(fs, total, 0.95)
	l.P99 = Percentile(fs, total, 0.99)
	return l
}

// Percentile is the nearest-rank q-quantile of rows; fs must be sorted by latency and
// total the sum of their rows.
func Percentile(fs []FileLatency, total int64, q float64) float64 {
	if total == 0 {
		return 0
	}
	rank := int64(math.Ceil(q * float64(total)))
	rank = max(rank, 1)
	var cum int64
	for _, f := range fs {
		cum += f.Rows
		if cum >= rank {
			return f.Seconds()
		}
	}
	return fs[len(fs)-1].Seconds()
}

// Percentiles sorts a copy of files and returns the given quantiles.
func Percentiles(files []FileLatency, qs ...float64) []float64 {
	fs := append([]FileLatency(nil), files...)
	sort.Slice(fs, func(i, j int) bool { return fs[i].Seconds() < fs[j].Seconds() })
	var total int64
	for _, f := range fs {
		total += f.Rows
	}
	out := make([]float64, len(qs))
	for i, q := range qs {
		out[i] = Percentile(fs, total, q)
	}
	return out
}

func bands(fs []FileLatency, edges []float64, total int64, label func(lo, hi float64) string) []Band {
	out := make([]Band, len(edges))
	for i, lo := range edges {
		hi := 0.0
		if i+1 < len(edges) {
			hi = edges[i+1]
		}
		out[i] = Band{Label: label(lo, hi), Lo: lo, Hi: hi}
	}
	for _, f := range fs {
		s := max(f.Seconds(), 0)
		i := sort.SearchFloat64s(edges, s)
		// SearchFloat64s gives the first edge >= s; the band is the one starting below s
		// (a latency exactly on an edge belongs to the band that starts there).
		if i == len(edges) || edges[i] > s {
			i--
		}
		out[max(i, 0)].Count += f.Rows
	}
	var cum int64
	for i := range out {
		cum += out[i].Count
		if total > 0 {
			out[i].Percent = 100 * float64(out[i].Count) / float64(total)
			out[i].Cumulative = 100 * float64(cum) / float64(total)
		}
	}
	return out
}

func secondsLabel(lo, hi float64) string {
	if hi == 0 {
		return fmt.Sprintf("%g+ seconds", lo)
	}
	return fmt.Sprintf("%g-%g seconds", lo, hi)
}

func fineLabel(lo, hi float64) string {
	if hi == 0 {
		return "≥ " + Dur(lo)
	}
	return Dur(lo) + " – " + Dur(hi)
}

// Dur prints a latency in the unit a person reads best: ms below 1 s, else seconds.
func Dur(s float64) string {
	switch {
	case s == 0:
		return "0"
	case s < 0.001:
		return fmt.Sprintf("%.2f ms", s*1000)
	case s < 1:
		return fmt.Sprintf("%.0f ms", s*1000)
	case s < 10:
		return fmt.Sprintf("%.2f s", s)
	default:
		return fmt.Sprintf("%.1f s", s)
	}
}

// Timeline buckets the committed files into width-second buckets from start (unix s):
// committed rows/s, generated rows/s (by file time) and latency percentiles of the rows
// committed in each bucket.
func Timeline(files []FileLatency, start, end, width float64) []Point {
	if width <= 0 || end <= start {
		return nil
	}
	n := int(math.Ceil((end - start) / width))
	pts := make([]Point, n)
	byBucket := make([][]FileLatency, n)
	for i := range pts {
		pts[i].T = float64(i+1) * width
	}
	idx := func(t float64) int {
		i := int((t - start) / width)
		return min(max(i, 0), n-1)
	}
	for _, f := range files {
		c := idx(f.Committed)
		pts[c].Throughput += float64(f.Rows)
		byBucket[c] = append(byBucket[c], f)
		pts[idx(f.Created)].Offered += float64(f.Rows)
	}
	var gen, com int64
	for i := range pts {
		com += int64(pts[i].Throughput)
		gen += int64(pts[i].Offered)
		pts[i].Committed, pts[i].Generated = com, gen
		pts[i].Throughput /= width
		pts[i].Offered /= width
		if len(byBucket[i]) > 0 {
			p := Percentiles(byBucket[i], 0.5, 0.95, 0.99)
			pts[i].P50, pts[i].P95, pts[i].P99 = p[0], p[1], p[2]
		}
	}
	return pts
}
